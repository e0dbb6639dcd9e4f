"""``--viewer``: watch a fit while it trains, in the browser, through viser (on 127.0.0.1 unless told otherwise).

The page shows the current Gaussians as splats (at the time the slider picks, for 4D models), the loss
curve and the current render from the first training camera. It is a step observer
(:mod:`motion4d.optim.observers`): the trainer calls it after every step and it updates at most
``max_rate_hz`` times a second, so the fit pays a snapshot of the Gaussians now and then (measured in
``benchmarks/viewer_overhead.py``). Leaving the ``with`` block (the run ending, an error, Ctrl-C) stops the
server.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import numpy as np
import torch

from motion4d.render.cameras import look_at
from motion4d.render.frame import render_frame
from motion4d.render.projection import covariance_3d

log = logging.getLogger(__name__)

SH_C0 = 0.28209479177387814
"""The degree-0 spherical-harmonic constant: colour = SH_C0 · sh0 + 0.5."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def splat_arrays(frame) -> dict[str, np.ndarray]:
    """viser's ``add_gaussian_splats`` arrays of a :class:`~motion4d.gaussians.GaussianFrame`."""
    covars = frame.covars if frame.covars is not None else covariance_3d(frame.quats, frame.scales)
    rgb = (SH_C0 * frame.sh[:, 0] + 0.5).clamp(0.0, 1.0)
    as_np = lambda t: t.detach().float().cpu().numpy()  # noqa: E731
    return {"centers": as_np(frame.means), "covariances": as_np(covars), "rgbs": as_np(rgb), "opacities": as_np(frame.opacities)[:, None]}


class LiveViewer:
    """A viser server showing a training run (see the module docstring); use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, *, max_rate_hz: float = 2.0, render_size: int = 160):
        import viser

        self.host = host
        self.port = port or free_port(host)
        self.server = viser.ViserServer(host=host, port=self.port, verbose=False)
        self.min_interval = 1.0 / max_rate_hz
        self.render_size = render_size
        self.steps: list[float] = []
        self.losses: list[float] = []
        self.updates = 0
        self.seconds = 0.0
        """Time spent in updates (what the viewer costs the fit)."""
        self._last = 0.0
        gui = self.server.gui
        self._status = gui.add_markdown("waiting for the first step")
        self._time = gui.add_slider("time", min=0.0, max=1.0, step=0.01, initial_value=0.0)
        self._play = gui.add_checkbox("play time", initial_value=True)
        self._curve = None
        self._image = None
        self._range = (0.0, 1.0)
        log.info("live viewer: http://%s:%d", host, self.port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> LiveViewer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server."""
        self.server.stop()

    def __call__(self, trainer: Any, step: int, loss: float) -> None:
        self.steps.append(float(step))
        self.losses.append(float(loss))
        now = time.perf_counter()
        if now - self._last < self.min_interval and step < trainer.config.iters:
            return
        self.update(trainer, step)
        self._last = time.perf_counter()
        self.seconds += self._last - now

    def update(self, trainer: Any, step: int) -> None:
        """Send the current Gaussians, loss curve and render."""
        t = self._next_time(trainer)
        with torch.no_grad():
            frame = trainer.model.at_time(t)
            self.server.scene.add_gaussian_splats("/gaussians", **splat_arrays(frame))
            image = self._render(trainer, frame)
        self._show_curve()
        if image is not None:
            if self._image is None:
                self._image = self.server.gui.add_image(image, label="current render", format="jpeg")
            else:
                self._image.image = image
        self._status.content = f"**{trainer.desc}** step {step} / {trainer.config.iters} · loss {self.losses[-1]:.4f} · {len(frame)} Gaussians · t = {t:.2f}"
        self.updates += 1

    def _next_time(self, trainer: Any) -> float:
        lo, hi = _time_range(trainer)
        if (lo, hi) != self._range:
            self._range = (lo, hi)
            self._time.min, self._time.max, self._time.step = lo, max(hi, lo + 1e-6), max((hi - lo) / 100, 1e-6)
            self._time.value = lo
        if self._play.value and hi > lo:
            value = self._time.value + (hi - lo) / 20
            self._time.value = lo if value > hi else value
        return float(self._time.value)

    def _show_curve(self) -> None:
        x, y = np.asarray(self.steps), np.log10(np.maximum(np.asarray(self.losses), 1e-12))
        if self._curve is None:
            from viser import uplot

            self._curve = self.server.gui.add_uplot(data=(x, y), series=(uplot.Series(label="step"), uplot.Series(label="log10 loss", stroke="blue")),
                                                    title="loss", aspect=1.6)  # fmt: skip
        else:
            self._curve.data = (x, y)

    def _render(self, trainer: Any, frame) -> np.ndarray | None:
        camera = _camera(trainer)
        if camera is None:
            return None
        viewmat, K, width, height = camera
        scale = self.render_size / max(width, height)
        K = K.clone()
        K[:2] *= scale
        w, h = max(int(round(width * scale)), 1), max(int(round(height * scale)), 1)
        out = render_frame(frame, viewmat[None], K[None], w, h, background=trainer.background)
        return (out.rgb[0].clamp(0, 1).cpu().numpy() * 255).astype(np.uint8)


def _camera(trainer: Any):
    """(viewmat, K, width, height) of the trainer's first training view, or one looking at the Gaussians."""
    for provider in trainer.losses:
        views = getattr(provider, "views", None)
        if views is not None and hasattr(views, "viewmats"):
            return views.viewmats[0], views.Ks[0], views.width, views.height
    means = trainer.model.at_time(_time_range(trainer)[0]).means.detach()
    center, radius = means.mean(0), float((means - means.mean(0)).norm(dim=-1).max().clamp_min(1e-3))
    eye = center + torch.tensor([0.0, -3.0, 1.0]) * radius
    from motion4d.render.cameras import intrinsics_from_fov

    return look_at(eye[None], center[None])[0], intrinsics_from_fov(45.0, 256, 256), 256, 256


def _time_range(trainer: Any) -> tuple[float, float]:
    """The training images' time range (0, 0 for a static fit)."""
    for provider in trainer.losses:
        times = getattr(provider, "times", None)
        if isinstance(times, torch.Tensor) and times.numel():
            return float(times.min()), float(times.max())
    frame_times = getattr(getattr(trainer.model, "graph", None), "frame_times", None)  # a keyframed (animate) model
    if isinstance(frame_times, torch.Tensor) and frame_times.numel():
        return float(frame_times.min()), float(frame_times.max())
    return 0.0, 0.0
