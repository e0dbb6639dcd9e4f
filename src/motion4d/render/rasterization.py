"""``rasterization``: gsplat's call, argument names, shapes and return, on any device.

Backends: ``"numba"`` (fast CPU kernels), ``"torch"`` (pure PyTorch, any device), ``"gsplat"``
(CUDA, when gsplat is installed). ``"auto"`` picks gsplat for CUDA tensors when available, numba for
CPU tensors, and torch otherwise.
"""

from __future__ import annotations

import importlib.util
from typing import Literal

import torch
from torch import Tensor

from motion4d.render.cameras import camera_centers
from motion4d.render.projection import covariance_3d, pixel_bounds, project_gaussians
from motion4d.render.sh import sh_to_rgb

RenderMode = Literal["RGB", "D", "ED", "RGB+D", "RGB+ED"]
Backend = Literal["auto", "numba", "torch", "gsplat", "reference"]
_RENDER_MODES = ("RGB", "D", "ED", "RGB+D", "RGB+ED")


def gsplat_available() -> bool:
    """True when gsplat is installed and CUDA is usable."""
    return torch.cuda.is_available() and importlib.util.find_spec("gsplat") is not None


def _check(name: str, x, shape: tuple, dims: int | None = None) -> None:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")
    want = dims if dims is not None else len(shape)
    ok = x.dim() == want and all(s is None or s == d for s, d in zip(shape, x.shape))
    if not ok:
        spec = ",".join("*" if s is None else str(s) for s in shape)
        raise ValueError(f"{name} must have shape [{spec}], got {list(x.shape)}")


