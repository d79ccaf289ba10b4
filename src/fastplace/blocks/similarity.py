"""How much of a new model version is already present, block by block, in old ones."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fastplace.blocks.fingerprints import Fingerprints

__all__ = ["Similarity", "download_bytes", "similarity"]


@dataclass(frozen=True)
class Similarity:
    """The share of a new version's blocks, and of its bytes, found in an old version."""

    similar_blocks: float
    """Fraction (0..1) of the new version's blocks whose hash occurs in the old version."""
    similar_bytes: float
    """Fraction (0..1) of the new version's bytes that lie in such blocks."""
    shared_blocks: int
    blocks: int
    shared_bytes: int
    total_bytes: int


def _check_comparable(reference: Fingerprints, other: Fingerprints) -> None:
    if reference.chunking != other.chunking:
        raise ValueError(
            f"cannot compare blocks cut differently: {reference.chunking.describe()} "
            f"({reference.name or '<unnamed>'}) vs {other.chunking.describe()} "
            f"({other.name or '<unnamed>'})"
        )
    if reference.hash_bits != other.hash_bits:
        raise ValueError(
            f"cannot compare {reference.hash_bits}-bit with {other.hash_bits}-bit hashes"
        )


def similarity(old: Fingerprints, new: Fingerprints) -> Similarity:
    """Which part of ``new`` is already in ``old``: a block counts if its hash occurs there.

    Both must be cut the same way (same :class:`Chunking` and hash width), else ValueError.
    Each block of ``new`` counts once per occurrence, so the fractions are of ``len(new)``
    blocks and ``new.total_size`` bytes.
    """
    _check_comparable(old, new)
    present = np.isin(new.keys(), old.keys())
    shared_blocks = int(np.count_nonzero(present))
    shared_bytes = int(new.sizes[present].sum())
    return Similarity(
        similar_blocks=shared_blocks / len(new),
        similar_bytes=shared_bytes / new.total_size,
        shared_blocks=shared_blocks,
        blocks=len(new),
        shared_bytes=shared_bytes,
        total_bytes=new.total_size,
    )


def download_bytes(version: Fingerprints, held: Fingerprints | Iterable[Fingerprints] = ()) -> int:
    """Bytes a server must fetch to hold ``version``, given the versions it already holds.

    A block is fetched once even if it occurs several times in ``version``, and not at all
    if any held version has it. ``held`` is one Fingerprints or any number of them; each
    must be cut like ``version`` (ValueError otherwise). With nothing held this is the size
    of the version's distinct blocks.
    """
    holdings = [held] if isinstance(held, Fingerprints) else list(held)
    for other in holdings:
        _check_comparable(version, other)
    keys = version.keys()
    unique_keys, first = np.unique(keys, return_index=True)
    needed = np.ones(unique_keys.shape[0], dtype=bool)
    if holdings:
        held_keys: NDArray[Any] = np.concatenate([other.keys() for other in holdings])
        needed &= ~np.isin(unique_keys, held_keys)
    return int(version.sizes[first[needed]].sum())
