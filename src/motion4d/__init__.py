"""motion4d: text, image, video or a static 3D asset to animated 3D Gaussians."""

import os as _os

# OpenMP threads (torch's intra-op pool) that spin while idle take the cores other work needs: with one more
# busy process on 2 cores a prior training step went from 1.7 to 10 s. Sleeping idle threads cost little.
# (Read when OpenMP starts: effective when motion4d is imported before torch, as the motion4d command does.)
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
