"""Block fingerprints of model files and block-level similarity between model versions.

Retrained model versions share much of their file content. This package cuts a file into
fixed-size blocks or content-defined chunks, hashes each block (xxh3), and measures the
share of a new version already present in an old one, or the bytes a server holding
some versions must still download.

    >>> from fastplace.blocks import fingerprint, similarity
    >>> old = fingerprint("model-v1.pt", block_size=64 * 1024)        # doctest: +SKIP
    >>> new = fingerprint("model-v2.pt", block_size=64 * 1024)        # doctest: +SKIP
    >>> similarity(old, new).similar_bytes                            # doctest: +SKIP
    0.31

Fingerprinting needs the ``fastplace[blocks]`` extra (xxhash for the hashes, numba for
content-defined chunking) and raises :class:`fastplace.MissingExtra` naming it when
absent; importing this package, saving, loading and comparing fingerprints need neither.
numba is imported on first use of the chunking kernel, which compiles (or loads from its
on-disk cache) then.
"""

from __future__ import annotations

from fastplace.blocks.cdc import CDCParams, warm_up
from fastplace.blocks.fingerprints import (
    CDC_ALGORITHM,
    DEFAULT_BLOCK_SIZE,
    Chunking,
    CorruptFingerprints,
    Fingerprints,
    fingerprint,
)
from fastplace.blocks.similarity import Similarity, download_bytes, similarity
from fastplace.blocks.sizes import format_size, parse_size, parse_sizes
from fastplace.blocks.sources import EmptySourceError, Source

__all__ = [
    "CDC_ALGORITHM",
    "DEFAULT_BLOCK_SIZE",
    "CDCParams",
    "Chunking",
    "CorruptFingerprints",
    "EmptySourceError",
    "Fingerprints",
    "Similarity",
    "Source",
    "download_bytes",
    "fingerprint",
    "format_size",
    "parse_size",
    "parse_sizes",
    "similarity",
    "warm_up",
]
