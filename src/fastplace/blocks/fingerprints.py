"""Block fingerprints of one model file: a hash, offset and size per block.

Two ways to cut a file into blocks: fixed-size blocks (:func:`fingerprint` with
``block_size``) and content-defined chunks (``cdc=True``, see :mod:`.cdc`). Each block is
hashed with xxh3 (64 or 128 bits). Fingerprints of two versions cut the same way can
then be compared (:mod:`.similarity`).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray

from fastplace._atomic import atomic_file
from fastplace._checks import integer, integer_fields
from fastplace.blocks import cdc as _cdc
from fastplace.blocks.sizes import format_size
from fastplace.blocks.sources import (
    DEFAULT_WINDOW,
    EmptySourceError,
    Source,
    SourceReader,
    open_source,
)
from fastplace.extras import require

__all__ = [
    "CDC_ALGORITHM",
    "DEFAULT_BLOCK_SIZE",
    "Chunking",
    "CorruptFingerprints",
    "Fingerprints",
    "fingerprint",
]

DEFAULT_BLOCK_SIZE: Final = 64 << 10
"""Fixed block size, and average chunk size for content-defined chunking, by default."""
CDC_ALGORITHM: Final = "fastcdc2020-gear64-splitmix-v1"
"""Names the boundary rule and Gear table; chunks from different algorithms never match."""
FILE_FORMAT: Final = "fastplace-fingerprints-1"
_SPAN: Final = 64 << 20
"""Bytes cut at a time (at least) when the source is already in memory."""
_SPAN_CUTS: Final = 1 << 14
"""... or this many chunks of min_size (up to 1 GiB): fewer, longer spans are cut with
fewer seams (see cut_span), and the kernel's arrays stay ~(span / min_size) entries."""

ProgressCallback = Callable[[int], None]
"""Called with the number of bytes just processed, as fingerprinting goes on."""


class CorruptFingerprints(ValueError):
    """A saved fingerprint file is unreadable or its arrays contradict each other."""


@dataclass(frozen=True)
class Chunking:
    """How a file was cut into blocks. Fingerprints are comparable only if this is equal."""

    method: Literal["fixed", "cdc"]
    block_size: int
    """Fixed: the block size. CDC: the average chunk size."""
    min_size: int = 0
    """CDC only: smallest chunk (the last chunk of a file may be smaller)."""
    max_size: int = 0
    """CDC only: largest chunk."""
    normalization: int = 0
    """CDC only: FastCDC normalisation level."""
    algorithm: str = ""
    """CDC only: the boundary rule (:data:`CDC_ALGORITHM`)."""

    def __post_init__(self) -> None:
        if self.method not in ("fixed", "cdc"):
            raise ValueError(f"method = {self.method!r} must be 'fixed' or 'cdc'")
        object.__setattr__(self, "block_size", _check_size("block_size", self.block_size))
        integer_fields(self, {"min_size": 0, "max_size": 0, "normalization": 0})
        if self.method == "cdc":
            self.cdc_params()  # validates min / avg / max

    @classmethod
    def fixed(cls, block_size: int) -> Chunking:
        """Fixed-size blocks of ``block_size`` bytes (the last one may be shorter)."""
        return cls("fixed", _check_size("block_size", block_size))

    @classmethod
    def content_defined(cls, params: _cdc.CDCParams) -> Chunking:
        """Content-defined chunks with the limits of ``params`` (:data:`CDC_ALGORITHM`)."""
        return cls(
            "cdc",
            params.avg_size,
            params.min_size,
            params.max_size,
            params.normalization,
            CDC_ALGORITHM,
        )

    def cdc_params(self) -> _cdc.CDCParams:
        """The chunker's limits, for ``method == "cdc"`` (ValueError for fixed blocks)."""
        if self.method != "cdc":
            raise ValueError(f"method = {self.method!r} has no CDC parameters")
        return _cdc.CDCParams(self.min_size, self.block_size, self.max_size, self.normalization)

    @property
    def smallest_source(self) -> int:
        """Sources smaller than this hold less than one block and are refused."""
        return self.block_size if self.method == "fixed" else self.min_size

    def describe(self) -> str:
        """``"fixed 64K"`` or ``"cdc 16K/64K/256K"``."""
        if self.method == "fixed":
            return f"fixed {format_size(self.block_size)}"
        sizes = (self.min_size, self.block_size, self.max_size)
        return "cdc " + "/".join(format_size(size) for size in sizes)


def _check_size(name: str, value: object) -> int:
    number = integer(value, name)  # TypeError for bools and floats
    if number <= 0:
        raise ValueError(f"{name} = {number} must be > 0")
    return number


