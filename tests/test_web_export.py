"""The ``.splatv`` format (splaTV's layout, our header, read back), the exact 4D-Rotor mapping and the baking of
other models, ``export --format splatv|html`` and ``motion4d view`` (serving, bad inputs). The browser checks
are in test_web_player.py."""

import json
import shutil
import struct
import subprocess
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from motion4d.cli import main
from motion4d.errors import DataError
from motion4d.export.splatv import MAGIC, TEXWIDTH, decode_splatv, encode_splatv, read_splatv, splatv_frame, write_splatv
from motion4d.export.splatv_bake import baking_psnr, model_records, rotor4d_records
from motion4d.gaussians.rotor4d import Gaussians4DRotor
from motion4d.pipelines.models import load_run_model
from motion4d.pipelines.render_video import dataset_cameras
from motion4d.pipelines.view import page_server, server_url, view, view_page
from motion4d.render.projection import covariance_3d

import web_runs
from web_browser import WEB


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("web")
    data = web_runs.camera_dataset(base / "data", size=64, n_views=2)
    return {"base": base, "data": data, "rotor": web_runs.rotor_run(base / "rotor.m4d", data, n=400),
            "deform": web_runs.deform_run(base / "deform.m4d", data, n=300), "animate": web_runs.animate_run(base / "anim", data, n=1000)}  # fmt: skip


def small_rotor(n=50, dtype=torch.float64):
    m = Gaussians4DRotor.random(n, radius=0.5, t_range=(0.0, 2.0), sh_degree=2, seed=0, init_opacity=0.5, dtype=dtype)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        m.params["rotors"].add_(0.4 * torch.randn(m.params["rotors"].shape, generator=g, dtype=dtype))
        m.params["shN"].normal_(0, 0.2, generator=g)
    return m


# ---- the file ----------------------------------------------------------------------------------
def test_splatv_has_splatvs_layout():
    m = small_rotor()
    records, header = model_records(m, "rotor4d", (0.0, 2.0))
    data = encode_splatv(records, {**header, "fps": 24.0, "cameras": []})
    magic, n = struct.unpack_from("<II", data, 0)
    assert magic == MAGIC == 0x674B
    chunks = json.loads(data[8 : 8 + n])
    splat, sh = chunks
    assert splat["type"] == "splat" and splat["texwidth"] == TEXWIDTH and splat["size"] == splat["texwidth"] * splat["texheight"] * 16
    assert splat["texheight"] * 1024 >= len(records) and sh["type"] == "motion4d.sh" and sh["texels_per_record"] == 4  # 27 halves
    meta = splat["motion4d"]
    assert meta["version"] == 1 and meta["kind"] == "rotor4d" and meta["time_range"] == [0.0, 2.0] and meta["fps"] == 24.0
    assert meta["count"] == len(records) and meta["sh_degree"] == 2 and len(data) == 8 + n + splat["size"] + sh["size"]
    # record 1, 64 bytes: position f32, quaternion f16, scales f16, RGBA8, 9 motion f16, ω f16, temporal centre / scale f16
    rec = data[8 + n + 64 : 8 + n + 128]
    assert np.allclose(struct.unpack_from("<3f", rec, 0), records.means[1].numpy(), atol=1e-6)
    halves = np.frombuffer(rec, dtype="<f2")
    q = torch.nn.functional.normalize(records.quats[1], dim=0).numpy()
    assert np.allclose(halves[6:10], q, atol=1e-3) and np.allclose(halves[10:13], records.scales[1].numpy(), rtol=1e-3)
    rgba = np.frombuffer(rec[28:32], dtype=np.uint8)
    assert rgba[3] == round(float(records.opacities[1]) * 255)
    assert np.allclose(halves[16:25], records.motion[1].numpy(), rtol=2e-3, atol=1e-4) and np.all(halves[26:30] == 0)
    assert np.allclose(halves[30:32], [records.trbf_center[1], records.trbf_scale[1]], rtol=1e-3)


