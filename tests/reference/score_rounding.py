"""How far two float32 evaluations of the same scorer network may differ.

The native scorer and the decision path compute the same network in float32 but sum in
different orders (SIMD lanes, the cluster-wide columns folded into layer 0's bias once
per decision). Each order rounds differently, and the difference grows with the
magnitudes the sums pass through, not with the score: a feature whose training
standard deviation was small becomes a large standardised input, and a pre-activation
of ~80 rounds at ~1e-5 while the score is ~1. So the bound is the usual forward error
bound of a matrix chain (Higham, "Accuracy and Stability of Numerical Algorithms",
3.5): a multiple of float32's epsilon times the chain of absolute values
|W_L| ... |W_1| |x| (+ |b|), row by row.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

EPS32 = float(np.finfo(np.float32).eps)
#: Higham's bound carries the sum length n (17-32 here); roundings of both signs
#: cancel, so one epsilon of the chain holds in practice (the shipped model's worst
#: decision over 3,600 checked: 5% of it) and still catches a wrong weight or column,
#: which moves a score by a whole term.
ROUNDINGS = 1.0


def score_tolerance(
    features: npt.NDArray[np.float32], arrays: Mapping[str, npt.NDArray[np.floating]]
) -> npt.NDArray[np.float64]:
    """Per row of ``features``: the largest difference two float32 evaluations of the
    network in ``arrays`` (the .npz layout: mean, std, weight_i, bias_i) may show."""
    std = np.where(arrays["std"] < 1e-3, 1.0, arrays["std"]).astype(np.float64)
    magnitude = np.abs((features.astype(np.float64) - arrays["mean"]) / std)
    layers = sum(1 for name in arrays if name.startswith("weight_"))
    for i in range(layers):
        weight = np.abs(np.asarray(arrays[f"weight_{i}"], dtype=np.float64))
        magnitude = magnitude @ weight.T + np.abs(np.asarray(arrays[f"bias_{i}"]))
    return ROUNDINGS * EPS32 * np.maximum(magnitude[:, 0], 1.0)
