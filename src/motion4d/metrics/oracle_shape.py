"""Shape from silhouettes: observed alpha masks against the six synthetic shapes' template silhouettes.

The templates are the rest meshes of :func:`motion4d.data.synth_shapes.shape_mesh`, centred at the origin,
turned about z by ``yaws`` (covering the dataset's yaw jitter and any spin) and rasterized with the very
cameras the masks were seen from (:func:`render_templates`). Both the observed and the template masks are
*normalised* before they are compared (:func:`normalise_silhouettes`): each view is recentred on its own
centroid and all views of one time are zoomed by one common factor that brings their mean area to a fixed
share of the canvas. That removes the object's position (sliding, orbiting, bouncing) and size (the
dataset's size jitter, pulsing) but keeps its proportions across views (a cube's top is as wide as its
side). At each time, a shape matches by its best soft IoU ``Σ min(a, b) / Σ max(a, b)`` over the yaws,
summed over the views; its score is the mean of that over the ``best_times`` times it matches best (the
least deformed poses of a sway or a bend speak, and no one time's noise decides).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
import torch.nn.functional as F
from torch import Tensor

from motion4d.data.synth_shapes import PATTERNS, PatternSpec, shape_mesh
from motion4d.data.synth_vocab import SHAPES
from motion4d.render.mesh_raster import rasterize_triangles


@dataclass(frozen=True)
class SilhouetteConfig:
    """How silhouettes are normalised and matched."""

    canvas: int = 48
    """Side of the square canvas normalised silhouettes are resampled onto."""
    area_fraction: float = 0.12
    """Mean share of the canvas a normalised silhouette covers."""
    yaw_step_deg: float = 7.5
    """Spacing of the template yaws about z, over a full turn."""
    supersample: int = 2
    """Samples per pixel along each axis when the templates are rasterized."""
    min_area_px: float = 4.0
    """A view whose mask covers fewer pixels than this is empty (it then counts as no evidence)."""
    alpha_threshold: float | None = 0.5
    """Observed alpha is binarised at this level and reduced to its largest region before matching (the
    soft fall-off of Gaussians rounds corners off, which makes a pyramid look like a cone, and a fit's
    floaters would count as shape); None keeps it as it is."""

    best_times: int = 3
    """A shape's score is its mean soft IoU over the times it matches best, this many of them: the least
    deformed poses of a sway or a bend speak, and no single time's noise decides."""

    @property
    def yaws_deg(self) -> np.ndarray:
        """[Y] template yaws in degrees."""
        return np.arange(0.0, 360.0, self.yaw_step_deg)


@dataclass
class ShapeTemplates:
    """The normalised template silhouettes of every shape at every yaw, for one set of cameras."""

    masks: Tensor
    """[S,Y,V,c,c] normalised silhouettes (S = len(SHAPES) shapes × Y yaws × V views, c = canvas)."""
    yaws_deg: np.ndarray
    """[Y] yaws."""


