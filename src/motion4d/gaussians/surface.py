"""Gaussians bound to a triangle mesh's surface: each sits at fixed barycentric coordinates of one face
and is flat along it, so moving the mesh moves them (and fitting them moves the mesh).

A Gaussian's covariance follows its face's affine map: with the face frame ``M = [e1, e2, ñ]`` (two edges
and the unit normal scaled by √(2·area)), a deformed face maps rest covariances by ``A = M' M⁻¹``:
``Σ' = A Σ Aᵀ``. Stretching a face stretches its Gaussians; a rigid motion rotates them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from motion4d.gaussians.surface_patches import face_patches


def _check_mesh(vertices: Tensor, faces: Tensor) -> None:
    if vertices.dim() != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape [V,3], got {list(vertices.shape)}")
    if faces.dim() != 2 or faces.shape[1] != 3 or faces.shape[0] == 0:
        raise ValueError(f"faces must have shape [F,3] with F > 0, got {list(faces.shape)}")


def face_areas(vertices: Tensor, faces: Tensor) -> Tensor:
    """[F] triangle areas."""
    _check_mesh(vertices, faces)
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    return torch.linalg.cross(b - a, c - a).norm(dim=-1) / 2


def face_frames(vertices: Tensor, faces: Tensor) -> Tensor:
    """[F,3,3] frames with columns (v1 − v0, v2 − v0, unit normal × √(2·area)) of each face."""
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    e1, e2 = b - a, c - a
    n = torch.linalg.cross(e1, e2)
    length = n.norm(dim=-1, keepdim=True)
    normal = n / length.clamp_min(1e-20) * length.clamp_min(1e-20).sqrt()  # degenerate faces: 0, with a finite gradient
    return torch.stack([e1, e2, normal], dim=-1)


def sample_surface(vertices: Tensor, faces: Tensor, n: int, *, generator: torch.Generator | None = None, min_area_fraction: float = 1e-9) -> tuple[Tensor, Tensor]:
    """About ``n`` points spread over the surface in proportion to area, at least one per usable face.

    Faces with area below ``min_area_fraction`` × the total are skipped (degenerate). Within a face the
    points are uniform (square-root barycentric trick), drawn from ``generator`` (CPU).

    Returns ``(face_ids [N] long, barycentrics [N,3])``.
    """
    areas = face_areas(vertices.double(), faces).cpu()
    total = float(areas.sum())
    if not total > 0:
        raise ValueError("the mesh has no area")
    usable = areas > min_area_fraction * total
    counts = torch.where(usable, (areas / total * n).round().long().clamp_min(1), torch.zeros_like(areas, dtype=torch.long))
    face_ids = torch.repeat_interleave(torch.arange(faces.shape[0]), counts)
    r1 = torch.rand(face_ids.shape[0], generator=generator, dtype=torch.float64).sqrt()
    r2 = torch.rand(face_ids.shape[0], generator=generator, dtype=torch.float64)
    bary = torch.stack([1 - r1, r1 * (1 - r2), r1 * r2], dim=-1)
    return face_ids.to(faces.device), bary.to(vertices.dtype).to(vertices.device)


def refine_triangles(
    vertices: Tensor, faces: Tensor, max_edge: float, *, max_area: float | None = None, max_triangles: int = 2_000_000
) -> tuple[Tensor, Tensor]:
    """Split the faces by longest-edge bisection until no edge is longer than ``max_edge`` and (if given)
    no piece's area exceeds ``max_area``.

    The pieces are not a new mesh (neighbours need not share the new vertices): each is a triangle on
    its parent face, given by its corners' barycentric coordinates there, so that points and shapes on it
    still follow the parent's motion. Splitting stops early (with a larger last edge) rather than exceed
    ``max_triangles``.

    Returns ``(parent [S] long, corners [S,3,3])``: row i of ``corners[s]`` is corner i's barycentrics in
    face ``parent[s]``; corners keep the parent's winding.
    """
    _check_mesh(vertices, faces)
    if not max_edge > 0:
        raise ValueError(f"max_edge must be > 0, got {max_edge}")
    tri = vertices.double()[faces].cpu()  # [F,3,3]
    parent = torch.arange(faces.shape[0])
    corners = torch.eye(3, dtype=torch.float64).expand(faces.shape[0], 3, 3).clone()
    while True:
        pos = corners @ tri[parent]  # [S,3,3] corner positions
        edge = torch.stack([(pos[:, (k + 2) % 3] - pos[:, (k + 1) % 3]).norm(dim=-1) for k in range(3)], dim=1)  # opposite corner k
        longest, k = edge.max(dim=1)
        split = longest > max_edge
        if max_area is not None:
            split |= torch.linalg.cross(pos[:, 1] - pos[:, 0], pos[:, 2] - pos[:, 0]).norm(dim=-1) / 2 > max_area
        n_split = int(split.sum())
        if n_split == 0 or corners.shape[0] + n_split > max_triangles:
            break
        s = torch.nonzero(split)[:, 0]
        ks = k[s]
        ci, cj = corners[s, (ks + 1) % 3], corners[s, (ks + 2) % 3]
        ck, mid = corners[s, ks], (ci + cj) / 2
        # (k, i, j) → (k, i, m) and (k, m, j): the same winding
        first = torch.stack([ck, ci, mid], dim=1)
        second = torch.stack([ck, mid, cj], dim=1)
        keep = ~split
        corners = torch.cat([corners[keep], first, second])
        parent = torch.cat([parent[keep], parent[s], parent[s]])
    return parent.to(faces.device), corners.to(vertices.dtype).to(vertices.device)


def surface_gaussians(
    vertices: Tensor,
    faces: Tensor,
    n: int,
    *,
    scale_factor: float = 0.5,
    normal_ratio: float = 0.1,
    min_area_fraction: float = 1e-9,
) -> tuple[Tensor, Tensor, Tensor]:
    """About ``n`` surface Gaussians tiling the mesh: ``(face_ids [N], barycentrics [N,3], rest covariances [N,3,3])``.

    The faces are split (:func:`refine_triangles`; the area limit, and an edge limit 2× the legs of a
    right isosceles piece that size, are adjusted until there are about ``n`` pieces; never fewer than
    usable faces). Bisection keeps a sliver's aspect ratio, so the edge limit is what bounds the length
    of a sliver's pieces: they get smaller, not rounder. and each piece gets one Gaussian at its
    centroid, shaped like the piece (:func:`rest_covariances` with m = 1). Compared with random points on
    the faces, each Gaussian shaped like its whole face:

    - no needles: a long sliver face (a box side in two triangles) gave needle-shaped Gaussians whose tips
      poked past the face's corners; CesiumMilkTruck's rest pose rendered with 10–16 % more alpha than its
      images, spikes at every long edge;
    - no gaps or clumps: random points leave holes the background shows through.

    Faces with area below ``min_area_fraction`` × the total get none (degenerate). A mesh with more usable
    faces than ``n`` gets about ``n`` Gaussians all the same: one per patch of neighbouring faces, shaped
    like the patch and bound to one of its faces (:func:`motion4d.gaussians.surface_patches.face_patches`).
    """
    _check_mesh(vertices, faces)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    areas = face_areas(vertices.double(), faces)
    total = float(areas.sum())
    if not total > 0:
        raise ValueError("the mesh has no area")
    usable = torch.nonzero(areas > min_area_fraction * total)[:, 0]
    v, f = vertices.double(), faces[usable]
    if f.shape[0] > n:
        return _patch_gaussians(v, f, usable, n, scale_factor, normal_ratio, vertices.dtype)
    area = total / n  # split pieces larger than this (halving), or longer than 2 legs of that right isosceles
    lo = hi = best = None  # the count is a step function of the limits: bracket it, keep the closest
    for _ in range(12):
        parent, corners = refine_triangles(v, f, 2.0 * (2.0 * area) ** 0.5, max_area=area, max_triangles=max(4 * n, 2 * f.shape[0]))
        ratio = parent.shape[0] / n
        if best is None or abs(math.log(ratio)) < abs(math.log(best[0])):
            best = (ratio, parent, corners)
        if 0.9 <= ratio <= 1.1 or (ratio < 1 and parent.shape[0] <= f.shape[0]):
            break
        lo, hi = (area, hi) if ratio > 1 else (lo, area)
        area = (lo * hi) ** 0.5 if lo is not None and hi is not None else area * ratio
    _, parent, corners = best
    pieces = corners @ v[f[parent]]  # [S,3,3] corner positions
    ids = torch.arange(pieces.shape[0], device=faces.device)
    covars = rest_covariances(pieces.reshape(-1, 3), ids.reshape(-1, 1) * 3 + torch.arange(3, device=faces.device), ids,
                              scale_factor=scale_factor, normal_ratio=normal_ratio)  # fmt: skip
    bary = corners.mean(dim=1)  # the centroid's barycentrics in the parent face
    return usable[parent], bary.to(vertices.dtype), covars.to(vertices.dtype)


def _patch_gaussians(v: Tensor, f: Tensor, usable: Tensor, n: int, scale_factor: float, normal_ratio: float, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`surface_gaussians` on a mesh with more faces ``f`` than ``n``: one Gaussian per patch."""
    p = face_patches(v.detach().cpu().numpy(), f.cpu().numpy(), n)
    normal = torch.from_numpy(p.normal)
    nn_t = normal[:, :, None] * normal[:, None, :]
    tangent = torch.eye(3, dtype=normal.dtype) - nn_t  # a curved patch's spread along its normal is dropped
    covars = _with_normal(_shaped_inplane(tangent @ torch.from_numpy(p.uniform) @ tangent, scale_factor), nn_t, normal_ratio)
    to = dict(device=f.device)
    return usable[torch.from_numpy(p.host).to(**to)], torch.from_numpy(p.barycentrics).to(dtype=dtype, **to), covars.to(dtype=dtype, **to)


