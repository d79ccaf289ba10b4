"""The resource optimizer (RO): a DQN that picks a server for a container among K
candidates the core proposes, trained in the simulator.

``import fastplace.optimizer`` does not import torch: features and candidates are
numpy, and torch is imported when a TorchScript model is loaded
(``ResourceOptimizer.load`` / ``default``), saved, or trained
(``fastplace.optimizer.train``, ``fastplace train``). Placing needs no torch: the
shipped model's native twin (``native.NativeScorer``, ``models/default.npz``) scores in
the core, and ``shipped.shipped_optimizer`` picks TorchScript or the twin, checked to
hold the same weights (``digest``).

>>> from fastplace.optimizer import ResourceOptimizer  # doctest: +SKIP
>>> ro = ResourceOptimizer.default()                    # doctest: +SKIP
>>> server = ro.choose(cluster, blocks, request, block_ids)  # doctest: +SKIP

Any loading failure raises :class:`OptimizerLoadError`; ``choose`` raises when the
model's scores are not finite. The allocator answers both with the greedy server.
"""

from __future__ import annotations

from fastplace.optimizer.features import (
    DEFAULT_K,
    FEATURE_NAMES,
    N_FEATURES,
    SCHEMA_VERSION,
    candidate_features,
    candidates,
    decision,
)
from fastplace.optimizer.model import OptimizerLoadError, ResourceOptimizer, default_model_path

__all__ = [
    "DEFAULT_K",
    "FEATURE_NAMES",
    "N_FEATURES",
    "SCHEMA_VERSION",
    "OptimizerLoadError",
    "ResourceOptimizer",
    "candidate_features",
    "candidates",
    "decision",
    "default_model_path",
]
