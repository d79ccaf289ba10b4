"""The resource optimizer as a simulator policy ("ro"), with the paper's fallback.

candidates -> features -> RO scores -> argmax. As in the paper's server allocator, the
RO's server is used when it is valid; when the RO fails (raises, scores NaN) or names
a server that does not fit, the greedy finder (first fit) decides, and the fallback is
counted in ``fallbacks`` by reason. A model that cannot be loaded is not a fallback
case here: constructing the policy raises OptimizerLoadError, since simulating "ro"
without a model would silently measure first fit. The default model is the shipped one
(``fastplace.optimizer.shipped``): TorchScript with torch, its native twin without, the
same decisions either way.
"""

from __future__ import annotations

from collections import Counter

from fastplace._checks import integer
from fastplace._native import _core
from fastplace.optimizer.features import DEFAULT_K, N_FEATURES
from fastplace.optimizer.model import ResourceOptimizer
from fastplace.optimizer.native import NativeScorer, scorer_core_for
from fastplace.optimizer.shipped import shipped_optimizer
from fastplace.placement_policy import BlockIds, PlacementContext, Policy, Request

__all__ = ["RO", "ResourceOptimizerPolicy"]


class RO(Policy):
    """Places with a trained ResourceOptimizer or NativeScorer (default: the shipped
    model)."""

    name = "ro"

    def __init__(
        self, optimizer: ResourceOptimizer | NativeScorer | None = None, *, k: int = DEFAULT_K
    ) -> None:
        self.k = integer(k, "k", minimum=1)
        self.optimizer = optimizer if optimizer is not None else shipped_optimizer()
        self.fallbacks: Counter[str] = Counter()
        # The model's weights in the core's scorer (checked equal to TorchScript), so a
        # decision is one C++ call, as in the allocator; None: TorchScript scores.
        self._scorer = scorer_core_for(self.optimizer)
        if self._scorer is None and isinstance(self.optimizer, NativeScorer):
            raise ValueError(
                f"optimizer takes {self.optimizer.n_features} features, this fastplace "
                f"computes {N_FEATURES}"
            )

    def _choose(self, context: PlacementContext, request: Request, blocks: BlockIds) -> int:
        if self._scorer is None:
            # A ResourceOptimizer whose export failed (checked in __init__): TorchScript.
            optimizer: ResourceOptimizer = self.optimizer  # type: ignore[assignment]
            return optimizer.choose(context.cluster, context.blocks, request, blocks, self.k)
        server, servers, _, _ = _core.ro_decide(
            context.cluster, context.blocks, self._scorer, request, blocks, self.k
        )
        if server < 0 and servers.shape[0]:
            raise FloatingPointError("resource optimizer scored a candidate non-finite")
        return server

    def choose(self, context: PlacementContext, request: Request, blocks: BlockIds) -> int:
        cluster = context.cluster
        try:
            server = self._choose(context, request, blocks)
        except Exception as error:  # any RO failure: the greedy finder decides
            self.fallbacks[type(error).__name__] += 1
            return cluster.first_fit(request)
        if server >= 0 and not cluster.fits(server, request):
            self.fallbacks["invalid_server"] += 1
            return cluster.first_fit(request)
        return server


#: A longer name for the same policy.
ResourceOptimizerPolicy = RO