def rest_covariances(
    vertices: Tensor,
    faces: Tensor,
    face_ids: Tensor,
    barycentrics: Tensor | None = None,
    *,
    scale_factor: float = 0.7,
    normal_ratio: float = 0.1,
    edge_ratio: float = 0.0,
    shaped: bool = True,
) -> Tensor:
    """[N,3,3] flat covariances of the Gaussians on faces ``face_ids [N]``, m of them on a face.

    ``shaped`` (default): in-plane covariance = ``scale_factor² · 6√3 · C / m`` with C the covariance of the
    uniform distribution over the triangle, so Gaussians take the triangle's shape — long and thin on a
    sliver, which then does not spill sideways — and an equilateral face gets isotropic ones with
    ``σ = scale_factor · √(area / m)`` (its C = side²/24 · I, area = √3/4 · side²). Otherwise isotropic with
    that σ. Along the normal: ``normal_ratio`` × the in-plane RMS σ. With ``edge_ratio > 0`` (needs
    ``barycentrics [N,3]``) σ is also at most (distance to the face's nearest edge) / ``edge_ratio``.
    """
    areas = face_areas(vertices, faces)
    per_face = torch.bincount(face_ids, minlength=faces.shape[0]).clamp_min(1).to(vertices.dtype)
    m = per_face[face_ids]
    a, b, c = (vertices[faces[face_ids, i]] for i in range(3))
    nrm = torch.nn.functional.normalize(torch.linalg.cross(b - a, c - a), dim=-1)
    nn_t = nrm[:, :, None] * nrm[:, None, :]
    eye = torch.eye(3, dtype=vertices.dtype, device=vertices.device)
    if shaped:
        g = (a + b + c) / 3
        d = torch.stack([a - g, b - g, c - g], dim=1)  # [N,3,3]
        uniform = d.transpose(1, 2) @ d / 12.0  # covariance of the uniform distribution over the triangle
        inplane = _shaped_inplane(uniform, scale_factor) / m[:, None, None]
    else:
        inplane = (scale_factor**2 * areas[face_ids] / m)[:, None, None] * (eye - nn_t)
    if edge_ratio > 0:
        if barycentrics is None:
            raise ValueError("edge_ratio needs barycentrics")
        # distance to the edge opposite vertex i = b_i · altitude_i = b_i · 2·area / |edge_i|
        edges = torch.stack([(c - b).norm(dim=-1), (a - c).norm(dim=-1), (b - a).norm(dim=-1)], dim=-1)
        dist = (barycentrics * 2 * areas[face_ids, None] / edges.clamp_min(1e-20)).min(dim=-1).values
        top = torch.linalg.eigvalsh(inplane)[:, -1].clamp_min(1e-30)
        inplane = inplane * ((dist / edge_ratio) ** 2 / top).clamp(max=1.0)[:, None, None]
    return _with_normal(inplane, nn_t, normal_ratio)


