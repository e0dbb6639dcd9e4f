"""Damaged files are user errors: every reader turns damage (random bytes, truncation, an empty file, a wrong
format tag, NaN tensors, missing tensors, a config with unknown or mistyped keys) into one DataError line naming
the file, the command line prints it as ``error: ...`` with exit status 2, and resume falls back to the newest
checkpoint that loads. Also the model registry's lookups."""

import json
import logging
import math
import os

import numpy as np
import pytest
import torch
from test_animate_core import make_model

from motion4d.cli import main
from motion4d.data.assets import load_asset
from motion4d.data.gltf import load_gltf
from motion4d.data.images import read_image
from motion4d.data.obj import load_obj
from motion4d.data.points import load_points_ply
from motion4d.data.splat_ply import load_ply
from motion4d.data.synthetic import make_demo_scene, make_dynamic_demo_scene
from motion4d.data.transforms import load_transforms
from motion4d.errors import DataError, MissingFileError
from motion4d.export.m4d import ModelInfo, load_m4d, read_model_info, save_m4d
from motion4d.export.ply import save_ply
from motion4d.gaussians import Gaussians3D, Gaussians4DRotor, registry
from motion4d.gaussians.deform import DeformGaussians
from motion4d.gaussians.files import load_tensors, read_metadata, save_tensors
from motion4d.gaussians.skinned import SkinnedGaussians
from motion4d.optim.checkpoint import list_checkpoints, load_checkpoint, load_latest_checkpoint, save_checkpoint
from motion4d.optim.trainer4d import Reconstruct4DConfig
from motion4d.pipelines.models import load_run_model

DAMAGE = ("random", "truncated", "empty")


