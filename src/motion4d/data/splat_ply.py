"""The standard 3D Gaussian Splatting PLY read in (the layout is described in :mod:`motion4d.export.ply`,
which writes it): the property names, recognising such a file, and the reader.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from motion4d.errors import DataError
from motion4d.data.points import read_ply_vertices
from motion4d.gaussians.activations import opacity_activation, scale_activation


def ply_property_names(num_sh_bases: int) -> list[str]:
    """The vertex property names, in order, of a 3DGS PLY with K = ``num_sh_bases`` SH coefficients."""
    rest = [f"f_rest_{i}" for i in range(3 * (num_sh_bases - 1))]
    return (
        ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", *rest, "opacity"]
        + ["scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    )


def is_splat_ply(property_names: set[str] | list[str]) -> bool:
    """Whether vertex properties look like a 3DGS PLY (``opacity`` and ``f_dc_0`` present)."""
    return "opacity" in property_names and "f_dc_0" in property_names


def load_ply(path: str | Path) -> dict[str, Tensor]:
    """Read a standard 3DGS PLY written by :func:`save_ply` or by 3DGS-compatible tools.

    Returns float32 tensors of activated values: ``means [N,3]``, ``quats [N,4]`` (wxyz, normalised),
    ``scales [N,3]`` (exp of the stored logs), ``opacities [N]`` (sigmoid of the stored logits),
    ``sh [N,K,3]``. Raises :class:`~motion4d.errors.DataError` naming ``path`` if the file is missing,
    unreadable, lacks the 3DGS vertex properties or holds NaN / infinite values.
    """
    path = Path(path)
    v = read_ply_vertices(path)
    names = set(v.dtype.names or ())
    n_rest = sum(1 for n in names if n.startswith("f_rest_"))
    K = n_rest // 3 + 1
    required = ply_property_names(K)
    missing = [n for n in required if n not in names and n not in ("nx", "ny", "nz")]
    if missing:
        shown = ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "")
        raise DataError(f"{path}: not a 3DGS PLY (vertex properties missing: {shown})")
    if n_rest % 3 or math.isqrt(K) ** 2 != K:
        raise DataError(f"{path}: not a 3DGS PLY ({n_rest} f_rest_* properties; expected 3*(K-1) with K a square)")
    bad = [n for n in required if n in names and not np.isfinite(np.asarray(v[n], dtype=np.float32)).all()]
    if bad:
        raise DataError(f"{path}: 3DGS PLY property {bad[0]} holds NaN or infinite values")
    col = lambda *ns: torch.from_numpy(np.stack([np.asarray(v[n], dtype=np.float32) for n in ns], axis=-1))  # noqa: E731
    N = len(v)
    rest = col(*[f"f_rest_{i}" for i in range(n_rest)]) if n_rest else torch.zeros(N, 0)
    sh = torch.cat([col("f_dc_0", "f_dc_1", "f_dc_2")[:, None, :], rest.reshape(N, 3, K - 1).transpose(1, 2)], dim=1)
    return {
        "means": col("x", "y", "z"),
        "quats": torch.nn.functional.normalize(col("rot_0", "rot_1", "rot_2", "rot_3"), dim=-1),
        "scales": scale_activation(col("scale_0", "scale_1", "scale_2")),
        "opacities": opacity_activation(col("opacity")[:, 0]),
        "sh": sh.contiguous(),
    }