def test_splatv_reads_back_and_damage_is_a_data_error(tmp_path):
    m = small_rotor()
    records, header = model_records(m, "rotor4d", (0.0, 2.0))
    path = tmp_path / "m.splatv"
    size = write_splatv(path, records, header)
    assert size == path.stat().st_size
    back, meta = read_splatv(path)
    assert len(back) == len(records) and meta["kind"] == "rotor4d"
    assert torch.allclose(back.means, records.means.float(), atol=1e-6)
    assert torch.allclose(back.sh, records.sh.float(), atol=2e-3, rtol=2e-3)
    data = path.read_bytes()
    for bad, msg in ((b"xxxx" + data[4:], "not a .splatv"), (data[: len(data) // 2], "damaged"), (data[:8] + b"{" + data[9:], "damaged")):
        (tmp_path / "bad.splatv").write_bytes(bad)
        with pytest.raises(DataError, match=msg):
            read_splatv(tmp_path / "bad.splatv")
    with pytest.raises(DataError, match="no such file"):
        read_splatv(tmp_path / "missing.splatv")


# ---- what the records say, against the models ----------------------------------------------------
def test_rotor4d_maps_onto_a_record_exactly():
    """With temporal centres f16 can hold, the records' Gaussians are the slices, at every t (float64)."""
    m = small_rotor()
    with torch.no_grad():
        m.params["means"][:, 3] = torch.round(m.params["means"][:, 3] * 512) / 512  # f16-exact record times
    records = rotor4d_records(m, (0.0, 2.0))
    header = {"time_range": [0.0, 2.0], "segments": None}
    for t in (0.0, 0.3, 1.1, 2.0, 2.7):
        want, got = m.at_time(t), splatv_frame(records, header, t)
        assert torch.allclose(got.means, want.means, atol=1e-12)
        assert torch.allclose(covariance_3d(got.quats, got.scales), want.covars, atol=1e-12)
        assert torch.allclose(got.opacities, want.opacities, atol=1e-12)
        assert torch.equal(got.sh, want.sh)


def test_rotor4d_file_and_baked_models_render_like_the_model(runs):
    """Our rasterizer on the file's records against the model: rotor4d only loses f16 / 8-bit rounding; deform
    and mesh Gaussians baked per segment stay close, and exact in position at the segment centres."""
    viewmats, Ks, W, H, _ = dataset_cameras(runs["data"], "test")
    for name, floor in (("rotor", 45.0), ("deform", 30.0), ("animate", 35.0)):
        model, info = load_run_model(runs[name])
        records, header = model_records(model, info.kind, info.time_range, 3 if name == "deform" else None)
        assert header["baked"] == (name != "rotor") and (header["segments"] is None) == (name == "rotor")
        back, meta = decode_splatv(encode_splatv(records, header))
        t0, t1 = info.time_range
        check = baking_psnr(model, back, meta, viewmats, Ks, W, H, [t0 + 0.4 * (t1 - t0), t1])
        assert check["min_db"] > floor, (name, check)
        if header["segments"]:
            seg = header["segments"][1]
            tc = t0 + (t1 - t0) * 0.5 * (seg["tau0"] + seg["tau1"])
            with torch.no_grad():
                want = model.at_time(tc).means
            got = splatv_frame(records, header, tc).means
            assert got.shape[0] == seg["count"] == len(want)  # no Gaussian fades out here
            assert torch.allclose(got, want.double(), atol=1e-5)
        if name == "animate":
            assert len(header["segments"]) == 2  # the graph's keyframe intervals


def test_static_gaussians_are_one_unchanging_record_each():
    from motion4d.gaussians import Gaussians3D

    g = Gaussians3D.random_in_sphere(40, (0.0, 0.0, 0.0), 0.5, sh_degree=1, seed=0)
    records, header = model_records(g, "gaussians3d", (0.0, 0.0))
    assert len(records) == 40 and header["segments"] is None and not header["baked"]
    back, meta = decode_splatv(encode_splatv(records, header))
    for t in (0.0, 5.0):
        f = splatv_frame(back, meta, t)
        assert torch.allclose(f.means, g.means.detach(), atol=1e-6) and torch.allclose(f.opacities, g.opacities.detach(), atol=3e-3)


def test_committed_bundle_is_built_from_the_sources(tmp_path):
    """dist/player.js is what esbuild makes of src/ with the locked packages (rebuild: npm run build)."""
    node = shutil.which("node")
    if node is None or not (WEB / "node_modules" / "esbuild").is_dir():
        pytest.skip(f"no node or esbuild: cd {WEB} && npm ci")
    subprocess.run([node, "build.mjs", str(tmp_path / "player.js")], cwd=WEB, check=True, capture_output=True, timeout=120)
    assert (tmp_path / "player.js").read_bytes() == (WEB / "dist" / "player.js").read_bytes(), f"stale bundle: cd {WEB} && npm run build"


# ---- export and view ---------------------------------------------------------------------------
def test_export_splatv_and_html(runs, tmp_path, capsys):
    out = tmp_path / "r.splatv"
    assert main(["-q", "export", str(runs["rotor"]), "--format", "splatv", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["bytes"] == out.stat().st_size and summary["format"] == "splatv" and summary["baked"] is False
    assert summary["records"] <= summary["gaussians"] == 400 and summary["baking_psnr_db"] > 45
    html = tmp_path / "d.html"
    assert main(["-q", "export", str(runs["deform"]), "--format", "html", "--out", str(html), "--segments", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["segments"] == 2 and summary["baked"] and summary["bytes"] == html.stat().st_size > summary["splatv_bytes"]
    text = html.read_text()
    assert "motion4dReady" in text and 'id="m4d-splatv">H4sI' in text  # the player and gzip data inside
    for external in ('src="http', "src='http", '<link', "@import"):
        assert external not in text
    assert main(["-q", "export", str(runs["deform"]), "--format", "splatv", "--out", str(tmp_path / "d.splatv")]) == 0
    summary = json.loads(capsys.readouterr().out)  # no --segments: the fewest that reach 40 dB
    assert summary["segments"] in (1, 2, 4, 8, 16) and (summary["baking_psnr_min_db"] >= 40 or summary["segments"] == 16), summary
    for argv, msg in (
        (["export", str(runs["rotor"]), "--format", "html", "--out", str(tmp_path / "x.html"), "--segments", "0"], "--segments"),
        (["export", str(tmp_path / "nothing"), "--format", "splatv", "--out", str(tmp_path / "x.splatv")], "nothing"),
    ):
        assert main(["-q", *argv]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.startswith("error: ") and err.count("\n") == 1, err


def test_view_serves_every_input(runs, tmp_path):
    splatv = tmp_path / "a.splatv"
    main(["-q", "export", str(runs["rotor"]), "--format", "splatv", "--out", str(splatv)])
    pages = {name: view_page(p) for name, p in (("m4d", runs["rotor"]), ("run", runs["animate"]), ("splatv", splatv),
                                               ("glb", runs["animate"] / "animation.glb"))}  # fmt: skip
    for name, html in pages.items():
        config = json.loads(html.split('id="m4d-config">')[1].split("</script>")[0])
        assert config["cameras"] and (name == "glb") == ('id="m4d-splatv"></script>' in html), name
        assert ("glb" in config) == (name in ("run", "glb")), name
    server = page_server(pages["m4d"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = server_url(server)
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "?t=1&view=0") as r:
            assert r.status == 200 and r.read().decode() == pages["m4d"]
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url + "other")
    finally:
        server.shutdown()
        server.server_close()


def test_view_announces_and_stops(runs):
    stop, seen = threading.Event(), []
    thread = threading.Thread(target=lambda: seen.append(view(str(runs["rotor"]), browser=False, announce=lambda u: (seen.append(u), stop.set()), stop=stop)))
    thread.start()
    thread.join(120)
    assert seen[0].startswith("http://127.0.0.1:") and seen[1] == {"url": seen[0], "stopped": True}


def test_view_bad_inputs(runs, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "bad.splatv").write_bytes(b"not one")
    (tmp_path / "bad.glb").write_bytes(b"glTF nonsense")
    for target, msg in ((tmp_path / "missing.m4d", "no such file"), (tmp_path / "notes.txt", "not a run folder, .m4d, .splatv or .glb"),
                        (tmp_path / "bad.splatv", "not a .splatv"), (tmp_path / "bad.glb", "bad.glb")):  # fmt: skip
        assert main(["-q", "view", str(target), "--no-browser"]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.startswith("error: ") and err.count("\n") == 1, err
    assert main(["-q", "view", str(runs["rotor"]), "--no-browser", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
