"""Patches of neighbouring faces, for meshes with more faces than surface Gaussians.

A dense asset (tens of thousands of faces, a scan, a sculpt) would get one Gaussian per face from
:func:`motion4d.gaussians.surface.surface_gaussians`, and every step of a fit renders all of them: a
52k-face character took 1.04 s a step against 0.56 s for its 3.3k-face original, for faces far below a
pixel (0.58 s with patches). Instead, neighbouring faces are grouped into about ``n`` patches, each
drawn by one Gaussian shaped like the whole patch and bound to one of its faces. The mesh itself is
kept: its vertices still move, and export, whole.

Grouping: faces whose centroids fall in the same cell of a cubic grid, that are joined across an edge
(positions welded, so UV and normal seams do not split a patch) and whose normals differ by less than
:data:`MAX_BEND_DEG`, form one patch (connected components of that face graph), so a patch never joins
the two sides of a thin part or goes round a sharp edge. The cell size is searched until there are about
``n`` patches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from motion4d.gaussians.vertex_offsets import weld_vertices

MAX_BEND_DEG = 60.0
"""Faces whose normals differ by more than this are never in one patch (a box's sides stay apart)."""


@dataclass
class Patches:
    """Faces grouped into patches, each with its host face and shape."""

    host: np.ndarray
    """[P] the face each patch's Gaussian is bound to: the patch's face whose centroid is nearest the patch's."""
    barycentrics: np.ndarray
    """[P,3] the patch centroid's nearest point on the host face, as barycentrics of that face."""
    uniform: np.ndarray
    """[P,3,3] covariance of the uniform distribution over the patch (about its centroid)."""
    normal: np.ndarray
    """[P,3] the patch's area-weighted unit normal."""
    labels: np.ndarray
    """[F] each face's patch, in 0..P-1."""


def _adjacent_pairs(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[E,2] pairs of faces that share an edge, vertices welded by position
    (:func:`~motion4d.gaussians.vertex_offsets.weld_vertices`; each shared edge gives a chain of pairs
    through all faces on it)."""
    f = weld_vertices(torch.from_numpy(vertices))[0].numpy()[faces]
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    owner = np.tile(np.arange(len(faces)), 3)
    key = edges[:, 0].astype(np.int64) * (int(edges.max()) + 1) + edges[:, 1]
    order = np.argsort(key, kind="stable")
    key, owner = key[order], owner[order]
    same = key[1:] == key[:-1]
    return np.stack([owner[:-1][same], owner[1:][same]], axis=1)


def _label(centroids: np.ndarray, pairs: np.ndarray, cell: float) -> tuple[int, np.ndarray]:
    """Connected components of the faces joined by ``pairs`` that share a grid cell of size ``cell``."""
    c = np.floor((centroids - centroids.min(0)) / cell).astype(np.int64)
    same = (c[pairs[:, 0]] == c[pairs[:, 1]]).all(1)
    join = pairs[same]
    n = len(centroids)
    graph = coo_matrix((np.ones(len(join)), (join[:, 0], join[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)


def face_patches(vertices: np.ndarray, faces: np.ndarray, n: int, *, tolerance: float = 0.1) -> Patches:
    """About ``n`` patches (within ``tolerance``, where the grid allows) of the faces ``faces [F,3]``.

    Args:
        vertices: [V,3] positions.
        faces: [F,3] the faces to group (e.g. the usable ones); ``n`` should be below F.
        n: the patches wanted.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    tri = v[f]  # [F,3,3]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    areas = 0.5 * np.linalg.norm(cross, axis=1)
    normals = cross / np.maximum(2.0 * areas, 1e-300)[:, None]
    centroids = tri.mean(1)
    pairs = _adjacent_pairs(v, f)
    pairs = pairs[(normals[pairs[:, 0]] * normals[pairs[:, 1]]).sum(1) >= math.cos(math.radians(MAX_BEND_DEG))]
    cell = math.sqrt(areas.sum() / n)  # a square patch of the wanted area
    best = None
    for _ in range(16):  # the count falls as the cells grow: a secant search on log scale, keeping the closest
        count, labels = _label(centroids, pairs, cell)
        if best is None or abs(math.log(count / n)) < abs(math.log(best[0] / n)):
            best = (count, labels)
        if abs(count / n - 1.0) <= tolerance:
            break
        cell *= math.sqrt(count / n)
    count, labels = best
    return _shapes(tri, areas, normals, centroids, labels, count)


def _shapes(tri: np.ndarray, areas: np.ndarray, normals: np.ndarray, centroids: np.ndarray, labels: np.ndarray, count: int) -> Patches:
    """Host faces, barycentrics, uniform covariances and normals of the patches ``labels [F]``."""
    total = np.bincount(labels, weights=areas, minlength=count)
    safe = np.maximum(total, 1e-300)
    centre = np.stack([np.bincount(labels, weights=areas * centroids[:, k], minlength=count) for k in range(3)], 1) / safe[:, None]
    d = tri - centroids[:, None, :]
    own = np.einsum("fij,fik->fjk", d, d) / 12.0  # each face's uniform covariance about its centroid
    off = centroids - centre[labels]
    second = (own + off[:, :, None] * off[:, None, :]) * areas[:, None, None]
    uniform = np.zeros((count, 3, 3))
    np.add.at(uniform, labels, second)
    uniform /= safe[:, None, None]
    normal = np.zeros((count, 3))
    np.add.at(normal, labels, normals * areas[:, None])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-300)
    # the host: the patch's face whose centroid is nearest the patch's centroid
    dist = np.linalg.norm(off, axis=1)
    order = np.lexsort((dist, labels))
    first = np.ones(len(order), dtype=bool)
    first[1:] = labels[order][1:] != labels[order][:-1]
    host = np.empty(count, dtype=np.int64)
    host[labels[order][first]] = order[first]
    bary = _nearest_barycentrics(tri[host], centre)
    return Patches(host, bary, uniform, normal, labels)


def _nearest_barycentrics(tri: np.ndarray, p: np.ndarray) -> np.ndarray:
    """[P,3] barycentrics of the points ``p [P,3]`` projected onto the planes of ``tri [P,3,3]``, clipped into
    the triangles (negative coordinates set to 0, the rest renormalised)."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    e0, e1, w = b - a, c - a, p - a
    d00, d01, d11 = (e0 * e0).sum(1), (e0 * e1).sum(1), (e1 * e1).sum(1)
    d20, d21 = (w * e0).sum(1), (w * e1).sum(1)
    den = np.maximum(d00 * d11 - d01 * d01, 1e-300)
    v = (d11 * d20 - d01 * d21) / den
    u = (d00 * d21 - d01 * d20) / den
    bary = np.clip(np.stack([1.0 - v - u, v, u], 1), 0.0, None)
    return bary / np.maximum(bary.sum(1, keepdims=True), 1e-300)
