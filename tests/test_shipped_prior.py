"""The prior that ships inside the package: it loads offline, and text-to-4d runs on it end to end (slow)."""

import json

import pytest
import torch

from motion4d.cli import main
from motion4d.cli.commands import DEMO_PROMPT
from motion4d.priors.mvvideo import load_denoiser, shipped_prior_path


def test_shipped_prior_loads_and_fits_the_size_limit():
    folder = shipped_prior_path()
    weights = folder / "diffusion_pytorch_model.safetensors"
    assert weights.is_file() and weights.stat().st_size <= 20e6
    model = load_denoiser()
    assert model.config.sample_size >= 64 and model.config.text_encoder.startswith("bundled:")
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_demo_is_text_to_4d_on_the_shipped_prior(tmp_path, capsys):
    run = tmp_path / "demo"
    assert main(["demo", "--out", str(run), "--preset", "tiny", "--iters", "2", "--video-frames", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["prompt"] == DEMO_PROMPT and report["prior"] == "shipped" and report["iters"] == 2
    assert json.loads((run / "config.json").read_text())["pipeline"] == "text-to-4d"
    assert (run / "grid" / "grid.png").is_file() and (run / "model.m4d").is_file() and (run / "video.mp4").is_file()


@pytest.mark.slow
def test_demo_on_the_shipped_prior(tmp_path):
    run = tmp_path / "run"
    assert main(["demo", "--out", str(run), "--video-frames", "8"]) == 0
    report = json.loads((run / "report.json").read_text())
    assert report["prior"] == "shipped" and report["views"] == 4 and report["frames"] == 8
    assert report["psnr"] > 20.0 and report["motion_amplitude"] > 0.0
    grid = json.loads((run / "grid" / "transforms_train.json").read_text())
    assert len(grid["frames"]) == 32
    import imageio.v3 as iio

    alpha = torch.stack([torch.from_numpy(iio.imread(run / "grid" / f"{f['file_path']}.png"))[..., 3] for f in grid["frames"]]).float() / 255
    coverage = (alpha > 0.5).float().mean()
    assert 0.01 < coverage < 0.5  # an object, neither an empty nor a full frame
    assert (run / "video.mp4").stat().st_size > 0
