"""The resource optimizer's network scored in the native core, without torch.

``models/default.npz`` holds the same weights as the TorchScript ``models/default.pt``
as plain arrays (``mean``, ``std``, ``weight_i`` (out, in), ``bias_i``, ReLU between
layers) plus the same metadata record. :class:`NativeScorer` feeds them to
``_core.MlpScorerCore`` (C++, SIMD), whose scores equal the TorchScript model's up to
float32 rounding. It has the ``scores`` method of
:class:`~fastplace.optimizer.model.ResourceOptimizer`, so
``fastplace.ServerAllocator(optimizer=NativeScorer.from_npz())`` uses it as its RO, and
without torch the allocator's default RO is this twin of the shipped model
(:func:`fastplace.optimizer.shipped.shipped_optimizer`). ``from_npz`` refuses a file
whose weights do not match the digest its metadata records
(:mod:`fastplace.optimizer.digest`).

:func:`native_decision` (``_core.ro_decide``) computes a decision's candidates, features
and scores in one C++ call; the allocator uses it for TorchScript models, whose weights
:meth:`NativeScorer.from_torchscript` exports.

>>> from fastplace.optimizer.native import NativeScorer  # doctest: +SKIP
>>> scorer = NativeScorer.from_npz()                     # doctest: +SKIP
>>> scorer.scores(features)                              # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
import sys
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fastplace._core import MlpScorerCore, ro_decide
from fastplace.optimizer.digest import DIGEST_KEY, weights_digest
from fastplace.optimizer.features import N_FEATURES, N_GLOBAL_FEATURES, Request
from fastplace.optimizer.model import OptimizerLoadError, check_metadata

if TYPE_CHECKING:
    from fastplace.block_index import BlockIndex
    from fastplace.cluster import Cluster
    from fastplace.optimizer.model import ResourceOptimizer

__all__ = [
    "NativeScorer",
    "default_arrays_path",
    "native_decision",
    "rounding_scale",
    "scorer_core_for",
]

#: Largest difference from TorchScript an exported scorer may show on the probe batch
#: (times max(1, |score|)): the tolerance the native scorer is tested to.
EXPORT_TOLERANCE = 1e-5
#: ... or, when larger, this many float32 epsilons of the magnitudes the network's sums
#: pass through (``rounding_scale``): two float32 evaluations that sum in another order
#: round apart by that much, whatever the score. A network with large standardised
#: inputs (a feature of small training spread) and a small output was refused before.
EXPORT_ROUNDINGS = 4.0

_WEIGHT = re.compile(r"weight_(\d+)")


def default_arrays_path() -> str:
    """Where the shipped plain-array model (next to default.pt) lives in the package."""
    return str(resources.files("fastplace.optimizer") / "models" / "default.npz")


class NativeScorer:
    """Scores (n, F) feature matrices with the C++ MLP scorer; immutable, thread-safe."""

    def __init__(
        self,
        weights: list[npt.ArrayLike],
        biases: list[npt.ArrayLike],
        mean: npt.ArrayLike,
        std: npt.ArrayLike,
        path: str = "",
    ) -> None:
        """Layer ``i`` maps with ``weights[i]`` (out, in) and ``biases[i]`` (out,); the
        input is standardised as ``(x - mean) / std`` (std below 1e-3 counts as 1).
        ValueError when the shapes do not chain or the last layer has more than one output."""
        as_f32 = [np.ascontiguousarray(w, dtype=np.float32) for w in weights]
        bias_f32 = [np.ascontiguousarray(b, dtype=np.float32).reshape(-1) for b in biases]
        mean_f32 = np.ascontiguousarray(mean, dtype=np.float32).reshape(-1)
        std_f32 = np.ascontiguousarray(std, dtype=np.float32).reshape(-1)
        self._core = MlpScorerCore(as_f32, bias_f32, mean_f32, std_f32)
        self.path = path
        self._n_features = int(self._core.n_features)
        #: SHA-256 of the weights as this scorer computes with them (digest.py's
        #: canonical form): equal digests, equal scores.
        self.digest = weights_digest(
            {"mean": mean_f32, "std": std_f32}
            | {f"weight_{i}": w for i, w in enumerate(as_f32)}
            | {f"bias_{i}": b for i, b in enumerate(bias_f32)}
        )
        #: The metadata record of the file it was read from ({} if built from arrays).
        self.metadata: dict[str, Any] = {}

    @classmethod
    def from_npz(cls, path: str | os.PathLike[str] | None = None) -> NativeScorer:
        """The plain-array model in ``path`` (``np.savez`` by ``save_model(arrays_path=)``);
        None: the shipped ``models/default.npz``.

        OptimizerLoadError (a ValueError) naming the file when it is not such a file,
        was made for another feature schema, records no weights digest, or holds weights
        that do not match the digest it records (a damaged or edited file)."""
        if path is None:
            traversable = resources.files("fastplace.optimizer") / "models" / "default.npz"
            with resources.as_file(traversable) as file:
                return cls.from_npz(file)
        where = os.fspath(path)
        if not os.path.isfile(where):
            raise OptimizerLoadError(f"{where}: no such model file")
        try:
            arrays = np.load(where, allow_pickle=False)
        except Exception as error:  # numpy raises ValueError, OSError, zipfile errors...
            raise OptimizerLoadError(
                f"{where}: not a readable .npz file ({type(error).__name__}: {error})"
            ) from None
        with arrays:
            layers = sorted(int(m.group(1)) for n in arrays.files if (m := _WEIGHT.fullmatch(n)))
            missing = [n for n in ("mean", "std") if n not in arrays.files]
            if not layers or layers != list(range(len(layers))) or missing:
                raise OptimizerLoadError(
                    f"{where}: not a plain-array scorer (needs mean, std, weight_0.., bias_0..)"
                )
            try:
                weights = [arrays[f"weight_{i}"] for i in layers]
                biases = [arrays[f"bias_{i}"] for i in layers]
                metadata = _metadata(arrays, where)
                scorer = cls(weights, biases, arrays["mean"], arrays["std"], path=where)
            except KeyError as error:
                raise OptimizerLoadError(f"{where}: missing {error.args[0]}") from None
            except OptimizerLoadError:
                raise
            except Exception as error:  # a damaged member: zlib, CRC or shape errors
                raise OptimizerLoadError(
                    f"{where}: unreadable arrays ({type(error).__name__}: {error})"
                ) from None
        check_metadata(metadata, where)
        recorded = metadata.get(DIGEST_KEY)
        if not isinstance(recorded, str):
            raise OptimizerLoadError(
                f"{where}: the metadata records no {DIGEST_KEY}, so the weights cannot be "
                "checked; re-export it with fastplace.optimizer.model.reexport_model"
            )
        if scorer.digest != recorded:
            raise OptimizerLoadError(
                f"{where}: the weights do not match the digest the file records "
                f"({DIGEST_KEY} {scorer.digest[:16]}... != {recorded[:16]}...): "
                "damaged or edited; refusing it"
            )
        if scorer.n_features != N_FEATURES:
            raise OptimizerLoadError(
                f"{where}: the model takes {scorer.n_features} features, this fastplace "
                f"computes {N_FEATURES}"
            )
        scorer.metadata = metadata
        return scorer

    @classmethod
    def from_torchscript(cls, optimizer: ResourceOptimizer) -> NativeScorer:
        """The weights of a loaded TorchScript ScoreNet (``ResourceOptimizer``), exported
        from its parameters and checked on a probe batch to score as TorchScript does
        (within EXPORT_TOLERANCE). ValueError when the module is not a ScoreNet
        (standardise, then Linear and ReLU alternating, one output) or scores otherwise."""
        module: Any = optimizer._module
        where = f"{optimizer.path}: "
        if getattr(module, "original_name", None) != "ScoreNet":
            raise ValueError(f"{where}not a ScoreNet module; keeping the TorchScript scorer")
        kinds = [child.original_name for _, child in module.layers.named_children()]
        expected = ["Linear", "ReLU"] * ((len(kinds) + 1) // 2)
        if not kinds or kinds != expected[:-1]:
            raise ValueError(f"{where}layers {kinds} are not Linear and ReLU alternating")
        # The same plain arrays save_model writes to the .npz (ScoreNet.arrays).
        arrays = optimizer.network().arrays()
        n_layers = sum(1 for name in arrays if name.startswith("weight_"))
        scorer = cls(
            [arrays[f"weight_{i}"] for i in range(n_layers)],
            [arrays[f"bias_{i}"] for i in range(n_layers)],
            arrays["mean"],
            arrays["std"],
            path=optimizer.path,
        )
        scorer.metadata = dict(optimizer.metadata)
        if scorer.n_features != N_FEATURES:
            raise ValueError(f"{where}takes {scorer.n_features} features, not {N_FEATURES}")
        probe = np.random.default_rng(0).uniform(-0.5, 1.5, (64, N_FEATURES)).astype(np.float32)
        probe[:8] = np.eye(8, N_FEATURES, dtype=np.float32)
        expected_scores = optimizer.scores(probe)
        got = scorer.scores(probe)
        if not np.isfinite(got).all() or not np.isfinite(expected_scores).all():
            raise ValueError(f"{where}scores on the probe batch are not finite")
        difference = np.abs(got.astype(np.float64) - expected_scores)
        allowed = np.maximum(
            EXPORT_TOLERANCE * np.maximum(1.0, np.abs(expected_scores.astype(np.float64))),
            EXPORT_ROUNDINGS * np.finfo(np.float32).eps * rounding_scale(arrays, probe),
        )
        if (difference > allowed).any():
            off = float(np.max(difference / allowed)) * EXPORT_TOLERANCE
            raise ValueError(f"{where}exported weights score {off:.2g} off TorchScript")
        return scorer

    @property
    def core(self) -> MlpScorerCore:
        """The native scorer itself, for ``_core.ro_decide``."""
        return self._core

    @property
    def n_features(self) -> int:
        return self._n_features

    @property
    def kernel(self) -> str:
        """The SIMD kernel picked for this CPU when the scorer was built: "avx2+fma",
        "avx512f" (only with FASTPLACE_SCORER_AVX512=1) or "generic" (the portable one;
        FASTPLACE_SCORER_GENERIC=1 forces it)."""
        return str(self._core.kernel)

    def scores(self, features: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """One float32 score per row of a (n, F) feature matrix; higher is better.

        Non-finite scores are returned as they are (as ResourceOptimizer.scores does).
        """
        matrix = np.ascontiguousarray(features, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self._n_features:
            raise ValueError(
                f"features must have shape (n, {self._n_features}), got {matrix.shape}"
            )
        return self._core.score(matrix)

    def decision_scores(self, features: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """``scores`` for the candidate rows of one decision, by the path ``ro_decide``
        uses: those of the cluster-wide columns (the last ``N_GLOBAL_FEATURES``) that are
        equal on every row go into the first layer once, and, per block of 16 rows, feature
        columns equal on every row of the block go into its first layer's bias and hidden
        units that are zero on the whole block are skipped. Equal to ``scores`` up to
        float32 rounding (the additions run in another order); faster on real decision
        rows, where ~40% of the first layer's units are off on whole blocks and
        neighbouring candidates share several features."""
        matrix = np.ascontiguousarray(features, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self._n_features:
            raise ValueError(
                f"features must have shape (n, {self._n_features}), got {matrix.shape}"
            )
        # The core folds only those of these columns that are equal on every row.
        tail = N_GLOBAL_FEATURES if self._n_features == N_FEATURES else 0
        return self._core.score_decision(matrix, tail)

    def __repr__(self) -> str:
        return f"NativeScorer(path={self.path!r}, kernel={self.kernel!r})"


def rounding_scale(arrays: Any, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Per row: the magnitude the network's float32 sums pass through, max(1, the chain
    |W_L| ... |W_1| |standardised x| + |b|) (the forward error bound of a matrix chain,
    Higham 3.5, without its length factor). ``arrays``: the .npz layout."""
    std = np.where(np.asarray(arrays["std"]) < 1e-3, 1.0, arrays["std"]).astype(np.float64)
    magnitude = np.abs((features.astype(np.float64) - arrays["mean"]) / std)
    n_layers = sum(1 for name in arrays if _WEIGHT.fullmatch(name))
    for i in range(n_layers):
        weight = np.abs(np.asarray(arrays[f"weight_{i}"], dtype=np.float64))
        magnitude = magnitude @ weight.T + np.abs(np.asarray(arrays[f"bias_{i}"]))
    return np.asarray(np.maximum(magnitude[:, 0], 1.0), dtype=np.float64)


