from motion4d.cli import main

raise SystemExit(main())
