"""How much a representation moves: the scale-free ``motion_amplitude`` reported by runs and ``evaluate``.

Definition (``T`` sample times evenly spaced over ``[t0, t1]``, ``μ_i(t)`` the centre and ``o_i(t)`` the
opacity of Gaussian ``i`` at time ``t``, ``w_i = mean_t o_i(t)``)::

    D_i  = max_t |μ_i(t) − μ_i(t0)|                              (farthest excursion from the start)
    R    = sqrt( Σ_i w_i |μ_i(t0) − c|² / Σ_i w_i ),  c = Σ_i w_i μ_i(t0) / Σ_i w_i   (the scene radius)
    motion_amplitude = ( Σ_i w_i D_i / Σ_i w_i ) / R

i.e. the opacity-weighted mean largest displacement, in units of the opacity-weighted RMS radius of the
Gaussians themselves, so it needs no dataset and does not change when the scene is scaled. A static
model scores exactly 0; 0.1 means the visible Gaussians travel on average a tenth of the scene radius.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def motion_amplitude(model, time_range: tuple[float, float] = (0.0, 1.0), n_times: int = 16) -> float:
    """The module docstring's ``motion_amplitude`` of ``model`` (anything with ``at_time(t)``) over ``time_range``."""
    if n_times < 2:
        raise ValueError(f"n_times must be >= 2, got {n_times}")
    t0, t1 = float(time_range[0]), float(time_range[1])
    if t1 <= t0:
        return 0.0
    first = model.at_time(t0)
    mu0 = first.means.detach().double()
    disp = torch.zeros(mu0.shape[0], dtype=torch.float64, device=mu0.device)
    weight = first.opacities.detach().double().clone()
    for t in torch.linspace(t0, t1, n_times)[1:].tolist():
        frame = model.at_time(t)
        disp = torch.maximum(disp, (frame.means.detach().double() - mu0).norm(dim=-1))
        weight += frame.opacities.detach().double()
    w = weight / weight.sum().clamp_min(1e-12)
    center = (w[:, None] * mu0).sum(0)
    radius = float((w * (mu0 - center).pow(2).sum(-1)).sum().sqrt())
    if radius <= 1e-12:
        return 0.0
    return float((w * disp).sum()) / radius