def _shaped_inplane(uniform: Tensor, scale_factor: float) -> Tensor:
    """The in-plane covariance of a Gaussian shaped like a piece of surface whose uniform distribution has
    covariance ``uniform [N,3,3]``: ``scale_factor² · 6√3 · uniform`` (an equilateral triangle's is
    isotropic with σ = scale_factor · √area)."""
    return scale_factor**2 * 6.0 * 3.0**0.5 * uniform


def _with_normal(inplane: Tensor, nn_t: Tensor, normal_ratio: float) -> Tensor:
    """``inplane [N,3,3]`` plus a spread along the unit normals (``nn_t = n nᵀ``) of ``normal_ratio`` × the
    in-plane RMS σ."""
    mean_var = inplane.diagonal(dim1=-2, dim2=-1).sum(-1) / 2  # in-plane variance per axis
    return inplane + normal_ratio**2 * mean_var[:, None, None] * nn_t


def surface_points(vertices: Tensor, faces: Tensor, face_ids: Tensor, barycentrics: Tensor) -> Tensor:
    """[N,3] positions of the bound points on the mesh with vertex positions ``vertices [V,3]``."""
    tri = vertices[faces[face_ids]]  # [N,3,3]
    return (barycentrics[:, :, None] * tri).sum(1)


def deformed_covariances(rest_frames_inv: Tensor, vertices: Tensor, faces: Tensor, face_ids: Tensor, rest_covars: Tensor, *, max_stretch: float = 0.0) -> Tensor:
    """[N,3,3] covariances after the faces moved to ``vertices [V,3]``.

    Args:
        rest_frames_inv: [F,3,3] inverses of the rest pose's :func:`face_frames`.
        rest_covars: [N,3,3] covariances at rest (:func:`rest_covariances`).
        max_stretch: the most a face's Gaussians grow (0: no limit). A face whose linear stretch
            s = |det A|^(1/3) (A: the map from its rest frame to its posed one; s² is its area ratio) exceeds
            it has its Gaussians' deformation scaled by max_stretch / s (not differentiated: a size rule,
            not something to fit). Faces that stretch less are unchanged, bit for bit.
    """
    if face_ids.shape[0] < faces.shape[0]:  # fewer Gaussians than faces (patches): only their faces' maps
        used, face_ids = torch.unique(face_ids, return_inverse=True)
        faces, rest_frames_inv = faces[used], rest_frames_inv[used]
    A = face_frames(vertices, faces) @ rest_frames_inv  # [F,3,3]
    if max_stretch > 0:
        det = (A[:, :, 0] * torch.linalg.cross(A[:, :, 1], A[:, :, 2])).sum(-1)  # triple product: finite for degenerate faces
        stretch = det.detach().abs().clamp_min(1e-30) ** (1.0 / 3.0)
        k = (max_stretch / stretch).clamp(max=1.0)
        A = torch.where((k < 1.0)[:, None, None], A * k[:, None, None], A)
    Ai = A[face_ids]
    return Ai @ rest_covars @ Ai.transpose(-1, -2)
