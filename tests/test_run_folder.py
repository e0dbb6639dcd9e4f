"""The run folder: config.json in both layouts, report.json keys, damaged files, and old run folders (made
before the ``{"pipeline", "config", "inputs"}`` layout) that still resume, evaluate, render and export."""

import json
from dataclasses import asdict, dataclass

import pytest

from motion4d.cli import main
from motion4d.errors import DataError
from motion4d.optim.trainer3d import Fit3DConfig
from motion4d.optim.trainer3d import preset as fit_preset
from motion4d.optim.trainer4d import Reconstruct4DConfig
from motion4d.pipelines.fit3d import Fit3DInputs
from motion4d.pipelines.reconstruct import ReconstructInputs
from motion4d.pipelines.run import RunFolder, RunReport, SplitReport

SPLIT_KEYS = {"psnr", "ssim", "n_images", "split", "n_gaussians", "seconds", "iters", "stopped_by_budget", "run"}
REPORT_KEYS = {
    "fit3d": SPLIT_KEYS,
    "reconstruct": SPLIT_KEYS | {"motion_amplitude", "model", "sampler"},
    "animate": SPLIT_KEYS | {"vertex_error_pct", "motion_amplitude", "n_nodes", "n_frames", "duration_s", "vertex_offsets",
                             "silhouette_errors", "keyframe_silhouette_errors", "coverage_alpha_l1", "refined_nodes", "skipped_steps"},
}  # fmt: skip
"""report.json's keys as they were before the run folder became one mechanism."""
pytestmark = pytest.mark.usefixtures("fake_kind")


def _to_old_layout(run, pipeline):
    """Rewrite RUN/config.json as a run folder made before the new layout had it."""
    d = json.loads((run / "config.json").read_text())
    config, inputs = d["config"], d["inputs"]
    if pipeline == "fit3d":
        old = {"fit": config, "data": {"root": inputs["data"], "downscale": inputs["downscale"], "time": inputs["time"], "points": inputs["points"]}}
    elif pipeline == "reconstruct":
        old = {"reconstruct": config, "data": {"root": inputs["data"], "downscale": inputs["downscale"]}, "model": inputs["model"]}
    else:
        old = {"animate": config, "asset": inputs["asset"], "data": {"root": inputs["driving"], "downscale": inputs["downscale"]}}
    (run / "config.json").write_text(json.dumps(old, indent=2))


# ---- RunFolder ------------------------------------------------------------------------------
def test_config_round_trip_and_the_old_keys_beside_the_new(tmp_path):
    run = RunFolder(tmp_path / "a" / "run")
    config = fit_preset("tiny", background=(0.0, 0.0, 0.0))
    inputs = Fit3DInputs("/data/x", 2, 0.5, None, 0)
    run.write_config("fit3d", config, inputs)
    d = json.loads(run.config_file.read_text())
    assert d["pipeline"] == "fit3d" and d["inputs"]["downscale"] == 2 and d["config"] == json.loads(json.dumps(config.to_dict()))
    assert d["fit"] == d["config"] and d["data"] == {"root": "/data/x", "downscale": 2, "time": 0.5, "points": None}
    assert run.load_config(Fit3DConfig, Fit3DInputs, pipeline="fit3d") == (config, inputs)
    saved = run.read_config()
    assert saved.pipeline == "fit3d" and saved.dataset == "/data/x"
    with pytest.raises(DataError, match="a fit3d run, not a reconstruct run"):
        run.load_config(Fit3DConfig, Fit3DInputs, pipeline="reconstruct")


@pytest.mark.parametrize(
    "old, pipeline, inputs",
    [
        ({"fit": {"iters": 7}, "data": {"root": "/d", "downscale": 2, "time": None, "points": "/p.ply"}}, "fit3d",
         {"data": "/d", "downscale": 2, "time": None, "points": "/p.ply"}),
        ({"reconstruct": {"iters": 7}, "data": {"root": "/d", "downscale": 1}, "model": "deform"}, "reconstruct",
         {"data": "/d", "downscale": 1, "model": "deform"}),
        ({"animate": {"iters": 7}, "asset": "/a.glb", "data": {"root": "/d", "downscale": 4}}, "animate",
         {"driving": "/d", "downscale": 4, "asset": "/a.glb"}),
    ],
)  # fmt: skip
def test_old_layouts_are_read_as_pipeline_config_inputs(old, pipeline, inputs, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(old))
    saved = RunFolder(tmp_path).read_config()
    assert saved.pipeline == pipeline and saved.config == {"iters": 7} and saved.inputs == inputs and saved.dataset == "/d"


@pytest.mark.parametrize(
    "text, says",
    [
        (b"\x00\xff garbage", "not a valid run config"),
        (b"", "not a valid run config"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"config": {}}', "expected keys pipeline, config, inputs"),
        (b'{"pipeline": "fit3d", "config": {"iters": 1}, "inputs": {"data": "/d", "downsacle": 2}}', "downsacle"),
        (b'{"pipeline": "fit3d", "config": {"iterz": 1}, "inputs": {"data": "/d"}}', "iterz"),
        (b'{"pipeline": "fit3d", "config": {"iters": 1}, "inputs": {"data": "/d", "downscale": 0}}', "downscale"),
        (b'{"fit": {"iters": 1}, "data": {"root": "/d", "scale": 2}}', "unknown data keys: scale"),
        (b'{"fit": {"iters": "many"}, "data": {"root": "/d"}}', "iters: expected an integer"),
    ],
)
def test_a_damaged_config_is_a_data_error_naming_the_file(text, says, tmp_path):
    (tmp_path / "config.json").write_bytes(text)
    with pytest.raises(DataError, match="config.json") as e:
        RunFolder(tmp_path).load_config(Fit3DConfig, Fit3DInputs)
    assert says in str(e.value)


