"""4D reconstruction: trainer presets, resume after a kill, motion amplitude, PLY conversion, .m4d round trip,
and the reconstruct → evaluate → render → export commands end to end on a tiny dynamic demo scene."""

import dataclasses
import json

import pytest
import torch
from fake4d import LinearMotionGaussians

from motion4d.cli import main
from motion4d.data.synthetic import make_dynamic_demo_scene
from motion4d.data.transforms import load_transforms, scene_bounds
from motion4d.export.m4d import ModelInfo, save_m4d
from motion4d.export.ply import load_ply
from motion4d.gaussians.rotations import rotmat_to_quat
from motion4d.metrics.motion import motion_amplitude
from motion4d.optim.trainer4d import PRESETS, Trainer4D, preset
from motion4d.pipelines.export_run import covars_to_quats_scales
from motion4d.pipelines.models import load_run_model
from motion4d.render.projection import covariance_3d, quat_to_rotmat

pytestmark = pytest.mark.usefixtures("fake_kind")  # model kind "fake" in every test here


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return make_dynamic_demo_scene(tmp_path_factory.mktemp("dyn") / "data", n_train=4, n_test=1, n_frames=4, size=32)


def _fake(n=200, seed=0):
    return LinearMotionGaussians.random(n, torch.zeros(3), 1.0, (0.0, 1.0), sh_degree=1, seed=seed, init_opacity=0.1)


def test_dynamic_demo_scene_is_dnerf_format(scene):
    train = load_transforms(scene, "train")
    assert len(train.images) == 16 and train.times is not None and train.views is not None
    assert sorted(set(train.times.tolist())) == pytest.approx([0, 1 / 3, 2 / 3, 1])
    a, b = train.images[train.times == 0][0], train.images[train.times == 1][0]
    assert (a - b).abs().max() > 0.2  # things move


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_runs_two_steps(name, scene):
    train = load_transforms(scene, "train")
    config = preset(name, iters=2, progress=False, n_init=100)
    result = Trainer4D(config, _fake(), train, scene_bounds(train).radius).train()
    assert result.steps == 2 and all(torch.isfinite(torch.tensor(result.losses)))


def test_densification_uses_the_model_hooks(scene):
    train = load_transforms(scene, "train")
    model = _fake(300)
    calls = []
    split = model.split_rows
    model.split_rows = lambda *a, **k: calls.append(1) or split(*a, **k)
    config = preset("tiny", iters=12)
    config = dataclasses.replace(config, densify=dataclasses.replace(config.densify, refine_start=2, refine_every=5))
    Trainer4D(config, model, train, scene_bounds(train).radius).train()
    assert calls and len(model) != 300


