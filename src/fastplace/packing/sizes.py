"""Scalar sizes of vector items, shared by the item-centric and bin-centric heuristics.

Every measure works on *normalised* sizes (item / bin capacity, so 1.0 fills a
dimension), optionally weighted per dimension. The weights follow Panigrahy et al.
(2011), "Heuristics for Vector Bin Packing": dimensions in high demand overall count
more (``average``), or less (``reciprocal``), than the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = ["MEASURES", "WEIGHTS", "Measure", "Weight", "measure", "normalised", "weights"]

FloatArray = npt.NDArray[np.float64]
Measure = Literal["sum", "max", "product", "l2"]
Weight = Literal["unit", "average", "reciprocal"]

MEASURES: tuple[Measure, ...] = ("sum", "max", "product", "l2")
WEIGHTS: tuple[Weight, ...] = ("unit", "average", "reciprocal")


def normalised(items: npt.NDArray[np.int64], capacity: npt.NDArray[np.int64]) -> FloatArray:
    """``items / capacity`` per dimension; a dimension of capacity 0 counts as size 0."""
    scale = np.where(capacity > 0, capacity, 1).astype(np.float64)
    return np.asarray(items, dtype=np.float64) / scale


def weights(sizes: FloatArray, kind: Weight) -> FloatArray:
    """Per-dimension weights from the normalised sizes of the items still to pack.

    ``average``: the mean demand of the dimension; ``reciprocal``: its inverse (0 for
    a dimension nobody asks for); ``unit``: all ones.
    """
    dims = sizes.shape[1]
    if kind == "unit" or sizes.shape[0] == 0:
        return np.ones(dims)
    mean: FloatArray = sizes.mean(axis=0)
    if kind == "average":
        return mean
    if kind == "reciprocal":
        reciprocal: FloatArray = np.divide(1.0, mean, out=np.zeros(dims), where=mean > 0)
        return reciprocal
    raise ValueError(f"unknown weight {kind!r}; expected one of {WEIGHTS}")


def _product(weighted: FloatArray) -> FloatArray:
    # The geometric mean orders like the product but does not underflow at d = 10.
    geometric_mean: FloatArray = np.exp(np.log(np.maximum(weighted, 1e-12)).mean(axis=1))
    return geometric_mean


_MEASURE_FUNCTIONS: dict[str, Callable[[FloatArray], FloatArray]] = {
    "sum": lambda weighted: weighted.sum(axis=1),
    "max": lambda weighted: weighted.max(axis=1, initial=0.0),
    "product": _product,
    "l2": lambda weighted: np.sqrt(np.square(weighted).sum(axis=1)),
}


def measure(sizes: FloatArray, kind: Measure, weight: Weight = "unit") -> FloatArray:
    """One scalar size per item (row of ``sizes``): larger means harder to place."""
    try:
        function = _MEASURE_FUNCTIONS[kind]
    except KeyError:
        raise ValueError(f"unknown measure {kind!r}; expected one of {MEASURES}") from None
    return function(sizes * weights(sizes, weight))
