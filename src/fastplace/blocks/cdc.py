"""Content-defined chunking: FastCDC-style normalised chunking over a Gear rolling hash.

Boundaries depend on the bytes around them, not on their offsets, so inserting a few
bytes moves only the chunks near the insertion; fixed-size blocks all shift instead.
The rule itself is documented in ``_cdc_kernels`` and restated in plain Python in
``tests/reference/cdc_reference.py``, against which the kernel is tested.

numba is imported on the first call that needs the kernel, not when this module is
imported; the compiled kernel is cached on disk (``cache=True``), so only the very first
run on a machine pays the compile time. :func:`warm_up` reports that time.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import math
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from fastplace._checks import integer, integer_fields
from fastplace.extras import require

__all__ = [
    "DEFAULT_AVG_SIZE",
    "GEAR",
    "GEAR_LS",
    "CDCParams",
    "SpanCutter",
    "chunk_boundaries",
    "kernel",
    "readonly",
    "span_kernel",
    "spread_mask",
    "warm_up",
    "xxh3_function",
]

DEFAULT_AVG_SIZE: Final = 64 << 10
MIN_SIZE_FLOOR: Final = 64
"""Smallest allowed ``min_size``: the Gear hash spans 64 bytes."""
MAX_SIZE_CEILING: Final = 1 << 30


def _splitmix64(seed: int, count: int) -> list[int]:
    """``count`` well-mixed 64-bit values (Steele et al.'s SplitMix64) from ``seed``."""
    values = []
    state = seed
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        values.append(z ^ (z >> 31))
    return values


GEAR: Final[NDArray[np.uint64]] = np.array(_splitmix64(0x66617374_706C6163, 256), dtype=np.uint64)
"""The Gear table: one random 64-bit value per byte value (seeded with b"fastplac")."""
GEAR.flags.writeable = False
GEAR_LS: Final[NDArray[np.uint64]] = GEAR << np.uint64(1)
"""``GEAR << 1``, for rolling two bytes per step."""
GEAR_LS.flags.writeable = False


def spread_mask(bits: int) -> int:
    """A mask of ``bits`` one-bits spread evenly over bits 15..62 of the Gear hash.

    Bit k of the hash depends on the last k + 1 bytes, so spreading the bits (instead of
    taking the lowest) makes a boundary depend on a wide window; bit 63 stays clear so
    ``mask << 1`` loses nothing when two bytes are rolled per step.
    """
    if not 1 <= bits <= 48:
        raise ValueError(f"bits = {bits} must be in 1..48")
    mask = 0
    for k in range(bits):
        mask |= 1 << (62 - (k * 48) // bits)
    return mask


@dataclass(frozen=True)
class CDCParams:
    """Chunk-size limits for content-defined chunking, in bytes.

    ``avg_size`` sets the masks (rounded to a power of two): before it a boundary needs
    ``log2(avg) + normalization`` zero bits, after it ``log2(avg) - normalization``.
    The mean chunk comes out near ``min_size + avg_size``, as in FastCDC.
    """

    min_size: int
    avg_size: int
    max_size: int
    normalization: int = 1

    @classmethod
    def from_average(cls, avg_size: int = DEFAULT_AVG_SIZE, *, normalization: int = 1) -> CDCParams:
        """The usual limits around an average: min = avg / 4, max = avg * 4."""
        avg_size = _check_positive("avg_size", avg_size)
        return cls(max(avg_size // 4, MIN_SIZE_FLOOR), avg_size, avg_size * 4, normalization)

    def __post_init__(self) -> None:
        fields = ("min_size", "avg_size", "max_size", "normalization")
        integer_fields(self, dict.fromkeys(fields))  # bools and floats: TypeError
        _check_positive("avg_size", self.avg_size)
        if self.min_size < MIN_SIZE_FLOOR:
            raise ValueError(f"min_size = {self.min_size} must be >= {MIN_SIZE_FLOOR}")
        if not self.min_size <= self.avg_size <= self.max_size:
            raise ValueError(
                f"min_size = {self.min_size}, avg_size = {self.avg_size}, "
                f"max_size = {self.max_size} must satisfy min_size <= avg_size <= max_size"
            )
        if self.max_size > MAX_SIZE_CEILING:
            raise ValueError(f"max_size = {self.max_size} must be <= {MAX_SIZE_CEILING}")
        if not 0 <= self.normalization <= 3:
            raise ValueError(f"normalization = {self.normalization} must be in 0..3")
        if self.avg_size < 256:
            raise ValueError(f"avg_size = {self.avg_size} must be >= 256")

    @property
    def mask_bits(self) -> int:
        """log2 of ``avg_size``, rounded: the mask bits that cut about every ``avg_size`` bytes."""
        return round(math.log2(self.avg_size))

    @property
    def mask_s(self) -> int:
        """Mask used before ``avg_size``: more bits, so boundaries are rarer."""
        return spread_mask(self.mask_bits + self.normalization)

    @property
    def mask_l(self) -> int:
        """Mask used after ``avg_size``: fewer bits, so boundaries come sooner."""
        return spread_mask(self.mask_bits - self.normalization)


def _check_positive(field: str, value: int) -> int:
    number = integer(value, field)  # TypeError for bools and floats
    if number <= 0:
        raise ValueError(f"{field} = {number} must be > 0")
    return number


_XXH3_NAMES: Final = {
    64: ("XXH3_64bits_dispatch", "XXH3_64bits"),
    128: ("XXH3_128bits_dispatch", "XXH3_128bits"),
}


_libraries: list[ctypes.CDLL] = []
"""Kept open, so the function addresses handed out stay valid."""


class _Hash128(ctypes.Structure):
    _fields_ = [("low", ctypes.c_uint64), ("high", ctypes.c_uint64)]  # XXH128_hash_t


@functools.cache
def xxh3_function(hash_bits: int) -> int | None:
    """Address of python-xxhash's own C function for xxh3 with ``hash_bits`` (64 or 128),
    so the kernels can hash each chunk without going back to Python; None if the
    extension does not export it or it does not give xxhash's results (then chunks are
    hashed from Python, with the same results)."""
    xxhash = require("xxhash", "fastplace.blocks (block fingerprints)")
    if hash_bits == 128 and sys.platform == "win32":
        return None  # a 16-byte struct comes back through memory there, not in registers
    try:
        library = ctypes.CDLL(importlib.import_module("xxhash._xxhash").__file__)
    except (ImportError, OSError, TypeError):
        return None
    _libraries.append(library)
    sample = bytes(range(256)) * 9
    for name in _XXH3_NAMES.get(hash_bits, ()):
        function = getattr(library, name, None)
        if function is None:
            continue
        function.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        if hash_bits == 64:
            function.restype = ctypes.c_uint64
            works = all(
                function(sample[:n], n) == xxhash.xxh3_64_intdigest(sample[:n])
                for n in (0, 1, 17, 240, 241, len(sample))
            )
        else:
            function.restype = _Hash128
            works = all(
                (lambda v: v.high << 64 | v.low)(function(sample[:n], n))
                == xxhash.xxh3_128_intdigest(sample[:n])
                for n in (0, 1, 17, 240, 241, len(sample))
            )
        if works:
            address = ctypes.cast(function, ctypes.c_void_p).value
            return int(address) if address else None
    return None


CutPoints = Callable[..., tuple[int, Any, Any]]
CutSpan = Callable[..., tuple[int, Any, Any]]

_kernels: ModuleType | None = None
_warm_up_seconds: float | None = None


def _load() -> ModuleType:
    global _kernels
    if _kernels is None:
        require("numba", "fastplace.blocks (content-defined chunking)")
        from fastplace.blocks import _cdc_kernels

        _kernels = _cdc_kernels
    return _kernels


def kernel() -> CutPoints:
    """The ``cut_points`` kernel; imports numba (and compiles or loads) on first use."""
    cut_points: CutPoints = _load().cut_points
    return cut_points


def span_kernel() -> CutSpan:
    """The jitted ``cut_span`` kernel (three hash chains), loaded like :func:`kernel`."""
    cut_span: CutSpan = _load().cut_span
    return cut_span


Cuts = tuple[NDArray[np.int64], NDArray[np.uint64] | None, int]
"""Chunk end offsets, their xxh3 hashes (None when not hashed) and where the next chunk
starts."""


class SpanCutter:
    """Cuts spans of an in-memory buffer into chunks, on one thread or several.

    With ``threads`` > 1, a long span is split into that many parts, cut concurrently
    (the kernels release the GIL) and stitched exactly as ``cut_span`` stitches its
    lanes: from the last true cut, chunking goes on until it lands on a cut of the
    next part. The cuts are the same for any number of threads.

    With ``hash_bits`` (64 or 128), :meth:`cut_and_hash` also hashes every chunk with
    xxh3 inside the kernel, right after cutting it, when python-xxhash's C function can
    be called from there (:func:`xxh3_function`); ``hashing`` tells whether it can.
    """

    PART_MIN: Final = 4 << 20
    """Spans shorter than ``threads * PART_MIN`` bytes are cut on the calling thread."""
    LANE_MIN: Final = 1 << 20
    """Spans shorter than three times this are cut by one hash chain, longer by three."""

    def __init__(self, params: CDCParams, threads: int = 1, hash_bits: int | None = None) -> None:
        threads = _check_positive("threads", threads)
        self.params = params
        self.threads = threads
        kernels = _load()
        self._cut_span = kernels.cut_and_hash_span
        self._cut_points = kernels.cut_and_hash_points
        self._masks = (np.uint64(params.mask_s), np.uint64(params.mask_l))
        function = None if hash_bits is None else xxh3_function(hash_bits)
        self.hashing = function is not None
        """True if :meth:`cut_and_hash` returns hashes (else they are None)."""
        self._function = np.uint64(function or 0)
        self._words = 0 if function is None else 1 if hash_bits == 64 else 2
        self._portable: bool = kernels.PORTABLE
        self.executor = ThreadPoolExecutor(threads) if threads > 1 else None
        """The worker threads (None with one thread); callers may share them, e.g. to hash."""

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown()

    def __enter__(self) -> SpanCutter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _args(self, stop: int, eof: bool) -> tuple[Any, ...]:
        p = self.params
        return (stop, eof, p.min_size, p.avg_size, p.max_size, *self._masks, GEAR, GEAR_LS)

    def _hashes(self, count: int) -> NDArray[np.uint64]:
        return np.empty((count if self._words else 0, 2), dtype=np.uint64)

    def _cut_one(self, data: NDArray[np.uint8], start: int, stop: int, eof: bool) -> Cuts:
        capacity = (stop - start) // self.params.min_size + 2
        out = np.empty(capacity, dtype=np.int64)
        hashes = self._hashes(capacity)
        count, position, _ = self._cut_span(
            data, start, *self._args(stop, eof), out, self.LANE_MIN, hashes, self._function,
            self._words, self._portable,
        )  # fmt: skip
        return out[:count], hashes[:count] if self._words else None, int(position)

    def _next_cut(self, data: NDArray[np.uint8], start: int, stop: int, eof: bool) -> Cuts:
        out = np.empty(1, dtype=np.int64)
        hashes = self._hashes(1)
        count, _, _ = self._cut_points(
            data, start, *self._args(stop, eof), out, hashes, self._function, self._words
        )
        return out[:count], hashes[:count] if self._words else None, int(out[0]) if count else -1

    def cut(
        self, data: NDArray[np.uint8], start: int, stop: int, eof: bool
    ) -> tuple[NDArray[np.int64], int]:
        """Cuts of ``data[start:stop]`` (chunk end offsets) and where the next chunk starts.

        Unless ``eof``, chunking stops less than ``max_size`` bytes before ``stop``,
        where a boundary could depend on bytes not yet available.
        """
        cuts, _, position = self.cut_and_hash(data, start, stop, eof)
        return cuts, position

    def cut_and_hash(self, data: NDArray[np.uint8], start: int, stop: int, eof: bool) -> Cuts:
        """As :meth:`cut`, with the chunks' xxh3 hashes when :attr:`hashing`: an (n, 2)
        uint64 array, (high, low) words for 128 bits, the hash in word 0 for 64 bits."""
        data = readonly(data)
        if self.executor is None or stop - start < self.threads * self.PART_MIN:
            return self._cut_one(data, start, stop, eof)
        bounds = [start + (stop - start) * i // self.threads for i in range(self.threads + 1)]
        reach = 2 * self.params.max_size  # so each part cuts past the next part's start
        futures = []
        for i in range(self.threads):
            end = min(stop, bounds[i + 1] + reach)
            futures.append(
                self.executor.submit(self._cut_one, data, bounds[i], end, eof and end == stop)
            )
        parts = [future.result() for future in futures]
        pieces = [parts[0][0]]
        hash_pieces = [parts[0][1]]
        position = int(parts[0][0][-1]) if parts[0][0].size else start
        for cuts, hashes, _ in parts[1:]:
            while True:
                index = int(np.searchsorted(cuts, position))
                if index == cuts.size:
                    break  # chunking passed this part's cuts without meeting them
                if int(cuts[index]) == position:
                    pieces.append(cuts[index + 1 :])
                    hash_pieces.append(None if hashes is None else hashes[index + 1 :])
                    position = int(cuts[-1])
                    break
                step, step_hash, next_position = self._next_cut(data, position, stop, eof)
                if next_position < 0:
                    return _join(pieces, hash_pieces, position)
                pieces.append(step)
                hash_pieces.append(step_hash)
                position = next_position
        tail, tail_hashes, position = self._cut_one(data, position, stop, eof)
        pieces.append(tail)
        hash_pieces.append(tail_hashes)
        return _join(pieces, hash_pieces, position)


def _join(
    pieces: list[NDArray[np.int64]], hash_pieces: list[NDArray[np.uint64] | None], position: int
) -> Cuts:
    present = [piece for piece in hash_pieces if piece is not None]
    hashes = np.concatenate(present) if len(present) == len(hash_pieces) else None
    return np.concatenate(pieces), hashes, position


def warm_up() -> float:
    """Make the kernel ready and return the seconds that took on the first call.

    The first call in a process imports numba and compiles the kernel, or loads it from
    the on-disk cache (``__pycache__`` next to the module, or ``NUMBA_CACHE_DIR``); later
    calls return the same figure without doing anything.
    """
    global _warm_up_seconds
    if _warm_up_seconds is None:
        began = time.perf_counter()
        data = np.zeros(1024, dtype=np.uint8)
        data.flags.writeable = False
        chunk_boundaries(data, CDCParams(64, 256, 512))
        span_kernel()(
            data, 0, 0, True, 64, 256, 512, np.uint64(1), np.uint64(1), GEAR, GEAR_LS,
            np.empty(2, dtype=np.int64), 1,
        )  # fmt: skip
        with SpanCutter(CDCParams(64, 256, 512), hash_bits=64) as cutter:
            cutter.cut_and_hash(data, 0, int(data.size), True)
        _warm_up_seconds = time.perf_counter() - began
    return _warm_up_seconds


def readonly(data: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """A read-only view, so the kernel is compiled (and cached) for one array type only."""
    if not data.flags.writeable:
        return data
    view = data.view()
    view.flags.writeable = False
    return view


def chunk_boundaries(data: NDArray[np.uint8], params: CDCParams) -> NDArray[np.int64]:
    """End offsets of the content-defined chunks of an in-memory buffer (last = len(data))."""
    cut_points = kernel()
    data = readonly(data)
    size = int(data.size)
    out = np.empty(max(1, size // params.min_size + 1), dtype=np.int64)
    count, position, _ = cut_points(
        data,
        0,
        size,
        True,
        params.min_size,
        params.avg_size,
        params.max_size,
        np.uint64(params.mask_s),
        np.uint64(params.mask_l),
        GEAR,
        GEAR_LS,
        out,
    )
    if int(position) != size:
        raise AssertionError(f"kernel stopped at {int(position)} of {size} bytes")
    return out[:count].copy()
