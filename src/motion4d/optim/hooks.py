"""What the training loop asks of a model, as ``typing.Protocol``s (structural: a model satisfies one by
having the methods, it never imports this module — a representation knows nothing of optimisers).

- :class:`GaussianModel`: every trainable model — ``params`` (an ``nn.ParameterDict`` of per-Gaussian raw
  tensors, N rows each), ``at_time(t) -> GaussianFrame`` and ``len(model) == N``.
- :class:`HasFieldParameters`: parameters that are not per-Gaussian (a HexPlane and MLPs, a deformation
  graph's keyframes), trained at the config's ``lr_field`` and checkpointed by name.
- :class:`HasRegularizers`: unweighted regularisers, each weighted by the config's ``lambda_<name>``.
- :class:`KeyframedModel`: a model posed by the keyframes of a deformation graph (``animate``'s).
- :class:`DensifyHooks`: how to measure, clone and split Gaussians that are not plain 3D ones (a 4D
  rotor's ``log_scales [N,4]``, a deformation model's canonical space); density control
  (:mod:`motion4d.optim.strategy`) falls back to the plain 3D rules for models without them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from torch import Tensor, nn

if TYPE_CHECKING:
    from motion4d.gaussians import GaussianFrame


@runtime_checkable
class GaussianModel(Protocol):
    """A trainable Gaussian model."""

    params: nn.ParameterDict
    """Per-Gaussian raw tensors, all with N rows (density control may replace entries)."""

    def at_time(self, t: float | None = None) -> "GaussianFrame":
        """The 3D Gaussians at time ``t`` (None: a static model's only state, a keyframed one's rest pose)."""
        ...

    def __len__(self) -> int:
        """N."""
        ...


@runtime_checkable
class HasFieldParameters(Protocol):
    """A model with parameters that are not per-Gaussian."""

    def field_parameters(self) -> Mapping[str, nn.Parameter] | Sequence[nn.Parameter]:
        """Those parameters by name (a list is named by position)."""
        ...


@runtime_checkable
class HasRegularizers(Protocol):
    """A model with its own regularisers."""

    def regularizers(self, t: float | None = None) -> Mapping[str, Tensor]:
        """Unweighted scalar terms by name at time ``t`` (the trainer adds ``lambda_<name>`` × each)."""
        ...


@runtime_checkable
class KeyframedModel(GaussianModel, Protocol):
    """A model posed by keyframes: ``graph.frame_times [T]`` (ascending) and ``copy_frame(src, dst)``."""

    graph: Any
    """Its deformation graph (:class:`~motion4d.gaussians.deform_graph.DeformationGraph`)."""

    def copy_frame(self, src: int, dst: int) -> None:
        """Start keyframe ``dst`` from keyframe ``src``'s pose."""
        ...


@runtime_checkable
class DensifyHooks(Protocol):
    """How density control measures, clones and splits the model's Gaussians."""

    def max_scale3d(self) -> Tensor:
        """[N] largest 3D extent (standard deviation) of each Gaussian."""
        ...

    def clone_rows(self, mask: Tensor) -> dict[str, Tensor]:
        """Copies of the rows ``mask [N]`` (bool) of every per-Gaussian parameter: ``{name: [S,...]}``."""
        ...

    def split_rows(self, mask: Tensor, n_children: int = 2, factor: float = 1.6, generator=None) -> dict[str, Tensor]:
        """``n_children`` children of each masked Gaussian, scales divided by ``factor``: ``{name: [n·S,...]}``."""
        ...


def field_parameters(model: object) -> list[tuple[str, nn.Parameter]]:
    """The model's non-per-Gaussian parameters as ``("field.<name>", parameter)`` pairs (none if it has none)."""
    if not isinstance(model, HasFieldParameters):
        return []
    found = model.field_parameters()
    items = found.items() if isinstance(found, Mapping) else enumerate(found)
    return [(f"field.{k}", p) for k, p in items]