@dataclass(frozen=True, eq=False)
class Fingerprints:
    """Blocks of one file: ``hashes[i]`` covers bytes ``offsets[i] : offsets[i] + sizes[i]``.

    ``hashes`` is uint64 of shape (n,) for 64-bit hashes and (n, 2) (high, low words) for
    128-bit hashes. Blocks tile the file in order: offsets start at 0, each block starts
    where the previous ended, and the sizes add up to ``total_size``.
    """

    hashes: NDArray[np.uint64]
    offsets: NDArray[np.int64]
    sizes: NDArray[np.int64]
    total_size: int
    chunking: Chunking
    hash_bits: int = 64
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        self.validate()
        for array in (self.hashes, self.offsets, self.sizes):
            array.flags.writeable = False

    def __len__(self) -> int:
        return int(self.sizes.size)

    def __repr__(self) -> str:
        return (
            f"Fingerprints({self.name or '<unnamed>'}: {len(self)} blocks, "
            f"{self.total_size} bytes, {self.chunking.describe()}, xxh3-{self.hash_bits})"
        )

    def keys(self) -> NDArray[Any]:
        """One comparable, sortable key per block: uint64, or 16-byte void for 128 bits."""
        if self.hash_bits == 64:
            return self.hashes
        return np.ascontiguousarray(self.hashes).view(np.dtype("V16")).reshape(-1)

    def validate(self) -> None:
        """Raise CorruptFingerprints naming the first broken invariant, if any."""
        problem = self._problem()
        if problem is not None:
            raise CorruptFingerprints(f"fingerprints {self.name or '<unnamed>'}: {problem}")

    def _problem(self) -> str | None:
        if self.hash_bits not in (64, 128):
            return f"hash_bits = {self.hash_bits} must be 64 or 128"
        n = self.sizes.shape[0] if self.sizes.ndim == 1 else -1
        expected_shape = (n,) if self.hash_bits == 64 else (n, 2)
        for label, array, dtype, shape in (
            ("hashes", self.hashes, np.uint64, expected_shape),
            ("offsets", self.offsets, np.int64, (n,)),
            ("sizes", self.sizes, np.int64, (n,)),
        ):
            if array.dtype != dtype or array.shape != shape:
                found = f"{array.dtype}{list(array.shape)}"
                return f"{label} is {found}, expected {np.dtype(dtype)}{list(shape)}"
        if n == 0 or self.total_size <= 0:
            return f"no blocks (total_size = {self.total_size})"
        if np.any(self.sizes <= 0):
            return "a block has size <= 0"
        ends = np.cumsum(self.sizes)
        if int(ends[-1]) != self.total_size:
            return f"sizes add up to {int(ends[-1])}, not total_size = {self.total_size}"
        if self.offsets[0] != 0 or not np.array_equal(self.offsets[1:], ends[:-1]):
            return "offsets do not tile the file (each block must start where the last ended)"
        if self.chunking.method == "fixed":
            if np.any(self.sizes[:-1] != self.chunking.block_size):
                return f"a block other than the last is not {self.chunking.block_size} bytes"
        elif np.any(self.sizes > self.chunking.max_size):
            return f"a chunk is larger than max_size = {self.chunking.max_size}"
        return None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to ``path`` as an uncompressed .npz (no pickles), exactly as given;
        atomically and durably (:mod:`fastplace._atomic`)."""
        meta = {
            "format": FILE_FORMAT,
            "total_size": self.total_size,
            "hash": f"xxh3_{self.hash_bits}",
            "hash_bits": self.hash_bits,
            "name": self.name,
            "chunking": {
                "method": self.chunking.method,
                "block_size": self.chunking.block_size,
                "min_size": self.chunking.min_size,
                "max_size": self.chunking.max_size,
                "normalization": self.chunking.normalization,
                "algorithm": self.chunking.algorithm,
            },
        }
        with atomic_file(path) as file:
            np.savez(
                file,
                meta=np.array(json.dumps(meta)),
                hashes=self.hashes,
                offsets=self.offsets,
                sizes=self.sizes,
            )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Fingerprints:
        """Read fingerprints written by :meth:`save`; CorruptFingerprints if they don't hold."""
        where = os.fspath(path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                meta = json.loads(str(archive["meta"]))
                arrays = {key: np.array(archive[key]) for key in ("hashes", "offsets", "sizes")}
        except (ValueError, KeyError, OSError, EOFError) as error:
            if isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError)):
                raise
            raise CorruptFingerprints(f"{where}: not a fingerprint file ({error})") from error
        if not isinstance(meta, dict) or meta.get("format") != FILE_FORMAT:
            raise CorruptFingerprints(f"{where}: format is not {FILE_FORMAT!r}")
        try:
            chunking = Chunking(**meta["chunking"])
            total_size = int(meta["total_size"])
            hash_bits = int(meta["hash_bits"])
        except (KeyError, TypeError, ValueError) as error:
            raise CorruptFingerprints(f"{where}: bad metadata ({error})") from error
        try:
            return cls(
                hashes=arrays["hashes"],
                offsets=arrays["offsets"],
                sizes=arrays["sizes"],
                total_size=total_size,
                chunking=chunking,
                hash_bits=hash_bits,
                name=str(meta.get("name", "")),
            )
        except CorruptFingerprints as error:
            raise CorruptFingerprints(f"{where}: {error}") from None


