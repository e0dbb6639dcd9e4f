"""text-to-4d end to end on a tiny random prior the tests save themselves: the Python pipeline, the CLI, the
run folder the other commands read, resume, --prompts, and bad input."""

import json

import imageio.v3 as iio
import pytest
import torch

from motion4d.cli import main
from motion4d.errors import DataError
from motion4d.pipelines.text_to_4d import PRESETS, TextTo4DPipeline
from motion4d.priors.mvvideo import MultiViewVideoTransformer, load_denoiser

PROMPT = "a red cube bouncing"


@pytest.fixture(scope="module")
def prior(tmp_path_factory):
    """A tiny random prior whose output depends on its input (the zero-initialised output layers perturbed)."""
    torch.manual_seed(0)
    model = MultiViewVideoTransformer(patch_size=4, width=32, depth=4, heads=2, motion_tokens=2, sample_size=16)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(("patch_out", "ada_out")) or ".ada." in name:
                p.normal_(0.0, 0.05)
    folder = tmp_path_factory.mktemp("prior") / "tiny"
    model.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def pipe(prior):
    return TextTo4DPipeline.from_pretrained(prior)


@pytest.fixture(scope="module")
def cli_run(prior, tmp_path_factory):
    run = tmp_path_factory.mktemp("t2d") / "run"
    assert main(["text-to-4d", PROMPT, "--prior", str(prior), "--out", str(run), "--preset", "tiny", "--video-frames", "3", "--seed", "3"]) == 0
    return run


def test_sampled_grid_follows_seed_prompt_and_motion_scale(pipe):
    cfg = PRESETS["tiny"]
    a, b = pipe.sample([PROMPT, PROMPT], cfg, seed=1)
    assert a.rgba.shape == (cfg.views, cfg.frames, 16, 16, 4) and 0 <= float(a.rgba.min()) and float(a.rgba.max()) <= 1
    assert a.azimuth_deg.tolist() == [0.0, 180.0] and a.times.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    same = pipe.sample(PROMPT, cfg, seed=1)[0]
    assert torch.equal(pipe.sample(PROMPT, cfg, seed=1)[0].rgba, same.rgba)  # the same call: the same bits
    # alone or first in a batch: the same sample, up to the float rounding of batched kernels (~2e-6)
    torch.testing.assert_close(same.rgba, a.rgba, atol=1e-4, rtol=0)
    differs = lambda x: float((x.rgba - a.rgba).abs().max()) > 1e-2  # noqa: E731
    assert differs(pipe.sample(PROMPT, cfg, seed=2)[0])
    assert differs(pipe.sample("a blue torus spinning", cfg, seed=1)[0])
    assert differs(pipe.sample(PROMPT, cfg, seed=1, motion_scale=2.0)[0])
    with pytest.raises(ValueError, match="prompt is empty"):
        pipe.sample("  ", cfg)


def test_pipeline_call_returns_grid_model_and_report(pipe, tmp_path):
    out = pipe(PROMPT, seed=1, motion_scale=0.5, out=tmp_path / "run", config=PRESETS["tiny"], video_frames=0)
    assert out.run == tmp_path / "run" and out.report.prompt == PROMPT and out.report.seed == 1 and out.report.motion_scale == 0.5
    frame = out.model.at_time(0.5)
    assert frame.means.shape[0] == out.report.n_gaussians > 0
    again = pipe(PROMPT, seed=1, motion_scale=0.5, config=PRESETS["tiny"], video_frames=0)  # no folder: a temporary one
    assert again.run is None and torch.equal(again.grid.rgba, out.grid.rgba)


