"""The resource optimizer's network scored in the native core, without torch.

``models/default.npz`` holds the same weights as the TorchScript ``models/default.pt``
as plain arrays (``mean``, ``std``, ``weight_i`` (out, in), ``bias_i``, ReLU between
layers). :class:`NativeScorer` feeds them to ``_core.MlpScorerCore`` (C++, SIMD), whose
scores equal the TorchScript model's up to float32 rounding. It has the ``scores``
method of :class:`~fastplace.optimizer.model.ResourceOptimizer`, so
``fastplace.ServerAllocator(optimizer=NativeScorer.from_npz())`` uses it as its RO.

>>> from fastplace.optimizer.native import NativeScorer  # doctest: +SKIP
>>> scorer = NativeScorer.from_npz()                     # doctest: +SKIP
>>> scorer.scores(features)                              # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from importlib import resources

import numpy as np
import numpy.typing as npt

from fastplace._core import MlpScorerCore
from fastplace.optimizer.features import N_FEATURES

__all__ = ["NativeScorer", "default_arrays_path"]

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
        self._core = MlpScorerCore(
            as_f32,
            [np.ascontiguousarray(b, dtype=np.float32).reshape(-1) for b in biases],
            np.ascontiguousarray(mean, dtype=np.float32).reshape(-1),
            np.ascontiguousarray(std, dtype=np.float32).reshape(-1),
        )
        self.path = path
        self._n_features = int(self._core.n_features)

    @classmethod
    def from_npz(cls, path: str | os.PathLike[str] | None = None) -> NativeScorer:
        """The plain-array model in ``path`` (``np.savez`` by ``save_model(arrays_path=)``);
        None: the shipped ``models/default.npz``. ValueError if it is not such a file or
        takes another number of features than this fastplace computes."""
        if path is None:
            traversable = resources.files("fastplace.optimizer") / "models" / "default.npz"
            with resources.as_file(traversable) as file:
                return cls.from_npz(file)
        where = os.fspath(path)
        with np.load(where, allow_pickle=False) as arrays:
            layers = sorted(int(m.group(1)) for n in arrays.files if (m := _WEIGHT.fullmatch(n)))
            missing = [n for n in ("mean", "std") if n not in arrays.files]
            if not layers or layers != list(range(len(layers))) or missing:
                raise ValueError(
                    f"{where}: not a plain-array scorer (needs mean, std, weight_0.., bias_0..)"
                )
            try:
                weights = [arrays[f"weight_{i}"] for i in layers]
                biases = [arrays[f"bias_{i}"] for i in layers]
            except KeyError as error:
                raise ValueError(f"{where}: missing {error.args[0]}") from None
            scorer = cls(weights, biases, arrays["mean"], arrays["std"], path=where)
        if scorer.n_features != N_FEATURES:
            raise ValueError(
                f"{where}: the model takes {scorer.n_features} features, this fastplace "
                f"computes {N_FEATURES}"
            )
        return scorer

    @property
    def n_features(self) -> int:
        return self._n_features

    @property
    def kernel(self) -> str:
        """The SIMD kernel picked for this CPU: "avx2+fma" or "generic"."""
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

    def __repr__(self) -> str:
        return f"NativeScorer(path={self.path!r}, kernel={self.kernel!r})"