def test_the_old_key_copies_are_checked_and_must_agree(tmp_path):
    run = RunFolder(tmp_path)
    run.write_config("fit3d", fit_preset("tiny"), Fit3DInputs("/d"))
    d = json.loads(run.config_file.read_text())
    for key, value, says in (("iters", 5, "differ from 'config'"), ("nope", 1, "unknown Fit3DConfig fields: nope")):
        run.config_file.write_text(json.dumps({**d, "fit": {**d["fit"], key: value}}))
        with pytest.raises(DataError, match="config.json") as e:
            run.load_config(Fit3DConfig, Fit3DInputs)
        assert says in str(e.value)
    run.config_file.write_text(json.dumps({k: v for k, v in d.items() if k not in ("fit", "data")}))  # the new keys alone
    assert run.load_config(Fit3DConfig, Fit3DInputs) == (fit_preset("tiny"), Fit3DInputs("/d"))


def test_report_written_atomically_from_a_dataclass(tmp_path):
    @dataclass
    class Report(SplitReport):
        extra: float

    run = RunFolder(tmp_path / "r")
    report = Report(n_gaussians=3, seconds=1.5, iters=2, stopped_by_budget=False, run=str(run.path), psnr=20.0, ssim=0.5, n_images=1, split="test", extra=1.0)
    run.write_report(report)
    assert run.read_report() == asdict(report) and set(asdict(report)) == SPLIT_KEYS | {"extra"}
    assert sorted(p.name for p in run.path.iterdir()) == ["report.json"]  # no temporary file left
    with pytest.raises(TypeError):
        run.write_report({"psnr": 1})
    (run.path / "report.json").write_text("{")
    with pytest.raises(DataError, match="report.json"):
        run.read_report()
    assert issubclass(SplitReport, RunReport) and RunFolder(tmp_path / "none").checkpoint_files() == []


# ---- old run folders, end to end --------------------------------------------------------------
def test_old_fit3d_run_folder_resumes_and_evaluates(tiny_static_data, tmp_path, capsys):
    run = tmp_path / "fit"
    assert main(["-q", "fit3d", str(tiny_static_data), "--out", str(run), "--preset", "tiny", "--iters", "2", "--no-progress", "--background", "black",
                 "--orbit-frames", "2"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert set(report) == REPORT_KEYS["fit3d"] == set(json.loads((run / "report.json").read_text()))
    _to_old_layout(run, "fit3d")
    assert main(["-q", "evaluate", str(run)]) == 0  # the dataset and background come from the old config
    assert json.loads(capsys.readouterr().out)["n_images"] == 1
    assert main(["-q", "fit3d", "--out", str(run), "--resume", "--iters", "3", "--orbit-frames", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["iters"] == 3
    d = json.loads((run / "config.json").read_text())
    assert d["pipeline"] == "fit3d" and d["config"]["background"] == [0.0, 0.0, 0.0] and d["config"]["iters"] == 3


def test_old_reconstruct_run_folder_resumes_evaluates_renders_and_exports(tiny_dynamic_data, tmp_path, capsys):
    run = tmp_path / "rec"
    argv = ["-q", "reconstruct", str(tiny_dynamic_data), "--out", str(run), "--model", "fake", "--preset", "tiny", "--iters", "2", "--video-frames", "0"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == REPORT_KEYS["reconstruct"] == set(json.loads((run / "report.json").read_text()))
    _to_old_layout(run, "reconstruct")
    assert RunFolder(run).load_config(Reconstruct4DConfig, ReconstructInputs, pipeline="reconstruct")[1].model == "fake"
    assert main(["-q", "evaluate", str(run)]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "fake"
    assert main(["-q", "render", str(run), "--out", str(tmp_path / "v.gif"), "--frames", "2"]) == 0
    assert main(["-q", "export", str(run), "--format", "m4d", "--out", str(tmp_path / "m.m4d")]) == 0
    assert main(["-q", "reconstruct", "--out", str(run), "--resume", "--iters", "4", "--video-frames", "0"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["iters"] == 4 and report["model"] == "fake"
    assert json.loads((run / "config.json").read_text())["inputs"]["model"] == "fake"


def test_old_animate_run_folder_resumes_and_exports(tmp_path, capsys):
    from test_animate_cli import asset_mesh, write_driving

    from motion4d.export.gltf import write_static_glb

    mesh = asset_mesh()
    asset = write_static_glb(tmp_path / "sheet.glb", mesh)
    data = write_driving(tmp_path / "driving", mesh, n_views=2, size=12, times=(0.0, 1.0))
    run = tmp_path / "run"
    argv = ["-q", "animate", str(asset), "--driving", str(data), "--out", str(run), "--preset", "tiny", "--iters", "2", "--n-init", "100",
            "--nodes", "4", "--coverage-steps", "0", "--video-frames", "0"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == REPORT_KEYS["animate"] == set(json.loads((run / "report.json").read_text()))
    _to_old_layout(run, "animate")
    assert main(["-q", "export", str(run), "--format", "glb", "--out", str(tmp_path / "a.glb")]) == 0
    assert main(["-q", "animate", "--out", str(run), "--resume", "--iters", "3", "--video-frames", "0"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["iters"] == 3 and report["n_nodes"] == 4
