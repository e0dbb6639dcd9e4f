"""The command line generated from the configs: every subcommand's help, one-line errors naming the option,
options reaching the config, and the generator itself on a small dataclass."""

import argparse
import json
from dataclasses import dataclass, field
from typing import Literal

import pytest

from motion4d.cli import main
from motion4d.cli.commands import COMMANDS, Group
from motion4d.cli.options import add_options, dataclass_options, given, name_options, with_values
from motion4d.optim.trainer4d import PRESETS

SUBCOMMANDS = [[name] for name in COMMANDS] + [[name, sub] for name, row in COMMANDS.items() if isinstance(row, Group) for sub in row.commands]
pytestmark = pytest.mark.usefixtures("fake_kind")


@pytest.mark.parametrize("words", [[]] + SUBCOMMANDS, ids=lambda w: " ".join(w) or "motion4d")
def test_every_help_exits_0(words, capsys):
    assert main([*words, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: motion4d")


def test_pipeline_help_lists_config_fields_with_their_docstrings_and_defaults(capsys):
    assert main(["reconstruct", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--time-budget", "--sampler {sliding,uniform}", "--densify.refine-every", "--no-progress", "--background",
                 "--video-frames", "--model", "--resume", "Optimisation steps. (default: 3000)"):  # fmt: skip
        assert text in out, text
    assert "--time-budget-s" not in out and "--sampler.kind" not in out  # aliases replace the generated names


@pytest.mark.parametrize(
    "argv, named",
    [
        (["fit3d", "{static}", "--out", "{tmp}/x", "--bogus", "1"], "--bogus"),
        (["fit3d", "{static}", "--out", "{tmp}/x", "--iters", "abc"], "--iters"),
        (["fit3d", "{static}", "--out", "{tmp}/x", "--init", "grid"], "--init"),
        (["fit3d", "{static}", "--out", "{tmp}/x", "--densify.refine-every", "1.5"], "--densify.refine-every"),
        (["fit3d", "{static}", "--out", "{tmp}/x", "--downscale", "0"], "--downscale must be >= 1"),
        (["fit3d", "{static}", "--out", "{tmp}/x", "--demo"], "DATA or --demo"),
        (["reconstruct", "{dynamic}", "--out", "{tmp}/x", "--sampler", "random"], "--sampler"),
        (["reconstruct", "{dynamic}", "--out", "{tmp}/x", "--background", "pink"], "--background"),
        (["reconstruct", "{dynamic}", "--out", "{tmp}/x", "--video-frames", "-1"], "--video-frames must be >= 0"),
        (["reconstruct", "{dynamic}", "--out", "{tmp}/x", "--device", "tpu"], "device"),
        (["reconstruct", "{dynamic}", "--out", "{tmp}/x", "--time-budget", "soon"], "--time-budget"),
        (["animate", "--out", "{tmp}/x"], "animate needs ASSET and --driving"),
        (["animate", "a.glb", "--driving", "{dynamic}", "--out", "{tmp}/x", "--duration", "0"], "--duration must be > 0"),
        (["render", "{tmp}", "--out", "{tmp}/v.mp4", "--frames", "many"], "--frames"),
        (["export", "{tmp}", "--out", "{tmp}/m"], "--format"),
        (["dataset", "from-gltf", "a.glb", "--out", "{tmp}/d", "--views", "0"], "--views must be >= 1"),
        (["dataset", "bogus"], "bogus"),
    ],
)
def test_bad_options_are_one_error_line_naming_the_option(argv, named, tiny_static_data, tiny_dynamic_data, tmp_path, capsys):
    subst = {"{static}": str(tiny_static_data), "{dynamic}": str(tiny_dynamic_data), "{tmp}": str(tmp_path)}
    for k, v in subst.items():
        argv = [a.replace(k, v) for a in argv]
    assert main(["-q", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and named in err[0], err


def test_options_from_config_fields_reach_the_config(tiny_dynamic_data, tmp_path, capsys):
    run = tmp_path / "r"
    argv = ["-q", "reconstruct", str(tiny_dynamic_data), "--out", str(run), "--model", "fake", "--preset", "tiny", "--iters", "2",
            "--sampler", "sliding", "--densify.refine-every", "7", "--no-densify.enabled", "--lambda-dssim", "0.25",
            "--background", "black", "--sampler.frames-per-step", "3",
            "--time-budget", "100", "--no-progress", "--video-frames", "0"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sampler"] == "sliding" and report["iters"] == 2
    saved = json.loads((run / "config.json").read_text())
    c = saved["config"]
    assert saved["pipeline"] == "reconstruct" and saved["inputs"]["model"] == "fake" and saved["inputs"]["video_frames"] == 0
    assert c["sampler"]["kind"] == "sliding" and c["sampler"]["frames_per_step"] == 3
    assert c["densify"]["refine_every"] == 7 and c["densify"]["enabled"] is False
    assert c["lambda_dssim"] == 0.25 and c["background"] == [0.0, 0.0, 0.0] and c["time_budget_s"] == 100.0
    assert c["progress"] is False and c["n_init"] == PRESETS["tiny"].n_init  # the rest: the tiny preset's


def test_resume_takes_the_saved_config_unless_a_preset_is_given(tiny_static_data, tmp_path, capsys):
    run = tmp_path / "r"
    base = ["-q", "fit3d", "--out", str(run), "--no-progress", "--orbit-frames", "0"]
    assert main([*base[:2], str(tiny_static_data), *base[2:], "--preset", "tiny", "--iters", "2", "--lr-quats", "0.002"]) == 0
    assert main([*base, "--resume", "--iters", "3"]) == 0
    c = json.loads((run / "config.json").read_text())["config"]
    assert c["iters"] == 3 and c["lr_quats"] == 0.002  # saved value kept, CLI override applied
    assert main([*base, "--resume", "--preset", "tiny", "--iters", "4"]) == 0
    c = json.loads((run / "config.json").read_text())["config"]
    assert c["iters"] == 4 and c["lr_quats"] == 1e-3  # the preset's value


def test_resume_of_another_pipelines_run_is_an_error(tiny_static_data, tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["-q", "fit3d", str(tiny_static_data), "--out", str(run), "--preset", "tiny", "--iters", "1", "--no-progress", "--orbit-frames", "0"]) == 0
    capsys.readouterr()
    assert main(["-q", "reconstruct", "--out", str(run), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "config.json" in err and "fit3d run" in err


def test_dataset_synth_from_its_function_and_config(tmp_path, capsys):
    out = tmp_path / "synth"
    argv = ["-q", "dataset", "synth", "--out", str(out), "--n", "1", "--res", "8", "--frames", "2", "--views-per-sample", "4",
            "--folders", "0", "--held-out-samples", "1", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["root"] == str(out) and result["n_train"] == 1 and result["n_held_out"] == 1
    assert json.loads((out / "dataset.json").read_text())["res"] == 8


# ---- the generator on its own ---------------------------------------------------------------
@dataclass(frozen=True)
class Inner:
    """A nested config."""

    every: int = 10
    """How often."""


@dataclass(frozen=True)
class Toy:
    """A config with one field of each kind."""

    steps: int = 5
    """Number of ``steps`` (see :class:`~motion4d.cli.options.Option`), 100 % of them."""
    rate: float | None = None
    """A rate."""
    mode: Literal["a", "b"] = "a"
    """A mode."""
    fast: bool = False
    """Go fast."""
    colour: tuple[float, float, float] = (1.0, 0.5, 0.0)
    """A colour."""
    scales: tuple[float, ...] = (1.0,)
    """Some scales."""
    inner: Inner = field(default_factory=Inner)
    """Nested."""
    table: dict = field(default_factory=dict)
    """No command-line form."""

    def __post_init__(self):
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")


def _parse(argv, **kw):
    options = dataclass_options(Toy, **kw)
    p = argparse.ArgumentParser()
    add_options(p, options)
    return options, given(p.parse_args(argv), options)


def test_generator_fields_types_and_help():
    options, values = _parse([])
    by_flag = {o.flag: o for o in options}
    assert list(by_flag) == ["--steps", "--rate", "--mode", "--fast", "--colour", "--scales", "--inner.every"]
    assert by_flag["--steps"].help == "Number of steps (see Option), 100 % of them. (default: 5)"
    assert by_flag["--mode"].choices == ("a", "b") and by_flag["--rate"].help == "A rate."
    assert values == {}
    _, values = _parse(["--steps", "3", "--rate", "0.5", "--mode", "b", "--fast", "--colour", "0,0,1", "--scales", "2,3", "--inner.every", "4"])
    assert values == {"steps": 3, "rate": 0.5, "mode": "b", "fast": True, "colour": (0.0, 0.0, 1.0), "scales": (2.0, 3.0), "inner.every": 4}
    toy = with_values(Toy(), values, {})
    assert toy.inner == Inner(4) and toy.colour == (0.0, 0.0, 1.0) and toy.fast
    _, values = _parse(["--no-fast"])
    assert values == {"fast": False}


def test_generator_aliases_and_validation_messages_name_the_option():
    options, values = _parse(["--every", "2"], aliases={"inner.every": "--every", "steps": "--iters"})
    flags = {o.path: o.flag for o in options}
    assert values == {"inner.every": 2} and flags["steps"] == "--iters"
    with pytest.raises(ValueError, match=r"^--iters must be >= 0, got -1$"):
        with_values(Toy(), {"steps": -1}, flags)
    assert name_options("every must be > 0", flags, "inner.") == "--every must be > 0"
    assert name_options("something else went wrong", flags) == "something else went wrong"
    with pytest.raises(SystemExit):
        _parse(["--colour", "1,2"])