def _hasher(hash_bits: int) -> Callable[[Any], int]:
    if integer(hash_bits, "hash_bits") not in (64, 128):
        raise ValueError(f"hash_bits = {hash_bits} must be 64 or 128")
    xxhash = require("xxhash", "fastplace.blocks (block fingerprints)")
    hasher: Callable[[Any], int] = (
        xxhash.xxh3_64_intdigest if hash_bits == 64 else xxhash.xxh3_128_intdigest
    )
    return hasher


def fingerprint(
    source: Source,
    *,
    block_size: int | None = None,
    cdc: bool = False,
    min_size: int | None = None,
    max_size: int | None = None,
    normalization: int = 1,
    hash_bits: Literal[64, 128] = 64,
    window: int = DEFAULT_WINDOW,
    threads: int = 1,
    progress: ProgressCallback | None = None,
) -> Fingerprints:
    """Cut ``source`` into blocks and hash each one.

    ``source`` is a path (read in ``window``-byte pieces, never whole), a bytes-like
    object, a numpy array, an mmap or a binary stream. Without ``cdc`` the blocks are
    ``block_size`` bytes (64 KiB by default; the last may be shorter). With ``cdc`` the
    boundaries are content-defined: ``block_size`` is then the average chunk size and
    ``min_size`` / ``max_size`` default to a quarter and four times it.

    ``threads`` > 1 cuts and hashes long in-memory spans (and file windows) on that many
    threads; the result is the same for any number of threads.

    Raises ValueError for sizes <= 0, EmptySourceError for an empty source, ValueError if
    the source is smaller than one block (``block_size``, or ``min_size`` for CDC), and
    OSError (FileNotFoundError, PermissionError, ...) for a path that cannot be read.
    """
    size = _check_size("block_size", DEFAULT_BLOCK_SIZE if block_size is None else block_size)
    window = _check_size("window", window)
    threads = _check_size("threads", threads)
    hasher = _hasher(hash_bits)
    if cdc:
        if min_size is not None:
            min_size = _check_size("min_size", min_size)
        if max_size is not None:
            max_size = _check_size("max_size", max_size)
        base = _cdc.CDCParams.from_average(size, normalization=normalization)
        params = _cdc.CDCParams(
            base.min_size if min_size is None else min_size,
            base.avg_size,
            base.max_size if max_size is None else max_size,
            normalization,
        )
        chunking = Chunking.content_defined(params)
    else:
        if min_size is not None or max_size is not None:
            raise ValueError("min_size and max_size apply only with cdc=True")
        chunking = Chunking.fixed(size)

    with open_source(source) as reader:
        if reader.size is not None:
            _check_not_smaller_than_block(reader.name, reader.size, chunking)
        if chunking.method == "fixed":
            hash_values, ends = _fixed_blocks(reader, chunking.block_size, window, hasher, progress)
            words = _hash_words(hash_values, hash_bits)
        else:
            words, ends = _cdc_blocks(
                reader, chunking.cdc_params(), window, hash_bits, progress, threads
            )
        total = int(ends[-1]) if ends.size else 0
        _check_not_smaller_than_block(reader.name, total, chunking)
        name = reader.name

    offsets = np.empty_like(ends)
    offsets[0] = 0
    offsets[1:] = ends[:-1]
    return Fingerprints(
        hashes=words[:, 0].copy() if hash_bits == 64 else words,
        offsets=offsets,
        sizes=ends - offsets,
        total_size=total,
        chunking=chunking,
        hash_bits=hash_bits,
        name=name,
    )


def _check_not_smaller_than_block(name: str, size: int, chunking: Chunking) -> None:
    if size == 0:
        raise EmptySourceError(f"source {name} is empty (0 bytes)")
    if size < chunking.smallest_source:
        what = "block_size" if chunking.method == "fixed" else "min_size"
        raise ValueError(
            f"source {name} has {size} bytes, less than one block "
            f"({what} = {chunking.smallest_source})"
        )


def _hash_words(values: list[int], hash_bits: int) -> NDArray[np.uint64]:
    """Hashes as (n, 2) uint64 words: (high, low) for 128 bits, the hash in word 0 for 64."""
    words = np.zeros((len(values), 2), dtype=np.uint64)
    if hash_bits == 64:
        words[:, 0] = np.array(values, dtype=np.uint64).reshape(-1)
    else:
        words[:, 0] = np.array([value >> 64 for value in values], dtype=np.uint64)
        words[:, 1] = np.array([value & 0xFFFFFFFFFFFFFFFF for value in values], dtype=np.uint64)
    return words


