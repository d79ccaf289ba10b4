"""The digest that ties a TorchScript model to its plain-array (native) twin.

``save_model`` writes the same network twice: as TorchScript (``model.pt``, for torch
and for custom models) and as plain arrays (``model.npz``, for the native C++ scorer,
which needs no torch). Both carry the same metadata record, and that record holds
``weights_sha256``: the SHA-256 of the network's weights in one canonical form (below).
A loader recomputes the digest from what it actually read and refuses a file whose
weights do not match it, and the shipped model's two files are accepted as a pair only
when they record the same digest, so the allocator decides identically with and
without torch.

Canonical form (numpy only, so it is computable without torch): a fixed header, then for
each array in name order (``bias_0``, ``bias_1``, ..., ``mean``, ``std``, ``weight_0``,
...), the line ``name shape\\n`` (shape as comma-separated integers) followed by the
array's bytes as little-endian float32 in C order. These are exactly the values the
scorers compute with (the native scorer converts to float32), so equal digests mean
equal scores.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

__all__ = ["DIGEST_KEY", "weights_digest"]

#: The metadata key under which the digest is recorded (in the .pt and in the .npz).
DIGEST_KEY = "weights_sha256"

# Versioned, so that a future change of the canonical form cannot collide with this one.
_HEADER = b"fastplace-scorer-weights/1\n"


def weights_digest(arrays: Mapping[str, npt.ArrayLike]) -> str:
    """SHA-256 (hex) of a network's plain arrays (``mean``, ``std``, ``weight_i``,
    ``bias_i``) in the canonical form described in the module doc."""
    digest = hashlib.sha256(_HEADER)
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name], dtype="<f4")
        shape = ",".join(str(n) for n in array.shape)
        digest.update(f"{name} {shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
