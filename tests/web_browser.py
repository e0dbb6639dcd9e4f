"""Screenshots of the web player in a real browser, for tests: headless Chromium (Debian's ``chromium``)
driven by ``playwright-core`` (npm, in the player folder's ``node_modules``) through ``browser/shoot.mjs``,
with software WebGL (``--use-angle=swiftshader --enable-unsafe-swiftshader``: without them recent Chromium
refuses WebGL and a page could pass blank). Where Chromium, node or playwright-core are missing, or
Chromium cannot start, :func:`shoot` skips the test with a message saying which and how to get it."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

WEB = Path(__file__).parents[1] / "src" / "motion4d" / "export" / "web"
SHOOT = Path(__file__).parent / "browser" / "shoot.mjs"


def chromium() -> str | None:
    """The Chromium executable (``$CHROMIUM``, else ``chromium`` / ``chromium-browser`` on the PATH)."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def shoot(html: Path, shots: list[dict], folder: Path, probe: str | None = None) -> tuple[list[np.ndarray], dict]:
    """Screenshots [H,W,3] float in [0,1] of ``html`` for each of ``shots`` ({t, view, w, h, mode}) and the
    driver's report (``console``: the page's messages, ``webgl``: the renderer string, ``shots``: timings,
    ``probe``: the value of the JS expression ``probe`` evaluated in the page afterwards)."""
    exe, node = chromium(), shutil.which("node")
    if exe is None:
        pytest.skip("no Chromium: apt-get install chromium (or set CHROMIUM)")
    if node is None:
        pytest.skip("no node: apt-get install nodejs npm")
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        pytest.skip(f"no playwright-core: cd {WEB} && npm ci")
    folder.mkdir(parents=True, exist_ok=True)
    shots = [{**s, "out": str(folder / f"shot{i}.png")} for i, s in enumerate(shots)]
    job = folder / "job.json"
    job.write_text(json.dumps({"html": str(html), "web": str(WEB), "chromium": exe, "shots": shots, "probe": probe}))
    done = subprocess.run([node, str(SHOOT), str(job)], capture_output=True, text=True, timeout=600)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        raise AssertionError(f"shoot.mjs failed ({done.returncode}): {done.stderr[-2000:]}")
    report = json.loads(lines[-1])
    if not report["launched"]:
        pytest.skip(f"Chromium cannot start: {report.get('error')}")
    assert "error" not in report, report
    images = [iio.imread(s["out"])[..., :3].astype(np.float32) / 255.0 for s in shots]
    return images, report


def console_errors(report: dict) -> list[str]:
    """The page's console errors and uncaught exceptions."""
    return [m["text"] for m in report["console"] if m["type"] in ("error", "pageerror")]


def psnr(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """PSNR (dB) between two images in [0,1]."""
    a, b = (np.asarray(x, dtype=np.float64) for x in (a, b))
    mse = float(((a - b) ** 2).mean())
    return 10 * math.log10(1 / mse) if mse > 0 else math.inf


def assert_not_blank(image: np.ndarray, background, *, min_fraction: float = 0.01) -> None:
    """Fail on a uniform screenshot or one that is all background."""
    assert float(image.std()) > 0.01, "the screenshot is uniform"
    differs = np.abs(image - np.asarray(background, dtype=np.float32)).max(-1) > 0.05
    assert differs.mean() >= min_fraction, f"only {differs.mean():.4f} of the screenshot differs from the background"