def _fixed_blocks(
    reader: SourceReader,
    block_size: int,
    window: int,
    hasher: Callable[[Any], int],
    progress: ProgressCallback | None,
) -> tuple[list[int], NDArray[np.int64]]:
    hashes: list[int] = []
    total = 0

    def hash_blocks(data: memoryview) -> None:
        for start in range(0, len(data), block_size):
            hashes.append(hasher(data[start : start + block_size]))

    if reader.memory is not None:
        view = reader.memory.data
        step = max(block_size, window // block_size * block_size)
        for start in range(0, len(view), step):
            piece = view[start : start + step]
            hash_blocks(piece)
            if progress is not None:
                progress(len(piece))
        total = len(view)
    else:
        buffer = np.empty(max(block_size, window // block_size * block_size), dtype=np.uint8)
        view = buffer.data
        while True:
            got = reader.readinto(buffer)
            if got == 0:
                break
            hash_blocks(view[:got])
            total += got
            if progress is not None:
                progress(got)
            if got < len(buffer):
                break
    ends = np.minimum(np.arange(1, len(hashes) + 1, dtype=np.int64) * block_size, total)
    return hashes, ends


def _cdc_blocks(
    reader: SourceReader,
    params: _cdc.CDCParams,
    window: int,
    hash_bits: int,
    progress: ProgressCallback | None,
    threads: int,
) -> tuple[NDArray[np.uint64], NDArray[np.int64]]:
    """Chunk ends and hashes ((n, 2) words, see SpanCutter.cut_and_hash) of the source."""
    hashes: list[NDArray[np.uint64]] = []
    ends: list[NDArray[np.int64]] = []
    cutter = _cdc.SpanCutter(params, threads, hash_bits)
    hasher = _hasher(hash_bits)

    def hash_chunks(view: memoryview, start: int, cuts: list[int]) -> list[int]:
        values = []
        for cut in cuts:
            values.append(hasher(view[start:cut]))
            start = cut
        return values

    def python_hashes(data: NDArray[np.uint8], position: int, cuts: NDArray[np.int64]) -> None:
        """The slow way, when the kernel cannot call xxh3 itself."""
        view = data.data
        listed = cuts.tolist()
        values: list[int] = []
        if cutter.executor is not None and len(listed) > 4 * threads:
            # xxhash releases the GIL: hash contiguous runs of chunks on each thread.
            bounds = [len(listed) * i // threads for i in range(threads + 1)]
            jobs = [
                cutter.executor.submit(
                    hash_chunks, view, listed[lo - 1] if lo else position, listed[lo:hi]
                )
                for lo, hi in itertools.pairwise(bounds)
            ]
            for job in jobs:
                values.extend(job.result())
        else:
            values = hash_chunks(view, position, listed)
        hashes.append(_hash_words(values, hash_bits))

    def cut_and_hash(data: NDArray[np.uint8], stop: int, eof: bool, base: int) -> int:
        """Cut data[:stop] span by span and hash the chunks; return the offset where the
        first chunk that cannot be decided yet starts."""
        position = 0
        span = max(_SPAN, min(params.min_size * _SPAN_CUTS, 1 << 30))
        while position < stop:
            end = min(stop, position + span)
            cuts, chunk_hashes, next_position = cutter.cut_and_hash(
                data, position, end, eof and end == stop
            )
            if chunk_hashes is not None:
                hashes.append(chunk_hashes)
            else:
                python_hashes(data, position, cuts)
            if cuts.size:
                ends.append(cuts + base)
            if progress is not None and next_position > position:
                progress(next_position - position)
            if next_position == position:
                break
            position = next_position
        return position

    with cutter:
        if reader.memory is not None:
            data = _cdc.readonly(reader.memory)
            cut_and_hash(data, int(data.size), True, 0)
        else:
            buffer = np.empty(max(window, 2 * params.max_size), dtype=np.uint8)
            data = _cdc.readonly(buffer)
            carry = 0
            base = 0
            while True:
                got = reader.readinto(buffer[carry:])
                filled = carry + got
                if filled == 0:
                    break
                eof = filled < len(buffer)
                used = cut_and_hash(data, filled, eof, base)
                if eof:
                    break
                # The kernel stops less than max_size before the end, and the buffer is at
                # least 2 * max_size long, so the tail never overlaps where it is copied to.
                carry = filled - used
                buffer[:carry] = buffer[used:filled]
                base += used
    if not ends:
        return np.empty((0, 2), dtype=np.uint64), np.empty(0, dtype=np.int64)
    return np.concatenate(hashes), np.concatenate(ends)