def _validate(means, quats, scales, covars, opacities, colors, viewmats, Ks, width, height, sh_degree, backgrounds, render_mode):
    _check("means", means, (None, 3))
    N = means.shape[0]
    if covars is None:
        if quats is None or scales is None:
            raise ValueError("quats and scales are required unless covars is given")
        _check("quats", quats, (N, 4))
        _check("scales", scales, (N, 3))
    else:
        _check("covars", covars, (N, 3, 3))
    _check("opacities", opacities, (N,))
    _check("viewmats", viewmats, (None, 4, 4))
    C = viewmats.shape[0]
    _check("Ks", Ks, (C, 3, 3))
    if not isinstance(colors, Tensor):
        raise ValueError(f"colors must be a torch.Tensor, got {type(colors).__name__}")
    if sh_degree is None:
        if not (colors.dim() == 2 and colors.shape[0] == N) and not (colors.dim() == 3 and colors.shape[:2] == (C, N)):
            raise ValueError(f"colors must have shape [N,D] or [C,N,D] (N={N}, C={C}), got {list(colors.shape)}")
    else:
        if not isinstance(sh_degree, int) or not 0 <= sh_degree <= 3:
            raise ValueError(f"sh_degree must be None or an int in 0..3, got {sh_degree!r}")
        if colors.dim() != 3 or colors.shape[0] != N or colors.shape[2] != 3:
            raise ValueError(f"colors must have shape [N,K,3] of SH coefficients when sh_degree is set, got {list(colors.shape)}")
        if colors.shape[1] < (sh_degree + 1) ** 2:
            raise ValueError(f"colors has {colors.shape[1]} SH coefficients, sh_degree={sh_degree} needs {(sh_degree + 1) ** 2}")
    _check("colors", colors, tuple(colors.shape))
    for name, v in (("width", width), ("height", height)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if render_mode not in _RENDER_MODES:
        raise ValueError(f"render_mode must be one of {_RENDER_MODES}, got {render_mode!r}")
    tensors = {"means": means, "opacities": opacities, "colors": colors, "viewmats": viewmats, "Ks": Ks}
    tensors.update({"covars": covars} if covars is not None else {"quats": quats, "scales": scales})
    if backgrounds is not None:
        _check("backgrounds", backgrounds, (C, None))
        tensors["backgrounds"] = backgrounds
    for name, t in tensors.items():
        if t.dtype != means.dtype:
            raise ValueError(f"{name} is {t.dtype} but means is {means.dtype}; use one floating dtype")
        if t.device != means.device:
            raise ValueError(f"{name} is on {t.device} but means is on {means.device}; put all inputs on one device")
    for name, t in tensors.items():
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or inf")


def _resolve_backend(backend: str, device: torch.device) -> str:
    if backend == "auto":
        if device.type == "cuda" and gsplat_available():
            return "gsplat"
        return "numba" if device.type == "cpu" else "torch"
    if backend not in ("numba", "torch", "gsplat", "reference"):
        raise ValueError(f"backend must be one of auto, numba, torch, gsplat, reference; got {backend!r}")
    if backend == "gsplat" and not (device.type == "cuda" and gsplat_available()):
        raise ValueError("backend='gsplat' needs CUDA tensors and the gsplat package")
    if backend == "numba" and device.type != "cpu":
        raise ValueError(f"backend='numba' runs on CPU tensors only, got {device}")
    return backend


def rasterization(
    means: Tensor,
    quats: Tensor | None,
    scales: Tensor | None,
    opacities: Tensor,
    colors: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    *,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    sh_degree: int | None = None,
    backgrounds: Tensor | None = None,
    render_mode: RenderMode = "RGB",
    eps2d: float = 0.3,
    backend: Backend = "auto",
    covars: Tensor | None = None,
    rasterize_mode: Literal["classic", "antialiased"] = "classic",
) -> tuple[Tensor, Tensor, dict]:
    """Render 3D Gaussians into C cameras (gsplat-compatible).

    Args:
        means: [N,3] centres. quats: [N,4] rotations (wxyz, need not be normalised).
        scales: [N,3] standard deviations (activated). opacities: [N] in [0,1] (activated).
        colors: [N,D] or [C,N,D] features, or [N,K,3] SH coefficients when ``sh_degree`` is set
            (colour = SH basis · coeffs + 0.5, clamped at 0; view direction from the camera centre).
        viewmats: [C,4,4] world→camera (OpenCV axes). Ks: [C,3,3] pinhole intrinsics.
        width, height: image size in pixels.
        near_plane, far_plane: cull Gaussians whose camera depth is outside (near, far).
        backgrounds: [C,D] colour composited behind (depth channels get 0).
        render_mode: "RGB"; "D" accumulated depth Σwᵢzᵢ; "ED" expected depth Σwᵢzᵢ/Σwᵢ; "RGB+D",
            "RGB+ED" append that channel.
        eps2d: added to the 2D covariance diagonal (low-pass filter).
        backend: "auto", "numba", "torch", "gsplat" or "reference" (dense, tests only).
        covars: [N,3,3] world covariances used instead of quats and scales (pass None for those),
            as gsplat's ``covars`` argument; e.g. 4D Gaussians sliced at a time.
        rasterize_mode: "classic" or "antialiased" (opacities compensated for the ``eps2d`` filter, as
            gsplat; see :func:`motion4d.render.projection.project_gaussians`).

    Returns:
        render_colors [C,H,W,X], render_alphas [C,H,W,1], meta. ``meta["means2d"]`` [C,N,2] keeps
        its ``.grad`` after backward (for densification); also "radii" [C,N,2] int32 (0 = culled),
        "depths" [C,N], "conics" [C,N,3], "opacities" [C,N], "width", "height", "n_cameras",
        "backend".
    """
    _validate(means, quats, scales, covars, opacities, colors, viewmats, Ks, width, height, sh_degree, backgrounds, render_mode)
    which = _resolve_backend(backend, means.device)
    if which == "gsplat":
        from motion4d.render.gsplat_backend import rasterization_gsplat

        return rasterization_gsplat(
            means, quats, scales, opacities, colors, viewmats, Ks, width, height,
            near_plane=near_plane, far_plane=far_plane, sh_degree=sh_degree,
            backgrounds=backgrounds, render_mode=render_mode, eps2d=eps2d, covars=covars, rasterize_mode=rasterize_mode,
        )  # fmt: skip
    C = viewmats.shape[0]
    inputs = (means, quats, scales, covars, opacities, colors, viewmats, Ks, backgrounds)
    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs)
    if rasterize_mode not in ("classic", "antialiased"):
        raise ValueError(f"rasterize_mode must be 'classic' or 'antialiased', got {rasterize_mode!r}")
    if which == "numba" and not needs_grad and covars is None and rasterize_mode == "classic":
        from motion4d.render.numba_backend import project_numba

        proj, bounds = project_numba(
            means, quats, scales, opacities, viewmats, Ks, width, height,
            eps2d=eps2d, near_plane=near_plane, far_plane=far_plane,
        )  # fmt: skip
    else:
        proj = project_gaussians(
            means, covariance_3d(quats, scales) if covars is None else covars, opacities, viewmats, Ks, width, height,
            eps2d=eps2d, near_plane=near_plane, far_plane=far_plane, antialiased=rasterize_mode == "antialiased",
        )  # fmt: skip
        bounds = pixel_bounds(proj.means2d, proj.radii, width, height)
    means2d = proj.means2d
    if means2d.requires_grad:
        means2d.retain_grad()

    if render_mode in ("D", "ED"):
        feats = proj.depths[..., None]
    else:
        if sh_degree is not None:
            dirs = means[None] - camera_centers(viewmats)[:, None]  # [C,N,3]
            feats = sh_to_rgb(sh_degree, dirs, colors[None].expand(C, -1, -1, -1))
        else:
            feats = colors if colors.dim() == 3 else colors[None].expand(C, -1, -1)
        if render_mode in ("RGB+D", "RGB+ED"):
            feats = torch.cat([feats, proj.depths[..., None]], dim=-1)
    D = feats.shape[-1]
    n_color = D - 1 if render_mode in ("RGB+D", "RGB+ED") else (0 if render_mode in ("D", "ED") else D)
    bg = torch.zeros((C, D), dtype=feats.dtype, device=feats.device)
    if backgrounds is not None and n_color > 0:
        bg = torch.cat([backgrounds[:, :n_color].to(feats.dtype), bg[:, n_color:]], dim=-1)

    if which == "numba":
        from motion4d.render.numba_backend import composite_numba as composite

        out, alphas = composite(means2d, proj.conics, proj.opacities, feats, bg, bounds, proj.depths.detach(), width, height)
    elif which == "torch":
        from motion4d.render.torch_backend import composite_torch

        out, alphas = composite_torch(means2d, proj.conics, proj.opacities, feats, bg, bounds, proj.depths.detach(), width, height)
    else:
        from motion4d.render.reference import composite_dense

        visible = (proj.radii > 0).any(dim=-1)
        out, alphas = composite_dense(means2d, proj.conics, proj.opacities, feats, bg, visible, proj.depths.detach(), width, height)

    if render_mode in ("ED", "RGB+ED"):
        out = torch.cat([out[..., :-1], out[..., -1:] / alphas.clamp(min=1e-10)], dim=-1)
    meta = {
        "means2d": means2d,
        "radii": proj.radii,
        "depths": proj.depths,
        "conics": proj.conics,
        "opacities": proj.opacities,
        "width": width,
        "height": height,
        "n_cameras": C,
        "backend": which,
    }
    return out, alphas, meta
