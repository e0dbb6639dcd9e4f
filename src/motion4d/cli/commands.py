"""The ``motion4d`` subcommands, one table row each, and what running a row means.

A :class:`Pipeline` row trains into a run folder: its options are generated from the pipeline's inputs
dataclass and its config dataclass (see :mod:`motion4d.cli.options`), plus ``--out``, ``--preset`` and
``--resume``. Adding one costs a config dataclass (with presets), an inputs dataclass, a function
``fn(**inputs, out=, config=, resume=) -> report dataclass`` and a row in :data:`COMMANDS`. A :class:`Tool`
row runs one function of a run (evaluate, render, export) whose parameters are its options. Modules are
named as ``"module:attribute"`` and imported only when their command runs, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import json
import logging
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from motion4d.cli.options import Option, add_options, build, dataclass_options, dataclass_type, given, signature_options, with_values

log = logging.getLogger("motion4d")


def load(ref: str) -> Any:
    """The attribute named by ``"module:attribute"``."""
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def background(text: str) -> tuple[float, float, float]:
    """``white``, ``black`` or ``R,G,B`` in [0,1] → an RGB tuple."""
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


def check_device(device: str) -> None:
    """A ValueError unless ``device`` is "cpu" or an available "cuda[:N]"."""
    import torch

    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device must be cpu or cuda, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")


DEMO_PROMPT = "a red cube bouncing"
"""What ``motion4d demo`` generates (in the shipped prior's vocabulary; ``--prompt`` for another)."""
ALIASES = {"time_budget_s": "--time-budget"}
"""Option names of config fields every pipeline shares (field path → flag)."""
PARSERS = {"background": background}
"""Field path → text-to-value function, where the type alone does not say how to read it."""


@dataclass(frozen=True)
class Pipeline:
    """A subcommand that trains into a run folder: ``motion4d NAME [INPUT] --out RUN [options]``."""

    help: str
    """One line for ``motion4d --help``."""
    run: str
    """``"module:function"``: ``fn(**inputs, out=, config=, resume=)`` returning a report dataclass."""
    presets: str
    """``"module:PRESETS"``: preset name → config (the config dataclass is their type)."""
    inputs: str
    """``"module:Class"``: the inputs dataclass (fields without a default must be given, or come from a resumed run)."""
    pipeline: str | None = None
    """The name in ``config.json`` (default: the command's)."""
    default_preset: str = "default"
    """The preset used without ``--preset``."""
    positional: tuple[str, ...] = ()
    """Inputs given as positional arguments."""
    aliases: Mapping[str, str] = field(default_factory=dict)
    """Option names that differ from the field paths (besides :data:`ALIASES`)."""
    hidden: tuple[str, ...] = ()
    """Inputs not offered as options (``prepare`` sets them)."""
    input_defaults: Mapping[str, Any] = field(default_factory=dict)
    """Inputs defaults of this command that differ from the dataclass's."""
    out_default: str | None = None
    """The run folder without ``--out`` (None: ``--out`` is required)."""
    flags: Mapping[str, str] = field(default_factory=dict)
    """Extra on/off flags for ``prepare`` and their help."""
    prepare: Callable[[argparse.Namespace, Path, dict, str], tuple[dict, str]] | None = None
    """``(namespace, run folder, inputs dict, default preset) → (inputs dict, default preset)`` before the
    inputs are checked: where a demo writes its data."""
    viewer: bool = True
    """Whether ``--viewer`` (a live view of the fit in the browser, :mod:`motion4d.pipelines.live_viewer`) is offered."""

    def options(self) -> tuple[list[Option], list[Option]]:
        """(the inputs' options, the config's options)."""
        presets = load(self.presets)
        default = presets[self.default_preset]
        aliases = {**ALIASES, **self.aliases}
        inputs = [o for o in dataclass_options(load(self.inputs), aliases=aliases, positional=self.positional, defaults=self.input_defaults)
                  if o.path not in self.hidden]  # fmt: skip
        config = dataclass_options(type(default), default, aliases=aliases, parsers=PARSERS)
        clash = {o.flag for o in inputs} & {o.flag for o in config} | ({o.flag for o in inputs + config} & {"--out", "--preset", "--resume"})
        if clash:
            raise RuntimeError(f"options named twice: {', '.join(sorted(clash))}")
        return inputs, config

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Declare the command's options on its subparser."""
        inputs, config = self.options()
        parser.usage = " ".join(["%(prog)s", *(f"[{o.flag}]" for o in inputs if o.positional), "--out RUN" if self.out_default is None else "[--out RUN]",
                                 "[options]"])  # fmt: skip
        add_options(parser, [o for o in inputs if o.positional])
        if self.out_default is None:
            parser.add_argument("--out", required=True, metavar="RUN", help="run folder to write")
        else:
            parser.add_argument("--out", default=self.out_default, metavar="RUN", help=f"run folder (default: {self.out_default})")
        names = ", ".join(load(self.presets))
        parser.add_argument("--preset", choices=list(load(self.presets)), metavar="NAME", help=f"configuration preset: {names} (default: {self.default_preset})")
        parser.add_argument("--resume", action="store_true", help="continue the run from its newest checkpoint, with its saved config "
                            "and inputs (the preset's config with --preset); options given here override them")  # fmt: skip
        for flag, text in self.flags.items():
            parser.add_argument(f"--{flag}", action="store_true", help=text)
        if self.viewer:
            parser.add_argument("--viewer", action="store_true", help="watch the fit live in the browser (viser; the URL is logged)")
            parser.add_argument("--viewer-host", default="127.0.0.1", metavar="HOST", help="address the viewer binds (default: 127.0.0.1)")
            parser.add_argument("--viewer-port", type=int, default=0, metavar="PORT", help="viewer port (default: a free one)")
        add_options(parser, [o for o in inputs if not o.positional] + config)

    def main(self, name: str, ns: argparse.Namespace) -> dict:
        """Run the pipeline as the namespace says; returns its report as a dict."""
        from motion4d.pipelines.run import RunFolder

        inputs_opts, config_opts = self.options()
        flags = {o.path: o.flag for o in inputs_opts + config_opts}
        presets, inputs_cls = load(self.presets), load(self.inputs)
        run = RunFolder(ns.out)
        saved_config = saved_inputs = None
        if ns.resume and run.has_config():
            saved_config, saved = run.load_config(type(presets[self.default_preset]), inputs_cls, pipeline=self.pipeline or name)
            saved_inputs = dataclasses.asdict(saved)
        inputs = {**(saved_inputs if saved_inputs is not None else self.input_defaults), **given(ns, inputs_opts)}
        preset = self.default_preset
        if self.prepare is not None:
            inputs, preset = self.prepare(ns, run.path, inputs, preset)
        base = saved_config if saved_config is not None and ns.preset is None else presets[ns.preset or preset]
        config = with_values(base, given(ns, config_opts), flags)
        missing = [f.name for f in dataclasses.fields(inputs_cls) if f.name not in inputs
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]  # fmt: skip
        if missing:
            what = " and ".join(flags.get(m, m.upper()) for m in missing)
            raise ValueError(f"{name} needs {what} (or --resume on an existing run)")
        inputs = build(inputs_cls, inputs, flags)
        if hasattr(config, "device"):
            check_device(config.device)
        fn = load(self.run)
        if not getattr(ns, "viewer", False):
            return dataclasses.asdict(fn(**dataclasses.asdict(inputs), out=run.path, config=config, resume=ns.resume))
        from motion4d.optim.observers import observing
        from motion4d.pipelines.live_viewer import LiveViewer

        with LiveViewer(ns.viewer_host, ns.viewer_port or None) as viewer, observing(viewer):
            report = fn(**dataclasses.asdict(inputs), out=run.path, config=config, resume=ns.resume)
        log.info("live viewer: %d updates, %.1f s", viewer.updates, viewer.seconds)
        return dataclasses.asdict(report)


@dataclass(frozen=True)
class Tool:
    """A subcommand that calls functions with its options' values and prints what it returns (JSON)."""

    help: str
    """One line for ``motion4d --help``."""
    run: Callable[..., dict]
    """``run(values, *functions)``: the options' values (by parameter name) and the loaded ``sources``."""
    sources: tuple[str, ...]
    """``"module:function"``s whose parameters the options are (defaults and types from their signatures)."""
    helps: Mapping[str, str]
    """Parameter → help text, for the parameters offered (a dataclass parameter offers its fields)."""
    positional: tuple[str, ...] = ()
    """Parameters given as positional arguments."""
    aliases: Mapping[str, str] = field(default_factory=dict)
    """Option names that differ from the parameter names."""
    choices: Mapping[str, tuple] = field(default_factory=dict)
    """Allowed values of parameters whose type does not list them."""

    def options(self) -> list[Option]:
        """The options, from the first source that has each parameter."""
        seen, options = set(), []
        for fn in map(load, self.sources):
            helps = {k: v for k, v in self.helps.items() if k not in seen}
            options += signature_options(fn, helps, aliases=self.aliases, choices=self.choices, positional=self.positional)
            seen |= set(helps) & set(inspect.signature(fn).parameters)
        return options

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Declare the command's options on its subparser."""
        add_options(parser, self.options())

    def main(self, name: str, ns: argparse.Namespace) -> dict:
        """Call ``run`` with the values (defaults where not given); dataclass parameters built from their fields."""
        options = self.options()
        values = {**{o.path: o.default for o in options}, **given(ns, options)}
        flags = {o.path: o.flag for o in options}
        fns = [load(ref) for ref in self.sources]
        for fn in fns:
            for pname, tp in typing.get_type_hints(fn).items():
                if pname in self.helps and dataclass_type(tp) is not None:
                    names = {f.name for f in dataclasses.fields(dataclass_type(tp))}
                    values[pname] = build(dataclass_type(tp), {k: values.pop(k) for k in list(values) if k in names}, flags)
        if "device" in values:
            check_device(values["device"])
        return self.run(values, *fns)


@dataclass(frozen=True)
class Group:
    """A subcommand with subcommands of its own (``motion4d dataset from-gltf``)."""

    help: str
    """One line for ``motion4d --help``."""
    commands: Mapping[str, Pipeline | Tool]
    """Name → command."""


# ---- what some rows do besides the generated part ----------------------------------------------
def _fit3d_demo(ns: argparse.Namespace, run: Path, inputs: dict, preset: str) -> tuple[dict, str]:
    """``fit3d --demo``: the static demo scene in RUN/data (written once) and the "demo" preset."""
    if not ns.demo:
        return inputs, preset
    if ns.data is not None:
        raise ValueError("give either DATA or --demo, not both")
    from motion4d.data.synthetic import make_demo_scene

    data = run / "data"
    return {**inputs, "data": str(data if (data / "transforms_train.json").is_file() else make_demo_scene(data))}, "demo"


def _reconstruct_demo(ns: argparse.Namespace, run: Path, inputs: dict, preset: str) -> tuple[dict, str]:
    """``reconstruct --demo``: the moving demo scene in RUN/data (written once), the "demo" preset and 12 PLYs."""
    if not ns.demo:
        return inputs, preset
    if ns.data is not None:
        raise ValueError("give either DATA or --demo, not both")
    from motion4d.data.synthetic import make_dynamic_demo_scene

    data = run / "data"
    if not (data / "transforms_train.json").is_file():
        log.info("writing the dynamic demo scene to %s", data)
        make_dynamic_demo_scene(data)
    return {**inputs, "data": str(data), "ply_frames": inputs.get("ply_frames") or 12}, "demo"


def _render(values: dict, render_video) -> dict:
    render_video(**values)
    return {"video": str(values["out"]), "frames": values["frames"]}


def _export(values: dict, export_run, export_run_glb, export_web) -> dict:
    if values["fmt"] in ("splatv", "html"):
        return export_web(values["run"], values["fmt"], values["out"], segments=values["segments"])
    if values["fmt"] == "glb":
        path = export_run_glb(values["run"], values["out"], duration_s=values["duration_s"])
    else:
        path = export_run(values["run"], values["fmt"], values["out"], frames=values["frames"])
    return {"format": values["fmt"], "out": str(path)}


def _view(values: dict, view) -> dict:
    """Print the page's address (a JSON line) as soon as it is served, then serve until interrupted."""
    return view(**values, announce=lambda url: print(json.dumps({"url": url}), flush=True))


def _dataset(values: dict, dataset_from_gltf) -> dict:
    out, c = dataset_from_gltf(**values), values["config"]
    return {"dataset": str(out), "views": c.views, "test_views": c.test_views, "frames": c.frames, "res": c.res}


def _characters(values: dict, dataset_characters) -> dict:
    manifest = dataset_characters(**values)
    return {"root": str(values["out"]), "datasets": [e["name"] for e in manifest["datasets"]], "held_out_from": manifest["held_out_from"]}


def _synth(values: dict, dataset_synth) -> dict:
    result = dataset_synth(**values)
    return {**dataclasses.asdict(result), "root": str(result.root)}


_RECONSTRUCT = dict(run="motion4d.pipelines.reconstruct:reconstruct", presets="motion4d.optim.trainer4d:PRESETS",
                    inputs="motion4d.pipelines.reconstruct:ReconstructInputs", aliases={"sampler.kind": "--sampler"})  # fmt: skip
_RUN_HELP = {"run": "run folder or .m4d file", "data": "dataset folder (default: the run's)", "device": "cpu or cuda"}

COMMANDS: dict[str, Pipeline | Tool | Group] = {
    "fit3d": Pipeline(
        "fit static 3D Gaussians to posed images",
        run="motion4d.pipelines.fit3d:fit3d", presets="motion4d.optim.trainer3d:PRESETS", inputs="motion4d.pipelines.fit3d:Fit3DInputs",
        positional=("data",), flags={"demo": "fit the built-in demo scene (written to RUN/data) with the 'demo' preset"}, prepare=_fit3d_demo,
    ),
    "reconstruct": Pipeline(
        "fit animated 4D Gaussians to a dynamic (multi-view video) dataset", positional=("data",),
        flags={"demo": "reconstruct the built-in moving demo scene (written to RUN/data) with the 'demo' preset"}, prepare=_reconstruct_demo, **_RECONSTRUCT,
    ),
    "evaluate": Tool(
        "metrics of a fitted run on a dataset split (JSON on stdout)", lambda values, evaluate: evaluate(**values),
        ("motion4d.pipelines.evaluate:evaluate",), {**_RUN_HELP, "run": "run folder (any pipeline) or .m4d file", "split": "split to evaluate (default: test, else val, else train)"},
        positional=("run",),
    ),
    "render": Tool(
        "render a run's model over time into a video", _render, ("motion4d.pipelines.render_video:render_video",),
        {"run": _RUN_HELP["run"], "out": "video file (.mp4 or .gif)", "orbit": "camera circles the scene while time advances",
         "view": "fixed camera: view I of the test split", "frames": "number of frames", "fps": "frames per second",
         "data": _RUN_HELP["data"], "device": _RUN_HELP["device"]},
        positional=("run",),
    ),  # fmt: skip
    "export": Tool(
        "export a run's model: per-frame PLYs, one .m4d file, an animated glTF, a .splatv or a self-contained web player", _export,
        ("motion4d.pipelines.export_run:export_run", "motion4d.pipelines.animate:export_run_glb", "motion4d.pipelines.export_web:export_web"),
        {"run": _RUN_HELP["run"], "fmt": "ply-sequence, m4d, glb (animate runs), splatv (web 4D Gaussians) or html (a player page that opens from disk)",
         "out": "folder (ply-sequence) or file (m4d, glb, splatv, html)", "frames": "ply-sequence: number of frames",
         "duration_s": "glb: animation length in seconds (default: keyframes / 16)",
         "segments": "splatv, html: time segments a model other than rotor4d is baked into (default: a deformation graph's keyframe intervals; "
                     "for a deformation field the fewest of 1, 2, 4, 8, 16 whose check reaches 40 dB)"},
        positional=("run",), aliases={"fmt": "--format", "duration_s": "--duration"}, choices={"fmt": ("ply-sequence", "m4d", "glb", "splatv", "html")},
    ),  # fmt: skip
    "view": Tool(
        "play a run folder, .m4d, .splatv or .glb in the web player, served on 127.0.0.1 until Ctrl-C", _view,
        ("motion4d.pipelines.view:view",),
        {"run": "run folder, .m4d, .splatv or .glb file", "host": "address to serve on", "port": "port (0: a free one; the address is printed)",
         "browser": "open the page in the default browser"},
        positional=("run",),
    ),  # fmt: skip
    "animate": Pipeline(
        "animate a static mesh (glTF/GLB, OBJ, PLY) with the motion of a multi-view driving video",
        run="motion4d.pipelines.animate:animate", presets="motion4d.optim.trainer_animate:PRESETS", inputs="motion4d.pipelines.animate:AnimateInputs",
        positional=("asset",), aliases={"n_nodes": "--nodes", "duration_s": "--duration"},
    ),
    "dataset": Group("make datasets", {
        "from-gltf": Tool(
            "render an animated glTF/GLB into a multi-view video dataset (D-NeRF format)", _dataset,
            ("motion4d.pipelines.dataset_gltf:dataset_from_gltf",),
            {"asset": "animated .glb / .gltf file", "out": "dataset folder to create", "config": "", "progress": "progress bar"},
            positional=("asset",),
        ),
        "characters": Tool(
            "rigged, animated test characters (quadruped, biped, snake, bird, machine) as GLB files and multi-view video datasets", _characters,
            ("motion4d.pipelines.dataset_characters:dataset_characters",),
            {"out": "folder to write (gltf/, multiview/, characters.json; kept datasets are not redone)", "n": "number of characters",
             "seed": "first seed (seeds >= 1000 are the held-out set)", "config": "", "render": "render the datasets (--no-render: GLB files only)",
             "progress": "progress bar", "subdivide": "split each surface into 4 this many times (dense assets of the same shape and motion)"},
        ),
        "synth": Tool(
            "render the captioned synthetic multi-view video dataset (packed shards and sample folders)", _synth,
            ("motion4d.pipelines.dataset_synth:dataset_synth",),
            {"out": "dataset folder to create", "n": "training samples (with --captions: samples in all; default one per line)",
             "seed": "seed of every random choice", "captions": "file of captions, one per line: the samples to make", "config": "",
             "workers": "processes rendering samples in parallel", "progress": "progress bar"},
        ),
    }),  # fmt: skip
    "train-prior": Pipeline(
        "train the multi-view video diffusion prior on a packed dataset (dataset synth); accelerate launch for GPUs",
        run="motion4d.pipelines.train_prior:train_prior", presets="motion4d.pipelines.train_prior:PRESETS",
        inputs="motion4d.pipelines.train_prior:PriorTrainInputs", positional=("data",), viewer=False,
    ),
    "text-to-4d": Pipeline(
        "generate an animated 4D asset from a prompt: sample multi-view video with the prior, fit 4D-Rotor Gaussians",
        run="motion4d.pipelines.text_to_4d:text_to_4d", presets="motion4d.pipelines.text_to_4d:PRESETS",
        inputs="motion4d.pipelines.text_to_4d:TextTo4DInputs", positional=("prompt",), aliases={"sampler.kind": "--sampler"},
    ),
    "demo": Pipeline(
        "text → 4D on the built-in prompt with the shipped prior (text-to-4d; a few min on a CPU)",
        run="motion4d.pipelines.text_to_4d:text_to_4d", presets="motion4d.pipelines.text_to_4d:PRESETS", pipeline="text-to-4d",
        inputs="motion4d.pipelines.text_to_4d:TextTo4DInputs", hidden=("prompts",), input_defaults={"prompt": DEMO_PROMPT},
        aliases={"sampler.kind": "--sampler"}, out_default="runs/demo",
    ),
}
"""Every ``motion4d`` subcommand, in the order ``--help`` lists them."""