def test_cli_run_folder(cli_run):
    names = {p.name for p in cli_run.iterdir()}
    assert {"config.json", "grid", "checkpoints", "model.m4d", "video.mp4", "report.json"} <= names
    report = json.loads((cli_run / "report.json").read_text())
    assert report["prompt"] == PROMPT and report["seed"] == 3 and report["steps"] == PRESETS["tiny"].steps
    assert report["guidance"] == PRESETS["tiny"].guidance and report["split"] == "train" and report["motion_amplitude"] >= 0
    assert set(report["seconds_per_stage"]) == {"sample", "fit", "total"}
    config = json.loads((cli_run / "config.json").read_text())
    assert config["pipeline"] == "text-to-4d" and config["inputs"]["prompt"] == PROMPT
    grid = json.loads((cli_run / "grid" / "transforms_train.json").read_text())
    assert grid["caption"] == PROMPT and len(grid["frames"]) == PRESETS["tiny"].views * PRESETS["tiny"].frames
    assert iio.imread(cli_run / "grid" / "train" / "v00_f00.png").shape == (16, 16, 4)
    assert (cli_run / "grid" / "grid.png").is_file()


def test_other_commands_read_the_run(cli_run, tmp_path, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(cli_run)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["psnr"] > 0
    assert main(["render", str(cli_run), "--out", str(tmp_path / "v.mp4"), "--frames", "3"]) == 0
    assert (tmp_path / "v.mp4").stat().st_size > 0
    assert main(["export", str(cli_run), "--format", "ply-sequence", "--out", str(tmp_path / "ply"), "--frames", "2"]) == 0
    assert len(list((tmp_path / "ply").glob("*.ply"))) == 2


def test_resume_reuses_the_grid_and_refuses_an_overwrite(cli_run, prior, tmp_path, capsys):
    run = tmp_path / "run"
    import shutil

    shutil.copytree(cli_run, run)
    png = (run / "grid" / "train" / "v01_f02.png").read_bytes()
    args = ["text-to-4d", PROMPT, "--prior", str(prior), "--out", str(run), "--preset", "tiny", "--video-frames", "0", "--seed", "3"]
    capsys.readouterr()
    assert main(args) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0
    assert (run / "grid" / "train" / "v01_f02.png").read_bytes() == png
    assert main(["text-to-4d", "a blue torus spinning", "--prior", str(prior), "--out", str(run), "--preset", "tiny", "--resume"]) == 2
    assert "sampled for another prompt" in capsys.readouterr().err


def test_prompts_file(prior, tmp_path):
    lines = tmp_path / "prompts.txt"
    lines.write_text(f"{PROMPT}\n\na green cone spinning\n")
    run = tmp_path / "lib"
    assert main(["text-to-4d", "--prompts", str(lines), "--prior", str(prior), "--out", str(run), "--preset", "tiny", "--video-frames", "0"]) == 0
    assert json.loads((run / "1" / "report.json").read_text())["prompt"] == "a green cone spinning"
    report = json.loads((run / "report.json").read_text())
    assert report["prompts"] == 2 and report["runs"] == [str(run / "0"), str(run / "1")]


@pytest.mark.parametrize(
    "args, message",
    [
        (["   "], "prompt is empty"),
        ([], "needs a PROMPT or --prompts"),
        ([PROMPT, "--steps", "0"], "--steps"),
        ([PROMPT, "--frames", "1"], "--frames"),
        ([PROMPT, "--motion-scale", "-1"], "--motion-scale"),
    ],
)
def test_bad_input_is_one_error_line(prior, tmp_path, capsys, args, message):
    capsys.readouterr()
    assert main(["text-to-4d", *args, "--prior", str(prior), "--out", str(tmp_path / "r"), "--preset", "tiny"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message.lower() in err.lower() and len(err.splitlines()) == 1


def test_bad_prior_folders_are_named(prior, tmp_path, capsys):
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(prior, broken)
    (broken / "diffusion_pytorch_model.safetensors").write_bytes(b"not safetensors")
    for folder in (not_a_model, broken, tmp_path / "missing"):
        capsys.readouterr()
        assert main(["text-to-4d", PROMPT, "--prior", str(folder), "--out", str(tmp_path / "r"), "--preset", "tiny"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and str(folder) in err and len(err.splitlines()) == 1
    with pytest.raises(DataError, match="not a prior model folder"):
        load_denoiser(not_a_model)
