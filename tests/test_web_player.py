"""The exported player in a real browser (headless Chromium, software WebGL; see web_browser.py): the page
opens from disk, draws ``?t=&view=&w=&h=`` and later frames set through ``window.motion4d.show``, and each
256² screenshot matches motion4d's own renderer at that camera and time (PSNR ≥ 25 dB): 4D-Rotor splats,
baked deformation-field splats, and an animate run's animated GLB (and its baked mesh Gaussians). The page
logs no console errors; a uniform or all-background screenshot fails."""

import numpy as np
import pytest
import torch

from motion4d.data.gltf import load_gltf
from motion4d.pipelines.dataset_gltf import render_mesh_rgba
from motion4d.pipelines.export_web import export_web
from motion4d.pipelines.models import load_run_model
from motion4d.pipelines.render_video import dataset_cameras
from motion4d.render.frame import render_frame

import web_runs
from web_browser import assert_not_blank, console_errors, psnr, shoot

SIZE = 256
PSNR_FLOOR = 25.0
WHITE = (1.0, 1.0, 1.0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return web_runs.camera_dataset(tmp_path_factory.mktemp("web_player") / "data", size=SIZE, n_views=3)


def splat_reference(run, data, t: float, view: int) -> np.ndarray:
    """Our rasterizer's image of the run's model at time t from test camera ``view``."""
    model, _ = load_run_model(run)
    viewmats, Ks, W, H, _ = dataset_cameras(data, "test")
    with torch.no_grad():
        out = render_frame(model.at_time(t), viewmats[view : view + 1], Ks[view : view + 1], W, H, background=torch.tensor(WHITE))
    return out.rgb[0].clamp(0, 1).numpy()


PROBE = """(async () => {
  const before = window.motion4d.state.t;
  document.getElementById("m4d-play").click();
  await new Promise((r) => setTimeout(r, 500));
  const ui = ["m4d-play", "m4d-time", "m4d-speed", "m4d-view", "m4d-bg"].every((id) => document.getElementById(id));
  return { before, after: window.motion4d.state.t, playing: window.motion4d.state.playing, ui, stats: window.motion4d.stats() };
})()"""
"""Press play: time advances, the controls are there, and the sort runs in a worker."""


def check_shots(html, shots, references, folder) -> list[float]:
    images, report = shoot(html, [{**s, "w": SIZE, "h": SIZE} for s in shots], folder, probe=PROBE)
    probe = report["probe"]
    assert probe["ui"] and probe["playing"] and probe["after"] != probe["before"], probe
    assert probe["stats"]["sorter"] == "worker" and probe["stats"]["drawn"] > 0, probe
    assert report["webgl"], "no WebGL2 in the page"
    assert console_errors(report) == []
    values = []
    for shot, image, ref in zip(shots, images, references):
        assert image.shape == (SIZE, SIZE, 3)
        assert_not_blank(image, WHITE)
        values.append(psnr(image, ref))
        assert values[-1] >= PSNR_FLOOR, (shot, values)
    return values


def check_splat_run(run, data, folder, shots, *, segments=None) -> dict:
    """Export ``run`` as HTML, shoot ``shots`` and compare each with our rasterizer; returns the export summary."""
    html = folder / "player.html"
    summary = export_web(run, "html", html, segments=segments, check=False)  # compared with the model itself below
    refs = [splat_reference(run, data, s["t"], s["view"]) for s in shots]
    assert psnr(refs[0], refs[-1]) < 30, "the model barely changes in time: the check would not see a wrong time"
    check_shots(html, shots, refs, folder / "shots")
    return summary


def test_rotor4d_splats_in_chromium(data, tmp_path):
    run = web_runs.rotor_run(tmp_path / "rotor.m4d", data, n=3000)
    summary = check_splat_run(run, data, tmp_path, [{"t": 0.0, "view": 0}, {"t": 0.75, "view": 1}, {"t": 2.0, "view": 2}, {"t": 1.3, "view": 0}])
    assert not summary["baked"]


def test_baked_deform_splats_in_chromium(data, tmp_path):
    run = web_runs.deform_run(tmp_path / "deform.m4d", data, n=800)
    summary = check_splat_run(run, data, tmp_path, [{"t": 0.1, "view": 0}, {"t": 0.5, "view": 2}, {"t": 0.95, "view": 0}], segments=3)
    assert summary["baked"] and summary["segments"] == 3


def test_animated_glb_and_mesh_splats_in_chromium(data, tmp_path):
    run = web_runs.animate_run(tmp_path / "anim", data, n=1500)
    html = tmp_path / "anim.html"
    summary = export_web(run, "html", html, check=False)
    assert summary["glb_bytes"] > 0 and summary["segments"] == 2
    asset = load_gltf(run / "animation.glb")
    viewmats, Ks, _, _, _ = dataset_cameras(data, "test")

    def mesh_reference(t, view):  # our mesh rasterizer on the GLB posed at t (unlit, one sample a pixel)
        world = asset.vertices_at(t * asset.duration) @ web_runs.A2W[:3, :3].T + web_runs.A2W[:3, 3]
        rgba = render_mesh_rgba(asset.mesh, world, viewmats[view].double().numpy(), Ks[view].double().numpy(), SIZE, supersample=1, ambient=1.0)
        return rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:]) * np.asarray(WHITE)

    shots = [{"t": 0.0, "view": 0, "mode": "mesh"}, {"t": 0.6, "view": 1, "mode": "mesh"}, {"t": 1.0, "view": 0, "mode": "mesh"},
             {"t": 0.8, "view": 2, "mode": "splats"}]  # fmt: skip
    refs = [mesh_reference(s["t"], s["view"]) for s in shots[:3]] + [splat_reference(run, data, 0.8, 2)]
    assert psnr(refs[0], refs[2]) < 25, "the mesh barely moves"
    check_shots(html, shots, refs, tmp_path / "shots")