def scorer_core_for(optimizer: object) -> MlpScorerCore | None:
    """The native scorer that scores exactly as ``optimizer`` does, or None.

    A :class:`NativeScorer` is its own; a TorchScript :class:`ResourceOptimizer` (whose
    ``scores`` is not overridden) is exported from its parameters and checked on a
    probe batch (:meth:`NativeScorer.from_torchscript`). Anything else (a custom Python
    object with a ``scores`` method), and any export that fails, gives None: the caller
    then scores with ``optimizer.scores`` in Python.
    """
    if isinstance(optimizer, NativeScorer):
        return optimizer.core if optimizer.n_features == N_FEATURES else None
    model = sys.modules.get("fastplace.optimizer.model")  # loaded whenever one exists
    if model is None or not isinstance(optimizer, model.ResourceOptimizer):
        return None
    if type(optimizer).scores is not model.ResourceOptimizer.scores:
        return None
    try:
        return NativeScorer.from_torchscript(optimizer).core
    except Exception:  # anything odd about the module: keep scoring with TorchScript
        return None


def _metadata(arrays: Any, where: str) -> dict[str, Any]:
    """The JSON record ``save_model`` stores under ``metadata`` in the .npz."""
    if "metadata" not in arrays.files:
        raise OptimizerLoadError(
            f"{where}: no metadata record: not a fastplace resource optimizer model"
        )
    try:
        record = json.loads(str(arrays["metadata"]))
    except ValueError as error:
        raise OptimizerLoadError(f"{where}: metadata is not valid JSON ({error})") from None
    if not isinstance(record, dict):
        raise OptimizerLoadError(f"{where}: metadata is not a JSON object")
    return record


def native_decision(
    cluster: Cluster,
    blocks: BlockIndex | None,
    scorer: NativeScorer | None,
    request: Request,
    block_ids: npt.ArrayLike,
    k: int,
) -> tuple[int, npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.float32] | None]:
    """(best candidate or -1, candidates, features, scores or None): features.py's
    ``decision`` and the scoring in one C++ call (``_core.ro_decide``).

    The candidates and features equal :func:`fastplace.optimizer.features.decision`'s.
    The server is -1 when nothing fits, without a scorer, or when a score is not
    finite. Errors as ``decision``: ValueError for a bad request, k, or block id.
    """
    if k <= 0:
        raise ValueError(f"k = {k} must be > 0")
    core = None if scorer is None else scorer.core
    ids = np.ascontiguousarray(block_ids, dtype=np.int64).reshape(-1)
    return ro_decide(cluster, blocks, core, request, ids, k)
