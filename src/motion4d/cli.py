"""The ``motion4d`` command: parse arguments, build a config, call one pipeline.

    motion4d fit3d DATA --out RUN [--preset default] [--iters N] ...   fit static 3D Gaussians
    motion4d fit3d --demo --out RUN                                    ... to the built-in demo scene
    motion4d fit3d --out RUN --resume                                  continue a killed run
    motion4d reconstruct DATA --out RUN [--model rotor4d|deform] ...    fit animated (4D) Gaussians to multi-view video
    motion4d evaluate RUN [--data DATA] [--split test]                 metrics JSON on stdout (3D or 4D runs, .m4d files)
    motion4d render RUN --out FILE.mp4|.gif [--orbit] [--view I]       a video over time
    motion4d export RUN --format ply-sequence|m4d|glb --out PATH       per-frame 3DGS PLYs, one 4D file, or an animated glTF
    motion4d animate ASSET --driving DATA --out RUN                    animate a static mesh with a multi-view driving video
    motion4d dataset from-gltf ASSET --out DATA [--views N ...]        render an animated glTF into a multi-view video dataset
    motion4d demo [--out RUN]                                          reconstruct the built-in moving demo scene

Logs go to stderr; stdout carries only results (JSON). User errors print one ``error: ...`` line
on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("motion4d")


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise _UsageError(message)


def _background(text: str) -> tuple[float, float, float]:
    named = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0)}
    if text.lower() in named:
        return named[text.lower()]
    try:
        rgb = tuple(float(x) for x in text.split(","))
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
        raise argparse.ArgumentTypeError(f"background must be white, black or R,G,B in [0,1], got {text!r}")
    return rgb


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="motion4d", description="Fit 3D/4D Gaussian splats to images, on CPU or GPU.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    f = sub.add_parser("fit3d", help="fit static 3D Gaussians to posed images")
    f.add_argument("data", nargs="?", help="dataset folder (transforms_train.json, ...)")
    f.add_argument("--out", required=True, help="run folder to write")
    f.add_argument("--demo", action="store_true", help="fit the built-in demo scene (written to RUN/data)")
    _fit_options(f)

    r = sub.add_parser("reconstruct", help="fit animated 4D Gaussians to a dynamic (multi-view video) dataset")
    r.add_argument("data", nargs="?", help="dataset folder (transforms_train.json with 'time' per frame)")
    r.add_argument("--out", required=True, help="run folder to write")
    _reconstruct_options(r)

    e = sub.add_parser("evaluate", help="metrics of a fitted run on a dataset split (JSON on stdout)")
    e.add_argument("run", help="run folder (fit3d or reconstruct) or .m4d file")
    e.add_argument("--data", help="dataset folder (default: the one the run was fitted to)")
    e.add_argument("--split", default="test", help="split to evaluate (default: test)")
    e.add_argument("--device", default="cpu", help="cpu or cuda")

    v = sub.add_parser("render", help="render a run's model over time into a video")
    v.add_argument("run", help="run folder or .m4d file")
    v.add_argument("--out", required=True, help="video file (.mp4 or .gif)")
    v.add_argument("--orbit", action="store_true", help="camera circles the scene while time advances")
    v.add_argument("--view", type=int, default=0, help="fixed camera: view I of the test split (default 0)")
    v.add_argument("--frames", type=int, default=48, help="number of frames (default 48)")
    v.add_argument("--fps", type=float, default=24, help="frames per second (default 24)")
    v.add_argument("--data", help="dataset folder (default: the run's)")
    v.add_argument("--device", default="cpu", help="cpu or cuda")

    x = sub.add_parser("export", help="export a run's model: per-frame PLYs or one .m4d file")
    x.add_argument("run", help="run folder or .m4d file")
    x.add_argument("--format", required=True, choices=("ply-sequence", "m4d", "glb"), help="ply-sequence, m4d or glb (animate runs)")
    x.add_argument("--out", required=True, help="folder (ply-sequence) or file (m4d, glb)")
    x.add_argument("--frames", type=int, default=24, help="ply-sequence: number of frames (default 24)")
    x.add_argument("--duration", type=float, help="glb: animation length in seconds (default: keyframes / 16)")

    a = sub.add_parser("animate", help="animate a static mesh (glTF/GLB, OBJ, PLY) with the motion of a multi-view driving video")
    a.add_argument("asset", nargs="?", help="static asset file (default with --resume: the run's)")
    a.add_argument("--driving", help="driving video dataset folder (D-NeRF format with 'time'; 'asset_to_world' places the asset)")
    a.add_argument("--out", required=True, help="run folder to write")
    a.add_argument("--preset", help="configuration preset (default, fast, tiny)")
    a.add_argument("--iters", type=int, help="optimisation steps")
    a.add_argument("--time-budget", type=float, help="stop training after this many seconds")
    a.add_argument("--downscale", type=int, help="integer image downscale factor")
    a.add_argument("--lambda-arap", type=float, help="ARAP weight: higher keeps the shape, lower follows the video (default 1)")
    a.add_argument("--lambda-arap-l1", type=float, help="nearly-L1 ARAP weight: rigid where nothing bends, joints free (default 0)")
    a.add_argument("--lambda-silhouette", type=float, help="weight of the silhouette chamfer against the images' masks (default 1; 0: off)")
    a.add_argument("--lambda-rest", type=float, help="pull toward the rest pose: among fits the images cannot tell apart, the one that moves least")
    a.add_argument("--lr-offsets", type=float, help="learning rate of the per-frame vertex offsets (non-rigid motion, exported as morph targets; 0: graph only)")
    a.add_argument("--offsets-gate", type=float, help="vertex offsets join when a frame's silhouette error exceeds this after the graph's fit (default 0.15; 0: always)")
    a.add_argument("--lambda-offset-laplacian", type=float, help="smoothness of the vertex offsets over the surface (default 0.01)")
    a.add_argument("--nodes", type=int, help="deformation-graph nodes (default 96)")
    a.add_argument("--duration", type=float, help="length of the exported animation in seconds (default: frames / 16)")
    a.add_argument("--background", type=_background, help="white, black or R,G,B in [0,1]")
    a.add_argument("--resume", action="store_true", help="continue from the run's newest checkpoint")
    a.add_argument("--device", help="cpu or cuda")
    a.add_argument("--seed", type=int, help="random seed")
    a.add_argument("--no-progress", action="store_true", help="no progress bar")
    a.add_argument("--video-frames", type=int, default=48, help="frames of the run's video (0: none; default 48)")

    ds = sub.add_parser("dataset", help="make datasets")
    ds_sub = ds.add_subparsers(dest="dataset_command", required=True, parser_class=_Parser)
    g = ds_sub.add_parser("from-gltf", help="render an animated glTF/GLB into a multi-view video dataset (D-NeRF format)")
    g.add_argument("asset", help="animated .glb / .gltf file")
    g.add_argument("--out", required=True, help="dataset folder to create")
    g.add_argument("--views", type=int, default=20, help="training cameras (default 20)")
    g.add_argument("--test-views", type=int, default=4, help="held-out cameras (default 4)")
    g.add_argument("--frames", type=int, default=16, help="frames over the clip (default 16)")
    g.add_argument("--res", type=int, default=128, help="image size in pixels (default 128)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")

    d = sub.add_parser("demo", help="reconstruct the built-in moving demo scene with the 'demo' preset (a few min on CPU)")
    d.add_argument("--out", default="runs/demo", help="run folder (default: runs/demo)")
    _reconstruct_options(d)
    return p


def _reconstruct_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="rotor4d or deform (default rotor4d)")
    p.add_argument("--preset", help="configuration preset (default, fast, demo, tiny)")
    p.add_argument("--iters", type=int, help="optimisation steps")
    p.add_argument("--time-budget", type=float, help="stop training after this many seconds")
    p.add_argument("--downscale", type=int, help="integer image downscale factor")
    p.add_argument("--sampler", choices=("sliding", "uniform"), help="uniform (default) or multi-scale sliding windows")
    p.add_argument("--background", type=_background, help="white, black or R,G,B in [0,1]")
    p.add_argument("--resume", action="store_true", help="continue from the run's newest checkpoint")
    p.add_argument("--device", help="cpu or cuda")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--video-frames", type=int, default=48, help="frames of the run's video (0: none; default 48)")


def _fit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", help="configuration preset (default, fast, demo, paper, tiny)")
    p.add_argument("--iters", type=int, help="optimisation steps")
    p.add_argument("--downscale", type=int, help="integer image downscale factor")
    p.add_argument("--time", type=float, help="dynamic data: use the frames at this time")
    p.add_argument("--background", type=_background, help="white, black or R,G,B in [0,1]")
    p.add_argument("--sh-degree", type=int, choices=range(4), help="SH degree 0-3")
    p.add_argument("--init", choices=("random", "points"), help="initial Gaussians")
    p.add_argument("--points", help="PLY point cloud to start from (implies --init points)")
    p.add_argument("--time-budget", type=float, help="stop training after this many seconds")
    p.add_argument("--resume", action="store_true", help="continue from the run's newest checkpoint")
    p.add_argument("--device", help="cpu or cuda")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _check_device(device: str) -> None:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device must be cpu or cuda, got {device!r}")


def _fit_config(args, base_preset: str, saved=None):
    from motion4d.optim.trainer3d import preset

    config = saved if (saved is not None and args.preset is None) else preset(args.preset or base_preset)
    overrides = {
        "iters": args.iters,
        "background": args.background,
        "sh_degree": args.sh_degree,
        "init": args.init if args.init is not None else ("points" if args.points else None),
        "time_budget_s": args.time_budget,
        "device": args.device,
        "seed": args.seed,
    }
    config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
    if args.no_progress:
        config = dataclasses.replace(config, progress=False)
    if config.iters < 0:
        raise ValueError(f"--iters must be >= 0, got {config.iters}")
    if args.downscale is not None and args.downscale < 1:
        raise ValueError(f"--downscale must be >= 1, got {args.downscale}")
    _check_device(config.device)
    return config


def _cmd_fit3d(args, demo: bool) -> int:
    from motion4d.pipelines.fit3d import CONFIG_FILE, fit3d, load_run_config

    out = Path(args.out)
    saved, opts = None, None
    if args.resume and (out / CONFIG_FILE).is_file():
        saved, opts = load_run_config(out)
    config = _fit_config(args, "demo" if demo else "default", saved)
    if demo:
        from motion4d.data.synthetic import make_demo_scene

        data = str(out / "data") if (out / "data" / "transforms_train.json").is_file() else str(make_demo_scene(out / "data"))
    elif args.data is not None:
        data = args.data
    elif opts is not None:
        data = opts.root
    else:
        raise ValueError("fit3d needs a DATA folder (or --demo, or --resume on an existing run)")
    pick = lambda new, old, default: new if new is not None else (old if old is not None else default)  # noqa: E731
    report = fit3d(
        data, out, config,
        downscale=pick(args.downscale, opts.downscale if opts else None, 1),
        time=pick(args.time, opts.time if opts else None, None),
        points=pick(args.points, opts.points if opts else None, None),
        resume=args.resume,
    )  # fmt: skip
    print(json.dumps(dataclasses.asdict(report)))
    return 0


def _reconstruct_config(args, base_preset: str, saved=None):
    from motion4d.optim.trainer4d import preset

    config = saved if (saved is not None and args.preset is None) else preset(args.preset or base_preset)
    overrides = {
        "iters": args.iters,
        "background": args.background,
        "time_budget_s": args.time_budget,
        "device": args.device,
        "seed": args.seed,
    }
    config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
    if args.sampler is not None:
        config = dataclasses.replace(config, sampler=dataclasses.replace(config.sampler, kind=args.sampler))
    if args.no_progress:
        config = dataclasses.replace(config, progress=False)
    if config.iters < 0:
        raise ValueError(f"--iters must be >= 0, got {config.iters}")
    if args.downscale is not None and args.downscale < 1:
        raise ValueError(f"--downscale must be >= 1, got {args.downscale}")
    if args.time_budget is not None and args.time_budget <= 0:
        raise ValueError(f"--time-budget must be > 0, got {args.time_budget}")
    _check_device(config.device)
    return config


def _demo_model(requested: str | None) -> str:
    from motion4d.gaussians.registry import model_class

    if requested is not None:
        return requested
    for kind in ("rotor4d", "deform"):
        try:
            model_class(kind)
            return kind
        except ValueError:
            continue
    log.warning("no 4D model is installed; the demo falls back to static 3D Gaussians")
    return "gaussians3d"


def _cmd_reconstruct(args, demo: bool) -> int:
    from motion4d.gaussians.registry import model_class, reconstruct_kinds
    from motion4d.pipelines.reconstruct import CONFIG_FILE, load_run_config, reconstruct

    out = Path(args.out)
    saved, opts = None, None
    if args.resume and (out / CONFIG_FILE).is_file():
        saved, opts = load_run_config(out)
    config = _reconstruct_config(args, "demo" if demo else "default", saved)
    kind = args.model or (opts.model if opts else None)
    kind = _demo_model(kind) if demo else (kind or "rotor4d")
    cls = model_class(kind)  # a clear error before any work
    if kind != "gaussians3d" and not hasattr(cls, "random"):  # e.g. animate's models, built from an asset
        raise ValueError(f"model {kind!r} cannot be reconstructed from scratch; choose from {', '.join(reconstruct_kinds())}")
    if demo:
        from motion4d.data.synthetic import make_dynamic_demo_scene

        data = out / "data"
        if not (data / "transforms_train.json").is_file():
            log.info("writing the dynamic demo scene to %s", data)
            make_dynamic_demo_scene(data)
    elif args.data is not None:
        data = args.data
    elif opts is not None:
        data = opts.root
    else:
        raise ValueError("reconstruct needs a DATA folder (or --resume on an existing run)")
    downscale = args.downscale if args.downscale is not None else (opts.downscale if opts else 1)
    if args.video_frames < 0:
        raise ValueError(f"--video-frames must be >= 0, got {args.video_frames}")
    report = reconstruct(
        data, out, config, model=kind, downscale=downscale, resume=args.resume,
        video_frames=args.video_frames, ply_frames=12 if demo else 0,
    )  # fmt: skip
    print(json.dumps(dataclasses.asdict(report)))
    return 0


def _cmd_render(args) -> int:
    from motion4d.pipelines.render_video import render_video

    _check_device(args.device)
    render_video(args.run, args.out, orbit=args.orbit, view=args.view, frames=args.frames, fps=args.fps, data=args.data, device=args.device)
    print(json.dumps({"video": str(args.out), "frames": args.frames}))
    return 0


def _cmd_export(args) -> int:
    if args.format == "glb":
        from motion4d.pipelines.animate import export_run_glb

        path = export_run_glb(args.run, args.out, duration_s=args.duration)
        print(json.dumps({"format": args.format, "out": str(path)}))
        return 0
    from motion4d.pipelines.export_run import export_run

    path = export_run(args.run, args.format, args.out, frames=args.frames)
    print(json.dumps({"format": args.format, "out": str(path)}))
    return 0


def _cmd_animate(args) -> int:
    from motion4d.optim.trainer_animate import AnimateConfig, preset
    from motion4d.pipelines.animate import CONFIG_FILE, animate

    out = Path(args.out)
    saved = None
    if args.resume and (out / CONFIG_FILE).is_file():
        saved = json.loads((out / CONFIG_FILE).read_text())
    config = AnimateConfig.from_dict(saved["animate"]) if (saved and args.preset is None) else preset(args.preset or "default")
    overrides = {"iters": args.iters, "time_budget_s": args.time_budget, "lambda_arap": args.lambda_arap, "lambda_arap_l1": args.lambda_arap_l1, "n_nodes": args.nodes,
                 "lambda_silhouette": args.lambda_silhouette, "lambda_rest": args.lambda_rest, "lr_offsets": args.lr_offsets, "offsets_gate": args.offsets_gate,
                 "lambda_offset_laplacian": args.lambda_offset_laplacian, "background": args.background, "device": args.device, "seed": args.seed}  # fmt: skip
    config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
    if args.no_progress:
        config = dataclasses.replace(config, progress=False)
    for name, value, ok in (("--iters", config.iters, config.iters >= 0), ("--nodes", config.n_nodes, config.n_nodes >= 1),
                            ("--lambda-arap", config.lambda_arap, config.lambda_arap >= 0),
                            ("--lambda-silhouette", config.lambda_silhouette, config.lambda_silhouette >= 0),
                            ("--lambda-arap-l1", config.lambda_arap_l1, config.lambda_arap_l1 >= 0),
                            ("--lambda-rest", config.lambda_rest, config.lambda_rest >= 0),
                            ("--lr-offsets", config.lr_offsets, config.lr_offsets >= 0),
                            ("--offsets-gate", config.offsets_gate, config.offsets_gate >= 0),
                            ("--lambda-offset-laplacian", config.lambda_offset_laplacian, config.lambda_offset_laplacian >= 0),
                            ("--time-budget", args.time_budget, args.time_budget is None or args.time_budget > 0),
                            ("--downscale", args.downscale, args.downscale is None or args.downscale >= 1),
                            ("--duration", args.duration, args.duration is None or args.duration > 0),
                            ("--video-frames", args.video_frames, args.video_frames >= 0)):  # fmt: skip
        if not ok:
            raise ValueError(f"{name} out of range: {value}")
    _check_device(config.device)
    asset = args.asset or (saved or {}).get("asset")
    driving = args.driving or ((saved or {}).get("data") or {}).get("root")
    if asset is None or driving is None:
        raise ValueError("animate needs an ASSET and --driving DATA (or --resume on an existing run)")
    downscale = args.downscale if args.downscale is not None else ((saved or {}).get("data") or {}).get("downscale", 1)
    report = animate(asset, driving, out, config, downscale=downscale, resume=args.resume, duration_s=args.duration, video_frames=args.video_frames)
    print(json.dumps(dataclasses.asdict(report)))
    return 0


def _cmd_dataset(args) -> int:
    from motion4d.pipelines.dataset_gltf import DatasetConfig, dataset_from_gltf

    config = DatasetConfig(views=args.views, test_views=args.test_views, frames=args.frames, res=args.res)
    out = dataset_from_gltf(args.asset, args.out, config, progress=not args.no_progress)
    print(json.dumps({"dataset": str(out), "views": args.views, "test_views": args.test_views, "frames": args.frames, "res": args.res}))
    return 0


def _cmd_evaluate(args) -> int:
    from motion4d.pipelines.evaluate import evaluate

    _check_device(args.device)
    result = evaluate(args.run, args.data, args.split, device=args.device)
    print(json.dumps(result))
    return 0


def _setup_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else (logging.WARNING if quiet else logging.INFO)
    root = logging.getLogger("motion4d")
    root.setLevel(level)
    if not any(getattr(h, "_motion4d", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        handler._motion4d = True
        root.addHandler(handler)
    for h in root.handlers:
        if getattr(h, "_motion4d", False):
            h.stream = sys.stderr  # follow redirection (tests capture stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the ``motion4d`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # --help
        return int(e.code or 0)
    _setup_logging(args.verbose, args.quiet)
    from motion4d.errors import DataError

    try:
        if args.command == "fit3d":
            if args.demo and args.data:
                raise ValueError("give either DATA or --demo, not both")
            return _cmd_fit3d(args, demo=args.demo)
        if args.command == "demo":
            return _cmd_reconstruct(args, demo=True)
        if args.command == "reconstruct":
            return _cmd_reconstruct(args, demo=False)
        if args.command == "render":
            return _cmd_render(args)
        if args.command == "export":
            return _cmd_export(args)
        if args.command == "animate":
            return _cmd_animate(args)
        if args.command == "dataset":
            return _cmd_dataset(args)
        return _cmd_evaluate(args)
    except (DataError, ValueError, FileNotFoundError, NotADirectoryError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted (resume with --resume)", file=sys.stderr)
        return 130
