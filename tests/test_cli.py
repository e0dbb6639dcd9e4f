"""The motion4d command end to end on the demo scene (tiny preset), plus its error handling."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from motion4d.cli import main
from motion4d.data.transforms import load_transforms
from motion4d.export.ply import load_ply
from motion4d.gaussians import Gaussians3D
from motion4d.metrics.image import psnr

FIT = ["--preset", "tiny", "--iters", "60", "--no-progress"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "demo"
    assert main(["fit3d", "--demo", "--out", str(run), *FIT]) == 0
    return run


def test_fit3d_demo_writes_run_folder(demo_run):
    for name in ("config.json", "report.json", "point_cloud.ply", "orbit.mp4", "gaussians.safetensors"):
        assert (demo_run / name).is_file(), name
    assert list((demo_run / "checkpoints").glob("step_*.safetensors"))
    report = json.loads((demo_run / "report.json").read_text())
    assert {"psnr", "ssim", "n_images", "n_gaussians", "seconds", "iters", "split"} <= set(report)
    assert report["split"] == "test" and report["iters"] == 60
    # Clearly better than rendering nothing (the background alone).
    test = load_transforms(demo_run / "data", "test")
    empty = psnr(torch.ones_like(test.images), test.images).item()
    assert report["psnr"] > empty + 3, (report["psnr"], empty)
    ply = load_ply(demo_run / "point_cloud.ply")
    assert len(ply["means"]) == report["n_gaussians"] == len(Gaussians3D.load(demo_run / "gaussians.safetensors"))
    config = json.loads((demo_run / "config.json").read_text())
    assert config["fit"]["iters"] == 60 and Path(config["data"]["root"]) == (demo_run / "data").resolve()


def test_evaluate_prints_only_json(demo_run, capsys):
    assert main(["evaluate", str(demo_run), "--split", "train"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"psnr", "ssim", "n_images", "motion_amplitude", "seconds_per_frame_render", "split"} <= set(out)
    assert out["split"] == "train" and out["motion_amplitude"] == 0.0


def test_resume_continues_a_run(demo_run, tmp_path):
    run = tmp_path / "r"
    assert main(["fit3d", str(demo_run / "data"), "--out", str(run), *FIT, "--iters", "10"]) == 0
    assert main(["fit3d", "--out", str(run), "--resume", "--iters", "20", "--no-progress"]) == 0
    report = json.loads((run / "report.json").read_text())
    assert report["iters"] == 20
    assert json.loads((run / "config.json").read_text())["fit"]["iters"] == 20


def test_python_m_motion4d_evaluate(demo_run):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    p = subprocess.run(
        [sys.executable, "-m", "motion4d", "evaluate", str(demo_run), "--data", str(demo_run / "data")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["split"] == "test"


@pytest.mark.parametrize(
    "argv",
    [
        ["fit3d", "/no/such/dataset", "--out", "{tmp}/x"],
        ["fit3d", "--out", "{tmp}/x"],
        ["fit3d", "--demo", "--out", "{tmp}/x", "--background", "pink"],
        ["fit3d", "--demo", "--out", "{tmp}/x", "--preset", "nope"],
        ["fit3d", "--demo", "--out", "{tmp}/x", "--iters", "-3"],
        ["evaluate", "{tmp}"],
        ["bogus"],
    ],
)
def test_user_errors_exit_2_with_one_line(argv, tmp_path, capsys):
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err


def test_evaluate_missing_split_is_a_user_error(demo_run, capsys):
    assert main(["evaluate", str(demo_run), "--split", "val"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_init_from_points(demo_run, tmp_path, capsys):
    run = tmp_path / "p"
    argv = ["fit3d", str(demo_run / "data"), "--out", str(run), *FIT, "--iters", "2", "--points", str(demo_run / "point_cloud.ply")]
    assert main(argv) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["fit"]["init"] == "points" and config["data"]["points"].endswith("point_cloud.ply")
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["iters"] == 2


def test_fit3d_reads_a_nerfstudio_transforms_json(demo_run, tmp_path):
    """The demo scene re-packed as one nerfstudio transforms.json with explicit split lists."""
    import math
    import shutil

    src = demo_run / "data"
    root = tmp_path / "ns"
    shutil.copytree(src, root)
    frames, lists = [], {}
    for split in ("train", "test"):
        meta = json.loads((root / f"transforms_{split}.json").read_text())
        (root / f"transforms_{split}.json").unlink()
        lists[f"{split}_filenames"] = [f["file_path"] for f in meta["frames"]]
        frames += meta["frames"]
    w = h = 64
    fl = 0.5 * w / math.tan(0.5 * meta["camera_angle_x"])
    ns = {"fl_x": fl, "fl_y": fl, "cx": w / 2, "cy": h / 2, "w": w, "h": h, "frames": frames, **lists}
    (root / "transforms.json").write_text(json.dumps(ns))
    run = tmp_path / "run"
    assert main(["fit3d", str(root), "--out", str(run), *FIT, "--iters", "5"]) == 0
    assert json.loads((run / "report.json").read_text())["split"] == "test"