def _rot_z(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


def mesh_silhouette(vertices: np.ndarray, faces: np.ndarray, viewmat: np.ndarray, K: np.ndarray, width: int, height: int, supersample: int = 2) -> np.ndarray:
    """[H,W] float32 coverage in [0,1] of the mesh (``vertices [V,3]``, ``faces [F,3]``) seen by one camera."""
    ss = int(supersample)
    K_hi = np.asarray(K, dtype=np.float64).copy()
    K_hi[:2] *= ss
    hit = rasterize_triangles(vertices, faces, viewmat, K_hi, width * ss, height * ss).face_ids >= 0
    return hit.reshape(height, ss, width, ss).mean(axis=(1, 3)).astype(np.float32)


def render_templates(viewmats: Tensor, Ks: Tensor, width: int, height: int, config: SilhouetteConfig = SilhouetteConfig()) -> ShapeTemplates:
    """Template silhouettes of every shape of :data:`SHAPES` at every yaw of ``config``, seen by the
    cameras ``viewmats [V,4,4]``, ``Ks [V,3,3]`` (images ``width`` × ``height``), prepared as observed
    silhouettes are (solid, perspective divided out, normalised)."""
    if viewmats.dim() != 3 or viewmats.shape[1:] != (4, 4) or Ks.shape != (viewmats.shape[0], 3, 3):
        raise ValueError(f"viewmats [V,4,4] and Ks [V,3,3] expected, got {list(viewmats.shape)}, {list(Ks.shape)}")
    vms, ks = viewmats.detach().cpu().double().numpy(), Ks.detach().cpu().double().numpy()
    yaws = config.yaws_deg
    out = np.zeros((len(SHAPES), len(yaws), len(vms), height, width), np.float32)
    for s, shape in enumerate(SHAPES):
        mesh = shape_mesh(shape, "red", PatternSpec(PATTERNS[0], 0.0))
        for y, yaw in enumerate(yaws):
            verts = mesh.vertices.astype(np.float64) @ _rot_z(yaw).T
            for v in range(len(vms)):
                out[s, y, v] = mesh_silhouette(verts, mesh.faces, vms[v], ks[v], width, height, config.supersample)
    return ShapeTemplates(_prepare(torch.from_numpy(out).flatten(0, 1), viewmats, Ks, config).unflatten(0, out.shape[:2]), yaws)


def _prepare(masks: Tensor, viewmats: Tensor, Ks: Tensor, config: SilhouetteConfig) -> Tensor:
    """[T,V,c,c] the silhouettes ``masks [T,V,H,W]`` as they are compared: solid (when ``alpha_threshold``),
    the perspective of an off-centre object divided out, normalised. Observed and template masks alike."""
    masks = masks.detach().cpu().float()
    if config.alpha_threshold is not None:
        masks = solid_silhouettes(masks, config.alpha_threshold)
    return normalise_silhouettes(masks, config, perspective_scale(masks, viewmats.detach().cpu(), Ks.detach().cpu(), config.min_area_px))


def normalise_silhouettes(masks: Tensor, config: SilhouetteConfig = SilhouetteConfig(), view_scale: Tensor | None = None,
                          channels: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:  # fmt: skip
    """[...,V,c,c] silhouettes ``masks [...,V,H,W]`` (coverage in [0,1]) recentred per view on their centroid
    and zoomed by one factor per leading index so that their mean area is ``area_fraction`` of the canvas.

    ``view_scale [...,V]`` (default 1) is how much larger than at the reference distance each view sees the
    object (a perspective camera that the object has come closer to); it is divided out first. Views with
    (almost) nothing in them come out empty. ``channels [...,V,C,H,W]`` (e.g. colours), when given, are
    resampled the same way and returned too, ``[...,V,C,c,c]``.
    """
    if masks.dim() < 3:
        raise ValueError(f"masks must have shape [...,V,H,W], got {list(masks.shape)}")
    lead, (V, H, W) = masks.shape[:-3], masks.shape[-3:]
    m = masks.reshape(-1, V, H, W).float()
    B, c = m.shape[0], config.canvas
    # pixel centres in normalised coordinates (align_corners=False)
    xs = (torch.arange(W, dtype=torch.float32) + 0.5) / W * 2 - 1
    ys = (torch.arange(H, dtype=torch.float32) + 0.5) / H * 2 - 1
    area = m.sum(dim=(-1, -2))  # [B,V]
    present = area >= config.min_area_px
    safe = area.clamp_min(1e-6)
    cx = (m.sum(dim=-2) * xs).sum(-1) / safe
    cy = (m.sum(dim=-1) * ys).sum(-1) / safe
    scale = torch.ones(B, V) if view_scale is None else view_scale.reshape(B, V).float().clamp_min(1e-3)
    mean_frac = (area / scale**2 * present).sum(-1) / present.sum(-1).clamp_min(1) / (H * W)  # [B]
    # input half-extent per output half-extent, per view
    zoom = (mean_frac / config.area_fraction).clamp_min(1e-6).sqrt()[:, None] * scale
    theta = torch.zeros(B, V, 2, 3)
    theta[..., 0, 0] = zoom * (H / W) ** 0.5  # square pixels whatever the aspect
    theta[..., 1, 1] = zoom * (W / H) ** 0.5
    theta[..., 0, 2] = cx
    theta[..., 1, 2] = cy
    grid = F.affine_grid(theta.reshape(B * V, 2, 3), [B * V, 1, c, c], align_corners=False)
    keep = present[..., None, None]
    out = F.grid_sample(m.reshape(B * V, 1, H, W), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = (out.reshape(B, V, c, c) * keep).reshape(*lead, V, c, c)
    if channels is None:
        return out
    C = channels.shape[-3]
    ch = F.grid_sample(channels.reshape(B * V, C, H, W).float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out, (ch.reshape(B, V, C, c, c) * keep[..., None]).reshape(*lead, V, C, c, c)


def solid_silhouettes(alpha: Tensor, threshold: float = 0.5) -> Tensor:
    """[...,H,W] float masks: each image of ``alpha [...,H,W]`` binarised at ``threshold`` and reduced to its
    largest connected region (8-connected) — a 4D fit's floaters and fuzzy fringe dropped."""
    a = (alpha.detach().cpu() >= threshold).numpy()
    flat = a.reshape(-1, *a.shape[-2:])
    out = np.zeros_like(flat, dtype=np.float32)
    for i, m in enumerate(flat):
        labels, n = ndimage.label(m, structure=np.ones((3, 3)))
        if n:
            out[i] = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    return torch.from_numpy(out.reshape(a.shape))


def soft_iou(a: Tensor, b: Tensor) -> Tensor:
    """Σ min(a, b) / Σ max(a, b) over the last three dimensions (views × canvas) of broadcast ``a``, ``b``."""
    return torch.minimum(a, b).sum(dim=(-1, -2, -3)) / torch.maximum(a, b).sum(dim=(-1, -2, -3)).clamp_min(1e-6)


def perspective_scale(masks: Tensor, viewmats: Tensor, Ks: Tensor, min_area_px: float = 4.0) -> Tensor:
    """[T,V] how much larger each view of ``masks [T,V,H,W]`` sees the object than it would at the origin.

    The object's centre at each time is triangulated from the views' silhouette centroids (the point
    nearest, in the least-squares sense, to the rays through them); the factor is the origin's depth over
    the centre's depth in each camera (``viewmats [V,4,4]``, ``Ks [V,3,3]``). 1 where it cannot be found.
    """
    T, V, H, W = masks.shape
    m = masks.double()
    area = m.sum(dim=(-1, -2))
    present = area >= min_area_px
    u = (m.sum(dim=-2) * (torch.arange(W, dtype=torch.float64) + 0.5)).sum(-1) / area.clamp_min(1e-9)
    v = (m.sum(dim=-1) * (torch.arange(H, dtype=torch.float64) + 0.5)).sum(-1) / area.clamp_min(1e-9)
    R, tr = viewmats[:, :3, :3].double(), viewmats[:, :3, 3].double()
    centres = -(R.transpose(1, 2) @ tr[..., None])[..., 0]  # [V,3]
    pix = torch.stack([u, v, torch.ones_like(u)], -1)  # [T,V,3]
    rays = torch.nn.functional.normalize(torch.einsum("vji,vjk,tvk->tvi", R, torch.linalg.inv(Ks.double()), pix), dim=-1)
    P = torch.eye(3, dtype=torch.float64) - rays[..., :, None] * rays[..., None, :]  # [T,V,3,3]
    P = P * present[..., None, None]
    A, b = P.sum(1), (P @ centres[None, :, :, None]).sum(1)[..., 0]
    ok = present.sum(1) >= 2
    safe_A = torch.where(ok[:, None, None], A, torch.eye(3, dtype=torch.float64).expand_as(A))
    p = torch.linalg.solve(safe_A, torch.where(ok[:, None], b, torch.zeros_like(b)))  # [T,3]
    depth = torch.einsum("vj,tj->tv", R[:, 2], p) + tr[None, :, 2]
    scale = tr[:, 2][None] / depth.clamp_min(1e-3)
    return torch.where(ok[:, None] & (depth > 1e-3), scale, torch.ones_like(scale)).float()


def shape_scores(masks: Tensor, viewmats: Tensor, Ks: Tensor, templates: ShapeTemplates,
                 config: SilhouetteConfig = SilhouetteConfig()) -> dict[str, float]:  # fmt: skip
    """Each shape's score (its best soft IoU over the yaws, averaged over its ``best_times`` best times;
    module docstring): ``masks [T,V,H,W]`` seen by the templates' cameras
    ``viewmats [V,4,4]``, ``Ks [V,3,3]`` (the perspective of an off-centre object divided out)."""
    if masks.dim() != 4 or masks.shape[1] != templates.masks.shape[2]:
        raise ValueError(f"masks must have shape [T,V,H,W] with V = {templates.masks.shape[2]}, got {list(masks.shape)}")
    obs = _prepare(masks, viewmats, Ks, config)
    seen = [soft_iou(o[None, None], templates.masks).max(dim=1).values for o in obs if o.sum() > 0]  # [S] per time
    if not seen:
        return dict.fromkeys(SHAPES, 0.0)
    best = torch.stack(seen).topk(min(config.best_times, len(seen)), dim=0).values.mean(dim=0)
    return {s: float(v) for s, v in zip(SHAPES, best)}


def classify_shape(masks: Tensor, viewmats: Tensor, Ks: Tensor, *, templates: ShapeTemplates | None = None,
                   config: SilhouetteConfig = SilhouetteConfig()) -> tuple[str, dict[str, float]]:  # fmt: skip
    """The shape whose silhouettes best match ``masks [T,V,H,W]`` (alpha in [0,1]; T times of the same V cameras
    ``viewmats [V,4,4]``, ``Ks [V,3,3]``), and every shape's score (best soft IoU, module docstring).

    ``templates`` (from :func:`render_templates` with the same cameras) saves rendering them again.
    """
    if masks.dim() == 3:
        masks = masks[None]
    H, W = masks.shape[-2:]
    templates = templates if templates is not None else render_templates(viewmats, Ks, W, H, config)
    scores = shape_scores(masks, viewmats, Ks, templates, config)
    return max(scores, key=scores.get), scores