def damage(path, how):
    """Overwrite ``path`` with random bytes, its first half, or nothing."""
    data = path.read_bytes()
    path.write_bytes({"random": np.random.default_rng(0).bytes(max(len(data), 64)), "truncated": data[: len(data) // 2], "empty": b""}[how])
    return path


def one_line_naming(e, path):
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg, msg
    return msg


def cli_error(capsys, argv, path):
    """Run the command; it must exit 2 with one ``error:`` line on stderr naming ``path``."""
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(path) in err[0], err
    return err[0]


def models():
    """One small model of each registered kind."""
    g = Gaussians3D.random_in_sphere(20, sh_degree=1, seed=0)
    return {
        "gaussians3d": g,
        "rotor4d": Gaussians4DRotor.random(20, sh_degree=1, seed=0),
        "deform": DeformGaussians.random(20, sh_degree=1, seed=0),
        "mesh_gaussians": make_model([0.0, 1.0]),
        "skinned_gaussians": SkinnedGaussians.build(g, torch.tensor([0.0, 1.0]), n_nodes=4),
    }


# ---- the registry ------------------------------------------------------------------------------
def test_registry_finds_each_model_by_kind_and_format(tmp_path):
    for kind, model in models().items():
        entry = registry.lookup(kind)
        assert registry.lookup(entry.format) is entry and isinstance(model, entry.cls())
        path = model.save(tmp_path / f"{kind}.safetensors")
        assert read_metadata(path)["format"] == entry.format
        back = registry.load_model(path)  # by the file's format
        assert type(back) is type(model) and len(back) == len(model)
    assert registry.reconstruct_kinds() == ("rotor4d", "deform")
    assert set(registry.kinds()) == {"rotor4d", "deform", "gaussians3d", "mesh_gaussians", "skinned_gaussians"}
    with pytest.raises(ValueError, match="unknown model 'nope'; choose from rotor4d, deform, gaussians3d"):
        registry.lookup("nope")
    with pytest.raises(DataError, match="a motion4d.Gaussians3D file, not rotor4d"):
        registry.load_model(tmp_path / "gaussians3d.safetensors", "rotor4d")


def test_m4d_files_of_every_kind_round_trip(tmp_path):
    for kind, model in models().items():
        path = save_m4d(model, tmp_path / f"{kind}.m4d", ModelInfo(kind, (0.0, 1.0), {"background": [1, 1, 1]}))
        back, info = load_m4d(path)
        assert type(back) is type(model) and info.kind == kind and info.extra["n_gaussians"] == len(model)
        assert read_model_info(path).time_range == (0.0, 1.0)


# ---- model and .m4d files ------------------------------------------------------------------------
@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("kind", ["gaussians3d", "rotor4d", "deform"])
def test_damaged_model_files_are_one_line_errors(kind, how, tmp_path):
    model = Gaussians3D.random_in_sphere(20) if kind == "gaussians3d" else registry.model_class(kind).random(20, sh_degree=1, seed=0)
    path = damage(model.save(tmp_path / "m.safetensors"), how)
    with pytest.raises(DataError) as e:
        type(model).load(path)
    assert ("empty file" if how == "empty" else "damaged or truncated") in one_line_naming(e, path)
    with pytest.raises(DataError):
        registry.load_model(path)


def test_model_files_with_bad_tensors_or_tags(tmp_path):
    g = Gaussians3D.random_in_sphere(20, sh_degree=1)
    tensors, _ = load_tensors(g.save(tmp_path / "g.safetensors"), "motion4d.Gaussians3D")
    cases = {
        "nan": ({**tensors, "means": tensors["means"].clone().index_fill_(0, torch.tensor([3]), math.nan)}, "motion4d.Gaussians3D", "'means' holds NaN"),
        "inf": ({**tensors, "sh0": tensors["sh0"].clone().fill_(math.inf)}, "motion4d.Gaussians3D", "'sh0' holds NaN"),
        "missing": ({k: v for k, v in tensors.items() if k != "quats"}, "motion4d.Gaussians3D", "'quats' missing"),
        "shape": ({**tensors, "quats": tensors["quats"][:5]}, "motion4d.Gaussians3D", "quats"),
        "tag": (tensors, "motion4d.Nope", "not a motion4d.Gaussians3D file"),
    }
    for name, (t, fmt, msg) in cases.items():
        path = save_tensors(tmp_path / f"{name}.safetensors", t, fmt, sh_degree=1)
        with pytest.raises(DataError, match=msg) as e:
            Gaussians3D.load(path)
        one_line_naming(e, path)
    with pytest.raises(DataError, match="unknown model format 'motion4d.Nope'"):
        registry.load_model(tmp_path / "tag.safetensors")
    with pytest.raises(MissingFileError):  # still a FileNotFoundError too
        Gaussians3D.load(tmp_path / "nope.safetensors")


def _m4d(tmp_path, name="model.m4d"):
    return save_m4d(Gaussians4DRotor.random(30, sh_degree=1, seed=0), tmp_path / name, ModelInfo("rotor4d", (0.0, 1.0), {"background": [1, 1, 1]}))


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_m4d_is_one_error_line_in_evaluate_render_and_export(how, tmp_path, capsys):
    path = damage(_m4d(tmp_path), how)
    with pytest.raises(DataError) as e:
        load_run_model(path)
    one_line_naming(e, path)
    cli_error(capsys, ["evaluate", path, "--data", tmp_path], path)
    cli_error(capsys, ["render", path, "--out", tmp_path / "v.mp4", "--orbit", "--frames", "2"], path)
    for fmt in ("m4d", "ply-sequence", "glb"):
        cli_error(capsys, ["export", path, "--format", fmt, "--out", tmp_path / "out"], path)
    assert not (tmp_path / "out").exists() and not (tmp_path / "v.mp4").exists()


def _rewrite(path, tensors=None, **meta):
    """Rewrite ``path`` (safetensors) with other tensors and metadata entries (None removes one)."""
    from safetensors.torch import load_file, save_file

    old = read_metadata(path)
    new = {k: v for k, v in {**old, **meta}.items() if v is not None}
    save_file(tensors if tensors is not None else load_file(str(path)), str(path), metadata=new)
    return path


def test_m4d_with_bad_tensors_or_metadata(tmp_path, capsys):
    from safetensors.torch import load_file

    t = load_file(str(_m4d(tmp_path, "ok.m4d")))
    cases = {
        "nan.m4d": ({**t, "rotors": t["rotors"].clone().fill_(math.nan)}, {}, "'rotors' holds NaN"),
        "missing.m4d": ({k: v for k, v in t.items() if k != "rotors"}, {}, "'rotors' missing"),
        "shape.m4d": ({**t, "means": t["means"][:, :3].contiguous()}, {}, "means"),
        "tag.m4d": (None, {"format": "motion4d.Gaussians3D"}, "a motion4d.Gaussians3D file, not rotor4d"),
        "kind.m4d": (None, {"motion4d.kind": "nope"}, "unknown model 'nope'"),
        "nokind.m4d": (None, {"motion4d.kind": None}, "not a motion4d .m4d file"),
        "meta.m4d": (None, {"motion4d.meta": "{oops"}, "damaged .m4d metadata"),
        "range.m4d": (None, {"motion4d.meta": json.dumps({"time_range": [0, "x"]})}, "damaged .m4d metadata"),
    }
    for name, (tensors, meta, msg) in cases.items():
        path = _rewrite(_m4d(tmp_path, name), tensors, **meta)
        with pytest.raises(DataError, match=msg) as e:
            load_run_model(path)
        one_line_naming(e, path)
        assert msg in cli_error(capsys, ["export", path, "--format", "m4d", "--out", tmp_path / "o.m4d"], path)


def test_old_m4d_files_keep_loading(tmp_path):
    """As the writer before the registry made them: the model's own file plus kind and meta entries."""
    path = Gaussians4DRotor.random(30, sh_degree=1, seed=0).save(tmp_path / "old.m4d")
    _rewrite(path, **{"motion4d.kind": "rotor4d", "motion4d.meta": json.dumps({"time_range": [0.0, 2.0], "sh_degree": 1, "n_gaussians": 30})})
    model, info = load_run_model(path)
    assert isinstance(model, Gaussians4DRotor) and info.kind == "rotor4d" and info.time_range == (0.0, 2.0)


def test_damaged_model_in_a_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    path = damage(Gaussians3D.random_in_sphere(20).save(run / "gaussians.safetensors"), "truncated")
    cli_error(capsys, ["evaluate", run, "--data", tmp_path], path)
    (run / "gaussians.safetensors").unlink()
    path = damage(_m4d(run), "random")
    cli_error(capsys, ["render", run, "--out", tmp_path / "v.gif", "--orbit"], path)


# ---- checkpoints ---------------------------------------------------------------------------------
def _checkpoints(folder, steps=(10, 20)):
    params = torch.nn.ParameterDict({"means": torch.nn.Parameter(torch.randn(5, 3))})
    opt = torch.optim.Adam([{"params": [params["means"]], "name": "means", "lr": 0.1}])
    params["means"].sum().backward()
    opt.step()
    return [save_checkpoint(folder / f"step_{s:07d}.safetensors", params, opt, s, float(s)) for s in steps]


@pytest.mark.parametrize("how", [*DAMAGE, "nan"])
def test_damaged_checkpoints_are_errors_and_resume_falls_back(how, tmp_path, caplog):
    old, new = _checkpoints(tmp_path)
    if how == "nan":
        c = load_checkpoint(new)
        _rewrite(new, {"param.means": c.params["means"].fill_(math.nan), **{f"optim.means.{k}": v for k, v in c.optim["means"].items()}})
    else:
        damage(new, how)
    with pytest.raises(DataError) as e:
        load_checkpoint(new)
    reason = one_line_naming(e, new)
    with caplog.at_level(logging.WARNING, logger="motion4d"):
        path, ckpt = load_latest_checkpoint(tmp_path)
    assert path == old and ckpt.step == 10
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and reason in warnings[0] and str(old) in warnings[0]
    assert list_checkpoints(tmp_path) == [old] and (tmp_path / (new.name + ".damaged")).is_file()


def test_no_loadable_checkpoint(tmp_path):
    assert load_latest_checkpoint(tmp_path) is None
    for p in _checkpoints(tmp_path):
        damage(p, "truncated")
    with pytest.raises(DataError, match="no checkpoint loads") as e:
        load_latest_checkpoint(tmp_path)
    assert "step_0000010" in str(e.value) and "step_0000020" in str(e.value)
    with pytest.raises(MissingFileError):
        load_checkpoint(tmp_path / "step_0000030.safetensors")
    model_file = Gaussians3D.random_in_sphere(5).save(tmp_path / "step_0000040.safetensors")  # a model, not a checkpoint
    with pytest.raises(DataError, match="not a motion4d checkpoint"):
        load_checkpoint(model_file)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return make_dynamic_demo_scene(tmp_path_factory.mktemp("dyn") / "data", n_train=4, n_test=1, n_frames=4, size=16)


def test_resume_skips_a_truncated_newest_checkpoint(scene, tmp_path, capsys, fake_kind):
    run, common = tmp_path / "run", ["--no-progress", "--video-frames", "0"]
    assert main(["reconstruct", str(scene), "--out", str(run), "--model", "fake", "--preset", "tiny", "--iters", "3", *common]) == 0
    assert main(["reconstruct", "--out", str(run), "--resume", "--iters", "5", *common]) == 0
    steps = [p.name for p in list_checkpoints(run / "checkpoints")]
    assert steps == ["step_0000003.safetensors", "step_0000005.safetensors"]
    newest = damage(run / "checkpoints" / steps[-1], "truncated")
    capsys.readouterr()
    assert main(["reconstruct", "--out", str(run), "--resume", "--iters", "7", *common]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.strip().splitlines()[-1])["iters"] == 7
    warnings = [ln for ln in err.splitlines() if " WARNING " in ln]
    assert len(warnings) == 1 and str(newest) in warnings[0] and "truncated" in warnings[0]
    assert "at step 3" in err  # continued from the older checkpoint
    assert [load_checkpoint(p).step for p in list_checkpoints(run / "checkpoints")] == [3, 7]


# ---- config.json -----------------------------------------------------------------------------------
def test_config_from_dict_checks_keys_and_types():
    for bad, msg in [({"nope": 1}, "unknown Reconstruct4DConfig fields: nope"), ({"lr_means": "fast"}, "lr_means: expected a finite number, got str"),
                     ({"iters": 2.5}, "iters: expected an integer"), ({"progress": "yes"}, "progress: expected true or false"),
                     ({"densify": {"nope": 1}}, "densify.nope"), ({"sampler": {"kind": "zigzag"}}, "sampler.kind: expected one of"),
                     ({"background": [1, 1]}, "background: expected 3 values"), ({"time_budget_s": "x"}, "time_budget_s"),
                     ({"densify": 3}, "densify: expected an object")]:  # fmt: skip
        with pytest.raises(ValueError, match=msg):
            Reconstruct4DConfig.from_dict(bad)
    c = Reconstruct4DConfig.from_dict({"iters": 4.0, "time_budget_s": 3, "background": [0, 0, 0], "densify": {"refine_every": 7}})
    assert c.iters == 4 and c.time_budget_s == 3.0 and c.background == (0.0, 0.0, 0.0) and c.densify.refine_every == 7


@pytest.mark.parametrize(
    "edit, msg",
    [
        (lambda d: "{oops", "Expecting property name"),
        (lambda d: "", "Expecting value"),
        (lambda d: json.dumps({**d, "reconstruct": {**d["reconstruct"], "nope": 1}}), "unknown Reconstruct4DConfig fields: nope"),
        (lambda d: json.dumps({**d, "reconstruct": {**d["reconstruct"], "lr_means": "fast"}}), "lr_means: expected a finite number, got str"),
    ],
    ids=["invalid-json", "empty", "unknown-key", "mistyped"],
)
def test_damaged_run_config_is_one_error_line(edit, msg, scene, tmp_path, capsys, fake_kind):
    run = tmp_path / "run"
    assert main(["reconstruct", str(scene), "--out", str(run), "--model", "fake", "--preset", "tiny", "--iters", "2", "--no-progress", "--video-frames", "0"]) == 0
    config = run / "config.json"
    config.write_text(edit(json.loads(config.read_text())))
    assert msg in cli_error(capsys, ["reconstruct", "--out", run, "--resume", "--iters", "4", "--no-progress"], config)
    if msg.startswith("Expecting"):  # evaluate and render read only a few keys
        cli_error(capsys, ["evaluate", run], config)
        cli_error(capsys, ["render", run, "--out", tmp_path / "v.gif", "--orbit", "--frames", "2"], config)


# ---- data files -----------------------------------------------------------------------------------
def _splat_ply(path):
    f = Gaussians3D.random_in_sphere(30, sh_degree=1).at_time()
    save_ply(path, f.means, f.quats, f.scales, f.opacities, f.sh)
    return path


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_ply_gltf_obj_and_images(how, tmp_path):
    from test_gltf import box_asset

    import imageio.v3 as iio

    iio.imwrite(tmp_path / "i.png", np.zeros((4, 4, 3), dtype=np.uint8))
    (tmp_path / "m.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    readers = [("s.ply", _splat_ply, [load_ply, load_points_ply, load_asset]), ("a.glb", box_asset, [load_gltf, load_asset]),
               ("a.gltf", box_asset, [load_gltf, load_asset]), ("m.obj", None, [load_obj, load_asset]), ("i.png", None, [read_image])]  # fmt: skip
    for name, make, fns in readers:
        path = make(tmp_path / name) if make else tmp_path / name
        damage(path, how)
        for fn in fns:
            with pytest.raises(DataError) as e:
                fn(path)
            one_line_naming(e, path)


def test_non_finite_values_in_data_files(tmp_path):
    from plyfile import PlyData

    ply = PlyData.read(str(_splat_ply(tmp_path / "s.ply")))
    ply["vertex"].data["scale_1"][2] = np.nan
    ply.write(str(tmp_path / "nan.ply"))
    for fn in (load_ply, load_asset):
        with pytest.raises(DataError, match="scale_1 holds NaN"):
            fn(tmp_path / "nan.ply")
    ply["vertex"].data["x"][2] = np.inf
    ply.write(str(tmp_path / "inf.ply"))
    with pytest.raises(DataError, match="non-finite"):
        load_points_ply(tmp_path / "inf.ply")
    (tmp_path / "nan.obj").write_text("v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(DataError, match=f"^{tmp_path / 'nan.obj'}: vertices contain NaN"):
        load_obj(tmp_path / "nan.obj")
    from test_gltf import box_asset

    meta = json.loads(box_asset(tmp_path / "box.gltf").read_text())
    blob = bytearray((tmp_path / "box.bin").read_bytes())
    blob[0:4] = np.float32(np.nan).tobytes()  # the first POSITION value
    (tmp_path / "box.bin").write_bytes(bytes(blob))
    assert meta["accessors"][0]["bufferView"] == 0
    with pytest.raises(DataError, match="holds NaN or infinite values"):
        load_gltf(tmp_path / "box.gltf")


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_transforms_and_images_through_the_cli(how, tmp_path, capsys):
    data = make_demo_scene(tmp_path / "d", n_train=2, n_test=0, size=8)
    path = damage(data / "transforms_train.json", how)
    with pytest.raises(DataError) as e:
        load_transforms(data, "train")
    one_line_naming(e, path)
    cli_error(capsys, ["fit3d", data, "--out", tmp_path / "run", "--iters", "1", "--no-progress"], path)
    data = make_demo_scene(tmp_path / "e", n_train=2, n_test=0, size=8)
    image = sorted((data / "train").glob("*.png"))[0]
    damage(image, how)
    cli_error(capsys, ["fit3d", data, "--out", tmp_path / "run2", "--iters", "1", "--no-progress"], image)


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_asset_through_the_cli(how, tmp_path, capsys):
    from test_gltf import box_asset

    asset = damage(box_asset(tmp_path / "a.glb"), how)
    cli_error(capsys, ["animate", asset, "--driving", tmp_path, "--out", tmp_path / "run"], asset)
    assert not os.path.exists(tmp_path / "run" / "report.json")


def test_hand_edited_orbit_metadata_is_one_error_line(tmp_path, capsys):
    path = save_m4d(Gaussians4DRotor.random(30, sh_degree=1, seed=0), tmp_path / "model.m4d",
                    ModelInfo("rotor4d", (0.0, 1.0), {"background": [1, 1, 1], "orbit": {"radius": 3.0, "wrong_key": 1}}))  # fmt: skip
    cli_error(capsys, ["render", path, "--out", tmp_path / "v.mp4", "--orbit", "--frames", "2"], path)
    assert not (tmp_path / "v.mp4").exists()


def test_optimizer_state_of_another_shape_names_the_checkpoint(tiny_dynamic_data, tmp_path, capsys):
    from safetensors.torch import load_file

    run = tmp_path / "run"
    assert main(["-q", "reconstruct", str(tiny_dynamic_data), "--out", str(run), "--preset", "tiny", "--iters", "10", "--video-frames", "0"]) == 0
    ckpt = list_checkpoints(run / "checkpoints")[-1]
    t = load_file(str(ckpt))
    key = next(k for k in t if k.startswith("optim.") and k.endswith("exp_avg"))
    _rewrite(ckpt, {**t, key: torch.zeros(3, 1)})
    cli_error(capsys, ["-q", "reconstruct", "--out", run, "--resume", "--iters", "12", "--video-frames", "0"], ckpt)