def test_resume_after_kill_matches_an_uninterrupted_run(scene, tmp_path):
    train = load_transforms(scene, "train")
    radius = scene_bounds(train).radius
    config = preset("tiny", iters=8, ckpt_every=4, n_init=100)
    config = dataclasses.replace(config, densify=dataclasses.replace(config.densify, refine_start=1, refine_every=3, refine_stop=8))
    full = Trainer4D(config, _fake(), train, radius, ckpt_dir=tmp_path / "a").train().model

    def kill(step, loss):
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer4D(config, _fake(), train, radius, ckpt_dir=tmp_path / "b").train(on_step=kill)
    resumed = Trainer4D(config, _fake(), train, radius, ckpt_dir=tmp_path / "b").train(resume=True)
    assert resumed.steps == 8
    for k in full.params:
        torch.testing.assert_close(resumed.model.params[k], full.params[k], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(resumed.model.time_offset, full.time_offset)


def test_motion_amplitude_is_zero_when_static_and_scale_free():
    model = _fake(50)
    assert motion_amplitude(model) == 0.0
    with torch.no_grad():
        model.params["velocities"].copy_(torch.tensor([0.3, 0.0, 0.0]))
    a = motion_amplitude(model)
    with torch.no_grad():
        for k in ("means", "velocities"):
            model.params[k].mul_(10.0)
    assert a > 0 and motion_amplitude(model) == pytest.approx(a, rel=1e-6)


def test_covariance_to_quaternion_and_scales_round_trip():
    g = torch.Generator().manual_seed(0)
    quats = torch.randn(64, 4, generator=g, dtype=torch.float64)
    scales = torch.rand(64, 3, generator=g, dtype=torch.float64) + 0.1
    covars = covariance_3d(quats, scales)
    q, s = covars_to_quats_scales(covars)
    torch.testing.assert_close(covariance_3d(q, s), covars)
    R = quat_to_rotmat(q)
    assert torch.allclose(torch.linalg.det(R), torch.ones(64, dtype=torch.float64))
    qn = quats / quats.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(quat_to_rotmat(rotmat_to_quat(quat_to_rotmat(qn))), quat_to_rotmat(qn))


def test_m4d_round_trip(tmp_path):
    model = _fake(40)
    with torch.no_grad():
        model.params["velocities"].normal_()
    path = save_m4d(model, tmp_path / "x.m4d", ModelInfo("fake", (0.0, 2.0), {"background": [0, 0, 0]}))
    back, info = load_run_model(path)
    assert info.kind == "fake" and info.time_range == (0.0, 2.0) and info.extra["sh_degree"] == 1
    assert info.extra["n_gaussians"] == 40 and info.extra["background"] == [0, 0, 0]
    torch.testing.assert_close(back.at_time(1.3).means, model.at_time(1.3).means)


def _roundtrip_commands(kind, scene, tmp_path, capsys, iters):
    run = tmp_path / kind
    argv = ["reconstruct", str(scene), "--out", str(run), "--model", kind, "--preset", "tiny", "--iters", str(iters), "--no-progress", "--video-frames", "3"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    for name in ("config.json", "report.json", "model.m4d", "video.mp4"):  # the video's 3 frames
        assert (run / name).is_file(), name
    assert list((run / "checkpoints").glob("step_*.safetensors"))
    assert {"psnr", "ssim", "motion_amplitude", "n_gaussians", "seconds"} <= set(report) and report["iters"] == iters

    assert main(["evaluate", str(run), "--data", str(scene), "--split", "test"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert {"psnr", "ssim", "n_images", "motion_amplitude", "seconds_per_frame_render"} <= set(ev)
    assert ev["n_images"] == 4 and ev["psnr"] == pytest.approx(report["psnr"], abs=1e-4)

    assert main(["render", str(run), "--out", str(tmp_path / "o.gif"), "--orbit", "--frames", "3"]) == 0
    assert main(["render", str(run), "--out", str(tmp_path / "v.mp4"), "--view", "0", "--frames", "3"]) == 0
    assert (tmp_path / "o.gif").stat().st_size > 0 and (tmp_path / "v.mp4").stat().st_size > 0
    assert main(["export", str(run), "--format", "ply-sequence", "--out", str(tmp_path / "ply"), "--frames", "3"]) == 0
    plys = sorted((tmp_path / "ply").glob("frame_*.ply"))
    assert len(plys) == 3 and len(load_ply(plys[0])["means"]) == report["n_gaussians"]
    assert main(["export", str(run), "--format", "m4d", "--out", str(tmp_path / "m.m4d")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "m.m4d"), "--data", str(scene)]) == 0
    assert json.loads(capsys.readouterr().out)["psnr"] == pytest.approx(ev["psnr"], abs=1e-4)
    assert main(["render", str(tmp_path / "m.m4d"), "--out", str(tmp_path / "m.gif"), "--orbit", "--frames", "2"]) == 0


def test_commands_end_to_end_with_a_stand_in_model(scene, tmp_path, capsys):
    _roundtrip_commands("fake", scene, tmp_path, capsys, iters=12)


@pytest.mark.parametrize("kind", ["rotor4d", pytest.param("deform", marks=pytest.mark.slow)])  # deform: > 5 s
def test_commands_end_to_end_with_the_real_models(kind, scene, tmp_path, capsys):
    _roundtrip_commands(kind, scene, tmp_path, capsys, iters=4)


def test_resume_from_the_command_line(scene, tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["reconstruct", str(scene), "--out", str(run), "--model", "fake", "--preset", "tiny", "--iters", "6", "--no-progress", "--video-frames", "0"]) == 0
    assert main(["reconstruct", "--out", str(run), "--resume", "--iters", "10", "--no-progress", "--video-frames", "0"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["iters"] == 10 and report["model"] == "fake"


def test_static_data_is_a_one_line_error_naming_the_file(tmp_path, capsys):
    from motion4d.data.synthetic import make_demo_scene

    data = make_demo_scene(tmp_path / "static", n_train=2, n_test=0, size=8)
    assert main(["-q", "reconstruct", str(data), "--out", str(tmp_path / "x"), "--model", "fake"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "transforms_train.json" in err[0] and "time" in err[0]


@pytest.mark.parametrize(
    "argv",
    [
        ["reconstruct", "{scene}", "--out", "{tmp}/x", "--model", "nope"],
        ["reconstruct", "{scene}", "--out", "{tmp}/x", "--preset", "nope"],
        ["reconstruct", "--out", "{tmp}/x"],
        ["render", "{tmp}", "--out", "{tmp}/v.mp4"],
        ["export", "{tmp}", "--format", "m4d", "--out", "{tmp}/m.m4d"],
        ["export", "{tmp}", "--format", "obj", "--out", "{tmp}/m"],
    ],
)
def test_user_errors_exit_2(argv, scene, tmp_path, capsys):
    assert main([a.replace("{tmp}", str(tmp_path)).replace("{scene}", str(scene)) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err


def test_config_round_trips_through_json():
    from motion4d.optim.trainer4d import Reconstruct4DConfig

    config = dataclasses.replace(preset("fast"), background=(0.0, 0.0, 0.0))
    assert Reconstruct4DConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_reconstruct_demo_writes_video_plys_and_report(tmp_path, capsys):
    run = tmp_path / "demo"
    make_dynamic_demo_scene(run / "data", n_train=2, n_test=1, n_frames=3, size=16)  # demo reuses RUN/data
    argv = ["reconstruct", "--demo", "--out", str(run), "--preset", "tiny", "--iters", "2", "--no-progress", "--video-frames", "2"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] in ("rotor4d", "deform") and report["iters"] == 2
    assert (run / "video.mp4").is_file() and (run / "report.json").is_file()
    assert len(list((run / "ply").glob("frame_*.ply"))) == 12
    assert load_transforms(run / "data", "test").times is not None


def test_no_opacity_reset_in_the_second_half_of_a_time_budget(scene):
    train = load_transforms(scene, "train")
    config = preset("tiny", iters=10, time_budget_s=1e-6)
    config = dataclasses.replace(config, densify=dataclasses.replace(config.densify, reset_every=5))
    trainer = Trainer4D(config, _fake(50), train, scene_bounds(train).radius)
    result = trainer.train()
    assert result.stopped_by_budget and result.steps == 1 and trainer.progress() == 1.0
    assert trainer.strategy.config.reset_every == 0


@pytest.mark.parametrize("breakage", ["missing image", "corrupt png", "mismatched size", "escaping path", "empty split"])
def test_broken_dynamic_data_is_a_one_line_error_naming_the_file(breakage, scene, tmp_path, capsys):
    import json
    import shutil

    import imageio.v3 as iio
    import numpy as np

    data = tmp_path / "data"
    shutil.copytree(scene, data)
    meta = json.loads((data / "transforms_train.json").read_text())
    first = data / (meta["frames"][0]["file_path"].lstrip("./") + ".png")
    if breakage == "missing image":
        first.unlink()
        named = first.stem  # the frame's file_path (it has no extension)
    elif breakage == "corrupt png":
        first.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
        named = first.name
    elif breakage == "mismatched size":
        iio.imwrite(first, np.zeros((7, 9, 4), dtype=np.uint8))
        named = first.name
    else:
        if breakage == "escaping path":
            meta["frames"][0]["file_path"] = "../../outside"
        else:
            meta["frames"] = []
        (data / "transforms_train.json").write_text(json.dumps(meta))
        named = "transforms_train.json"
    assert main(["-q", "reconstruct", str(data), "--out", str(tmp_path / "run"), "--model", "fake"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and named in err[0], err
