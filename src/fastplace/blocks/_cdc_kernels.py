"""Numba kernels for content-defined chunking. Imported lazily by ``fastplace.blocks.cdc``.

The boundary rule is FastCDC 2020 (Xia et al.) with normalised chunking, exactly as
``tests/reference/cdc_reference.py`` spells it in plain Python:

* a chunk never ends before ``min_size`` bytes: hashing starts there, from hash 0;
* the Gear hash is ``h = (h << 1) + gear[byte]`` (mod 2**64), so it covers the last 64
  bytes;
* up to ``avg_size`` the stricter ``mask_s`` must match (all its bits zero in ``h``),
  after it the looser ``mask_l``: chunk sizes bunch around the average;
* the byte whose hash matched starts the next chunk; a chunk ends at ``max_size``
  at the latest, or at the end of the data.

:func:`cut_points` applies the rule chunk after chunk. :func:`cut_span` gives the same
cuts faster on large spans: it splits the span into three segments and chunks them at
once, one hash chain per segment (a single chain is bound by the latency of its
shift-and-add; three independent ones keep the core busy), then stitches the segments
together exactly (see there). On x86-64 its inner loop is inline assembly
(:func:`_lanes_assembly`), elsewhere (and with ``FASTPLACE_CDC_GENERIC=1``, see
:data:`GENERIC`) the same loop in numba.

With ``words`` > 0 the kernels also hash every chunk right after cutting it, calling
python-xxhash's own C function for xxh3 (its address found by ``cdc.xxh3_function``):
the chunk is then still in the cache, and there is no Python call per chunk.

All arithmetic is on uint64: numba turns mixed int64/uint64 arithmetic into float64.
"""

from __future__ import annotations

import os
from typing import Any

import llvmlite.binding as llvm  # type: ignore[import-untyped]
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic
from numpy.typing import NDArray

_Bytes = NDArray[np.uint8]
_Table = NDArray[np.uint64]

_ZERO = np.uint64(0)
_ONE = np.uint64(1)
_TWO = np.uint64(2)
_FOUR = np.uint64(4)

GENERIC = os.environ.get("FASTPLACE_CDC_GENERIC", "").startswith("1")
"""``FASTPLACE_CDC_GENERIC=1`` keeps the portable code (no inline assembly) even on
x86-64: it is what other CPUs run, and this is the only way to test it on the x86
machines CI runs on. The kernels are then compiled in each process and not cached:
numba keys its on-disk cache by source and CPU, not by this choice, so it would hand
back kernels compiled with the assembly."""
_CACHE = not GENERIC
"""``cache`` of every ``njit`` here."""

_ASSEMBLY = False
"""Whether the x86-64 inline assembly is used (it needs LLVM's assembly parser)."""
if not GENERIC and llvm.get_process_triple().startswith("x86_64"):
    _init_parser = getattr(llvm, "initialize_native_asmparser", None)
    if _init_parser is not None:
        _init_parser()
        _ASSEMBLY = True
PORTABLE = not _ASSEMBLY
"""The ``portable`` argument of :func:`cut_and_hash_span` for this machine."""
_NO_HASHES = np.empty((0, 2), dtype=np.uint64)
"""The ``hashes`` argument when not hashing (``words`` 0)."""


def _address_typer(typingctx: Any, array: Any) -> Any:
    """The address of an array's first element, as an integer."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        return builder.ptrtoint(data, ir.IntType(64))

    return types.uint64(array), codegen


_address: Any = intrinsic(_address_typer)


def _shift_add_typer(typingctx: Any, h: Any, x: Any) -> Any:
    """``(h << 1) + x`` (uint64). On x86-64 as one ``lea``: left to itself LLVM folds the
    table load into ``add`` and emits ``add h, h; add h, [table]``, one more ALU operation
    per byte, which is what bounds the three-chain loop (+25-30 % with ``lea``)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        i64 = ir.IntType(64)
        if _ASSEMBLY:
            asm = ir.InlineAsm(ir.FunctionType(i64, [i64, i64]), "leaq ($2,$1,2), $0", "=r,r,r")
            return builder.call(asm, [args[0], args[1]])
        return builder.add(builder.shl(args[0], ir.Constant(i64, 1)), args[1])

    return types.uint64(types.uint64, types.uint64), codegen


_shift_add: Any = intrinsic(_shift_add_typer)


def _prefetch_typer(typingctx: Any, address: Any) -> Any:
    """Ask for the cache line at ``address`` (uint64) to be brought into L2 (x86-64 only)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        if _ASSEMBLY:
            fnty = ir.FunctionType(ir.VoidType(), [ir.IntType(64)])
            builder.call(ir.InlineAsm(fnty, "prefetcht1 ($0)", "r", side_effect=True), args)
        return context.get_dummy_value()

    return types.void(types.uint64), codegen


_prefetch: Any = intrinsic(_prefetch_typer)

UNROLL = 16
"""Bytes of each lane per iteration of the assembly loop."""


def _lanes_assembly() -> str:
    """The three-chain inner loop of :func:`cut_and_hash_span` in x86-64 assembly.

    Operands: $0 t (out), $1 hit code (out), $2-$4 the hashes (in and out, tied to $5-$7),
    $8-$10 each lane's address ``steps`` bytes past its next byte, $11-$13 the masks, $14
    the Gear table, $15 steps (a multiple of UNROLL). Counts t from -steps up to 0, UNROLL
    bytes of each lane at a time (the loop costs two instructions per 3 * UNROLL bytes); on
    a hit, returns t (of its block) and code 3 * byte + lane, else t = 0 and code 255.

    Written out because LLVM's own code for the same loop (see the portable version in
    cut_and_hash_span) swings by 30 % with the surrounding code: same instructions, but
    where the loop's thirteen branches fall relative to 64-byte lines (which the branch
    predictor works in) depends on everything before it. Here the loop starts on a line.
    """
    lines = ["movq $15, $0", "negq $0", "jz 20f", ".p2align 6", "10:"]
    for byte in range(UNROLL):
        for lane in range(3):
            lines += [
                f"movzbl {byte}(${8 + lane},$0), ${{1:k}}",
                "movq ($14,$1,8), $1",
                f"leaq ($1,${2 + lane},2), ${2 + lane}",
                f"testq ${11 + lane}, ${2 + lane}",
                f"jz {100 + 3 * byte + lane}f",
            ]
    lines += [f"addq $${UNROLL}, $0", "jnz 10b"]
    lines += ["20:", "movl $$255, ${1:k}", "jmp 29f"]
    for code in range(3 * UNROLL):
        lines += [f"{100 + code}:", f"movl $${code}, ${{1:k}}", "jmp 29f"]
    lines += ["29:"]
    return "\n\t".join(lines)


def _scan_lanes_typer(
    typingctx: Any,
    a0: Any, a1: Any, a2: Any, h0: Any, h1: Any, h2: Any, m0: Any, m1: Any, m2: Any,
    gear: Any, steps: Any,
) -> Any:  # fmt: skip
    """(t, code, h0, h1, h2) after :func:`_lanes_assembly`; all arguments uint64."""
    result = types.UniTuple(types.uint64, 5)  # type: ignore[no-untyped-call]

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        i64 = ir.IntType(64)
        if not _ASSEMBLY:  # never called there (portable=True); no hit, nothing rolled
            nothing = [ir.Constant(i64, 0), ir.Constant(i64, 255), args[3], args[4], args[5]]
            return context.make_tuple(builder, result, nothing)
        outputs = ir.LiteralStructType([i64] * 5)
        fnty = ir.FunctionType(outputs, [i64] * 11)
        constraints = "=&r,=&r,=r,=r,=r,2,3,4,r,r,r,r,r,r,r,r,~{dirflag},~{fpsr},~{flags}"
        asm = ir.InlineAsm(fnty, _lanes_assembly(), constraints)
        values = builder.call(asm, [args[3], args[4], args[5], args[0], args[1], args[2],
                                    *args[6:]])  # fmt: skip
        items = [builder.extract_value(values, k) for k in range(5)]
        return context.make_tuple(builder, result, items)

    return result(*([types.uint64] * 11)), codegen


_scan_lanes: Any = intrinsic(_scan_lanes_typer)


def _call_signature(words: int) -> tuple[Any, Any]:
    byte_ptr = ir.IntType(8).as_pointer()
    result = ir.IntType(64) if words == 1 else ir.LiteralStructType([ir.IntType(64)] * 2)
    return ir.FunctionType(result, [byte_ptr, ir.IntType(64)]), byte_ptr


def _xxh3_64_typer(typingctx: Any, function: Any, address: Any, length: Any) -> Any:
    """Call the C function ``uint64 f(const void *, size_t)`` at ``function`` (XXH3_64bits)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        fnty, byte_ptr = _call_signature(1)
        callee = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(callee, [builder.inttoptr(args[1], byte_ptr), args[2]])

    return types.uint64(types.uint64, types.uint64, types.uint64), codegen


_xxh3_64: Any = intrinsic(_xxh3_64_typer)


def _xxh3_128_typer(typingctx: Any, function: Any, address: Any, length: Any) -> Any:
    """Call ``{uint64 low, high} f(const void *, size_t)`` at ``function`` (XXH3_128bits);
    returns (high, low)."""
    result = types.UniTuple(types.uint64, 2)  # type: ignore[no-untyped-call]

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        fnty, byte_ptr = _call_signature(2)
        callee = builder.inttoptr(args[0], fnty.as_pointer())
        value = builder.call(callee, [builder.inttoptr(args[1], byte_ptr), args[2]])
        low = builder.extract_value(value, 0)
        high = builder.extract_value(value, 1)
        return context.make_tuple(builder, result, (high, low))

    return result(types.uint64, types.uint64, types.uint64), codegen


_xxh3_128: Any = intrinsic(_xxh3_128_typer)


@njit(cache=_CACHE, nogil=True, boundscheck=False, inline="always")
def _hash_chunk(
    data: _Bytes,
    begin: np.uint64,
    end: np.uint64,
    hashes: NDArray[np.uint64],
    index: int,
    function: np.uint64,
    words: int,
) -> None:
    """hashes[index] = xxh3 of data[begin:end] (64 bits: word 0 only; 128: high, low);
    nothing with ``words`` 0."""
    if words == 0:
        return
    address = _address(data) + begin
    if words == 1:
        hashes[index, 0] = _xxh3_64(function, address, end - begin)
    else:
        high, low = _xxh3_128(function, address, end - begin)
        hashes[index, 0] = high
        hashes[index, 1] = low


@njit(cache=_CACHE, nogil=True, boundscheck=False, inline="always")
def _scan(
    data: _Bytes,
    pos: np.uint64,
    end: np.uint64,
    mask: np.uint64,
    h: np.uint64,
    gear: _Table,
    gear_ls: _Table,
    sink: np.uint64,
) -> tuple[np.uint64, np.uint64, np.uint64]:
    # Rolls two bytes per step: gear_ls[b] == gear[b] << 1, so after the first update h
    # is (hash after byte pos) << 1 and is tested against mask << 1 (masks leave bit 63
    # clear, so nothing is lost); the second update gives the hash after byte pos + 1.
    # ``sink ^= x`` gives the loaded table value a second use, so LLVM keeps it in a
    # register and forms ``lea (x, h, 4)``: a one-cycle step instead of shl + add
    # from memory, which makes the dependent hash chain the bottleneck. ~1.4x faster.
    mask_ls = mask << _ONE
    while pos < end:
        x = gear_ls[data[pos]]
        h = (h << _TWO) + x
        sink ^= x
        if (h & mask_ls) == _ZERO:
            return pos, h, sink
        h = h + gear[data[pos + _ONE]]
        if (h & mask) == _ZERO:
            return pos + _ONE, h, sink
        pos += _TWO
    return end, h, sink


@njit(cache=_CACHE, nogil=True, boundscheck=False)
def _chunk_length(
    data: _Bytes,
    start: np.uint64,
    avail: np.uint64,
    min_size: np.uint64,
    avg_size: np.uint64,
    max_size: np.uint64,
    mask_s: np.uint64,
    mask_l: np.uint64,
    gear: _Table,
    gear_ls: _Table,
    sink: np.uint64,
) -> tuple[np.uint64, np.uint64]:
    remaining = avail
    if remaining <= min_size:
        return remaining, sink
    center = avg_size
    if remaining > max_size:
        remaining = max_size
    elif remaining < center:
        center = remaining
    first = start + min_size // _TWO * _TWO
    middle = start + center // _TWO * _TWO
    end = start + remaining // _TWO * _TWO
    h = _ZERO
    pos, h, sink = _scan(data, first, middle, mask_s, h, gear, gear_ls, sink)
    if pos < middle:
        return pos - start, sink
    pos, h, sink = _scan(data, middle, end, mask_l, h, gear, gear_ls, sink)
    if pos < end:
        return pos - start, sink
    return remaining, sink


def cut_points(
    data: _Bytes,
    start: int,
    stop: int,
    eof: bool,
    min_size: int,
    avg_size: int,
    max_size: int,
    mask_s: np.uint64,
    mask_l: np.uint64,
    gear: _Table,
    gear_ls: _Table,
    out: NDArray[np.int64],
) -> tuple[int, np.int64, np.uint64]:
    """Cut ``data[start:stop]`` into chunks, writing each chunk's end offset into ``out``.

    Stops when ``out`` is full, at ``stop``, or (unless ``eof``) when fewer than
    ``max_size`` bytes remain, since the next boundary may depend on bytes not yet read.
    Returns (number of cuts written, offset where the next chunk starts, a value to ignore).
    """
    result: tuple[int, np.int64, np.uint64] = cut_and_hash_points(
        data, start, stop, eof, min_size, avg_size, max_size, mask_s, mask_l, gear, gear_ls,
        out, _NO_HASHES, _ZERO, 0,
    )  # fmt: skip
    return result


@njit(cache=_CACHE, nogil=True, boundscheck=False)
def cut_and_hash_points(
    data: _Bytes,
    start: int,
    stop: int,
    eof: bool,
    min_size: int,
    avg_size: int,
    max_size: int,
    mask_s: np.uint64,
    mask_l: np.uint64,
    gear: _Table,
    gear_ls: _Table,
    out: NDArray[np.int64],
    hashes: NDArray[np.uint64],
    function: np.uint64,
    words: int,
) -> tuple[int, np.int64, np.uint64]:
    """:func:`cut_points`, and with ``words`` 1 or 2 also ``hashes[i]`` = the xxh3 hash
    of chunk i (the C function at address ``function``; see :func:`_hash_chunk`), computed
    right after the chunk is cut, while its bytes are still in the cache."""
    pos = np.uint64(start)
    limit = np.uint64(stop)
    lo = np.uint64(min_size)
    avg = np.uint64(avg_size)
    hi = np.uint64(max_size)
    sink = _ZERO
    count = 0
    while count < out.size and pos < limit:
        avail = limit - pos
        if avail < hi and not eof:
            break
        length, sink = _chunk_length(
            data, pos, avail, lo, avg, hi, mask_s, mask_l, gear, gear_ls, sink
        )
        _hash_chunk(data, pos, pos + length, hashes, count, function, words)
        pos += length
        out[count] = np.int64(pos)
        count += 1
    return count, np.int64(pos), sink


LANES = 3
"""Segments chunked at once by :func:`cut_span`: three hash chains fit in registers."""

# Columns of the per-lane state table in cut_span.
_START, _POS, _END, _MIDDLE, _LAST, _CUT, _PHASE, _HASH, _DONE = range(9)


@njit(cache=_CACHE, nogil=True, boundscheck=False)
def _lane_done(
    lane: int,
    start: np.uint64,
    limit: np.uint64,
    eof: bool,
    max_size: np.uint64,
    segment_end: np.uint64,
    cuts: NDArray[np.int64],
    ncuts: NDArray[np.int64],
) -> bool:
    """A lane stops once it has cut at or past its segment end (the last lane: never),
    or when the next chunk cannot be decided (no data left, or not enough before eof)."""
    if (
        lane < LANES - 1
        and ncuts[lane] > 0
        and np.uint64(cuts[lane, ncuts[lane] - 1]) >= segment_end
    ):
        return True
    avail = limit - start
    return bool(avail == _ZERO or (avail < max_size and not eof))


@njit(cache=_CACHE, nogil=True, boundscheck=False)
def _lane_setup(
    state: NDArray[np.uint64],
    lane: int,
    start: np.uint64,
    limit: np.uint64,
    eof: bool,
    min_size: np.uint64,
    avg_size: np.uint64,
    max_size: np.uint64,
    segment_end: np.uint64,
    cuts: NDArray[np.int64],
    ncuts: NDArray[np.int64],
    data: _Bytes,
    hashes: NDArray[np.uint64],
    function: np.uint64,
    words: int,
) -> None:
    """Begin chunks at ``start`` until one needs hashing (the usual case) or the lane is
    done; chunks that need no hashing (short tails) are cut (and fingerprinted) here."""
    while True:
        state[lane, _START] = start
        if _lane_done(lane, start, limit, eof, max_size, segment_end, cuts, ncuts):
            state[lane, _DONE] = _ONE
            return
        remaining = limit - start
        center = avg_size
        if remaining > max_size:
            remaining = max_size
        elif remaining < center:
            center = remaining
        first = start + min_size // _TWO * _TWO
        middle = start + center // _TWO * _TWO
        last = start + remaining // _TWO * _TWO
        if remaining <= min_size or first >= last:
            _hash_chunk(data, start, start + remaining, hashes[lane], ncuts[lane], function, words)
            start = start + remaining
            cuts[lane, ncuts[lane]] = np.int64(start)
            ncuts[lane] += 1
            continue
        if words:  # the chunk's first bytes are skipped, not read: fetch them for hashing
            address = _address(data) + start
            for offset in range(0, int(first - start), 64):
                _prefetch(address + np.uint64(offset))
        state[lane, _POS] = first
        state[lane, _MIDDLE] = middle
        state[lane, _LAST] = last
        state[lane, _CUT] = start + remaining
        state[lane, _HASH] = _ZERO
        state[lane, _PHASE] = _ZERO if first < middle else _ONE
        state[lane, _END] = middle if first < middle else last
        return


@njit(cache=_CACHE, nogil=True, boundscheck=False)
def _chunk_until(
    data: _Bytes,
    start: np.uint64,
    limit: np.uint64,
    eof: bool,
    min_size: np.uint64,
    avg_size: np.uint64,
    max_size: np.uint64,
    mask_s: np.uint64,
    mask_l: np.uint64,
    gear: _Table,
    gear_ls: _Table,
    out: NDArray[np.int64],
    count: int,
    meet: NDArray[np.int64],
    sink: np.uint64,
    hashes: NDArray[np.uint64],
    function: np.uint64,
    words: int,
) -> tuple[int, np.uint64, np.uint64]:
    """Chunk on from ``start``, appending cuts to ``out``, until the position is one of the
    sorted cuts ``meet`` or beyond all of them (with ``meet`` empty: to the end), or the
    next chunk cannot be decided. Returns (count, position reached, sink)."""
    k = 0
    while True:
        while k < meet.size and np.uint64(meet[k]) < start:
            k += 1
        if meet.size > 0 and (k == meet.size or np.uint64(meet[k]) == start):
            return count, start, sink
        avail = limit - start
        if avail == _ZERO or (avail < max_size and not eof):
            return count, start, sink
        length, sink = _chunk_length(
            data, start, avail, min_size, avg_size, max_size, mask_s, mask_l, gear, gear_ls, sink
        )
        _hash_chunk(data, start, start + length, hashes, count, function, words)
        start += length
        out[count] = np.int64(start)
        count += 1


def cut_span(
    data: _Bytes,
    start: int,
    stop: int,
    eof: bool,
    min_size: int,
    avg_size: int,
    max_size: int,
    mask_s: np.uint64,
    mask_l: np.uint64,
    gear: _Table,
    gear_ls: _Table,
    out: NDArray[np.int64],
    lane_min: int,
) -> tuple[int, np.int64, np.uint64]:
    """:func:`cut_and_hash_span` without the hashes."""
    result: tuple[int, np.int64, np.uint64] = cut_and_hash_span(
        data, start, stop, eof, min_size, avg_size, max_size, mask_s, mask_l, gear, gear_ls,
        out, lane_min, _NO_HASHES, _ZERO, 0, PORTABLE,
    )  # fmt: skip
    return result


@njit(cache=_CACHE, nogil=True, boundscheck=False)
def cut_and_hash_span(
    data: _Bytes,
    start: int,
    stop: int,
    eof: bool,
    min_size: int,
    avg_size: int,
    max_size: int,
    mask_s: np.uint64,
    mask_l: np.uint64,
    gear: _Table,
    gear_ls: _Table,
    out: NDArray[np.int64],
    lane_min: int,
    hashes: NDArray[np.uint64],
    function: np.uint64,
    words: int,
    portable: bool,
) -> tuple[int, np.int64, np.uint64]:
    """Every cut of ``data[start:stop]`` (as :func:`cut_points` would find them) into ``out``.

    ``out`` needs room for ``(stop - start) // min_size + 2`` cuts. Spans shorter than
    ``LANES * lane_min`` bytes are cut chunk after chunk. Longer ones are split into
    LANES segments, each chunked as if a chunk began at its start; lane 0 really does
    begin at a chunk start, so its cuts are true. From the last true cut, chunking goes
    on alone until it lands on a cut of the next segment: from there both sequences are
    the same (a cut depends only on where its chunk began), usually after a chunk or two.
    With ``words`` 1 or 2, ``hashes[i]`` gets the xxh3 hash of chunk i, as in
    :func:`cut_and_hash_points`; each lane hashes a chunk as soon as it cuts it.
    ``portable`` selects the numba inner loop instead of the assembly one (it must be
    True on other CPUs than x86-64; :data:`PORTABLE` is the right value).
    Returns (number of cuts, offset where the next chunk starts, a value to ignore).
    """
    span = stop - start
    if span < LANES * lane_min:
        return cut_and_hash_points(
            data, start, stop, eof, min_size, avg_size, max_size, mask_s, mask_l, gear, gear_ls,
            out, hashes, function, words,
        )  # fmt: skip
    lo = np.uint64(min_size)
    avg = np.uint64(avg_size)
    hi = np.uint64(max_size)
    limit = np.uint64(stop)
    base = np.uint64(start)
    segment = np.uint64(span // LANES)
    capacity = int(segment // lo) + int(hi // lo) + 4
    cuts = np.empty((LANES, capacity), dtype=np.int64)
    lane_hashes = np.empty((LANES, capacity if words else 0, 2), dtype=np.uint64)
    ncuts = np.zeros(LANES, dtype=np.int64)
    ends = np.empty(LANES, dtype=np.uint64)
    state = np.zeros((LANES, 9), dtype=np.uint64)
    for lane in range(LANES):
        ends[lane] = base + np.uint64(lane + 1) * segment
        _lane_setup(
            state, lane, base + np.uint64(lane) * segment, limit, eof, lo, avg, hi, ends[lane],
            cuts, ncuts, data, lane_hashes, function, words,
        )  # fmt: skip
    sink = _ZERO
    address = _address(data)
    gear_address = _address(gear)
    running = state[0, _DONE] == _ZERO and state[1, _DONE] == _ZERO and state[2, _DONE] == _ZERO
    while running:
        p0, p1, p2 = state[0, _POS], state[1, _POS], state[2, _POS]
        h0, h1, h2 = state[0, _HASH], state[1, _HASH], state[2, _HASH]
        m0 = mask_s if state[0, _PHASE] == _ZERO else mask_l
        m1 = mask_s if state[1, _PHASE] == _ZERO else mask_l
        m2 = mask_s if state[2, _PHASE] == _ZERO else mask_l
        steps = min(min(state[0, _END] - p0, state[1, _END] - p1), state[2, _END] - p2)
        hit = -1
        t = _ZERO
        if not portable:  # the loop below, written out (see _lanes_assembly)
            blocks = steps // np.uint64(UNROLL) * np.uint64(UNROLL)
            back, code, h0, h1, h2 = _scan_lanes(
                address + p0 + blocks, address + p1 + blocks, address + p2 + blocks,
                h0, h1, h2, m0, m1, m2, gear_address, blocks,
            )  # fmt: skip
            t = blocks + back  # back = t - blocks, modulo 2**64
            if code < np.uint64(3 * UNROLL):
                hit = int(code)
        else:
            # One byte per lane and step, three independent chains, unrolled four times (the
            # loop test is paid every four bytes). Rolling two bytes per step, as _scan does,
            # needs six masks in registers here and spills: slower.
            while t + _FOUR <= steps:
                h0 = _shift_add(h0, gear[data[p0 + t]])
                if (h0 & m0) == _ZERO:
                    hit = 0
                    break
                h1 = _shift_add(h1, gear[data[p1 + t]])
                if (h1 & m1) == _ZERO:
                    hit = 1
                    break
                h2 = _shift_add(h2, gear[data[p2 + t]])
                if (h2 & m2) == _ZERO:
                    hit = 2
                    break
                h0 = _shift_add(h0, gear[data[p0 + t + np.uint64(1)]])
                if (h0 & m0) == _ZERO:
                    hit = 3
                    break
                h1 = _shift_add(h1, gear[data[p1 + t + np.uint64(1)]])
                if (h1 & m1) == _ZERO:
                    hit = 4
                    break
                h2 = _shift_add(h2, gear[data[p2 + t + np.uint64(1)]])
                if (h2 & m2) == _ZERO:
                    hit = 5
                    break
                h0 = _shift_add(h0, gear[data[p0 + t + np.uint64(2)]])
                if (h0 & m0) == _ZERO:
                    hit = 6
                    break
                h1 = _shift_add(h1, gear[data[p1 + t + np.uint64(2)]])
                if (h1 & m1) == _ZERO:
                    hit = 7
                    break
                h2 = _shift_add(h2, gear[data[p2 + t + np.uint64(2)]])
                if (h2 & m2) == _ZERO:
                    hit = 8
                    break
                h0 = _shift_add(h0, gear[data[p0 + t + np.uint64(3)]])
                if (h0 & m0) == _ZERO:
                    hit = 9
                    break
                h1 = _shift_add(h1, gear[data[p1 + t + np.uint64(3)]])
                if (h1 & m1) == _ZERO:
                    hit = 10
                    break
                h2 = _shift_add(h2, gear[data[p2 + t + np.uint64(3)]])
                if (h2 & m2) == _ZERO:
                    hit = 11
                    break
                t += _FOUR
        if hit >= 0:  # byte t + hit // 3 of lane hit % 3
            t += np.uint64(hit // 3)
            hit %= 3
        else:
            while t < steps:
                h0 = _shift_add(h0, gear[data[p0 + t]])
                if (h0 & m0) == _ZERO:
                    hit = 0
                    break
                h1 = _shift_add(h1, gear[data[p1 + t]])
                if (h1 & m1) == _ZERO:
                    hit = 1
                    break
                h2 = _shift_add(h2, gear[data[p2 + t]])
                if (h2 & m2) == _ZERO:
                    hit = 2
                    break
                t += _ONE
        # Lanes up to the one that hit have hashed byte t, the later ones stopped before.
        state[0, _POS] = p0 + t + (_ONE if hit >= 0 else _ZERO)
        state[1, _POS] = p1 + t + (_ONE if hit >= 1 else _ZERO)
        state[2, _POS] = p2 + t + (_ONE if hit >= 2 else _ZERO)
        state[0, _HASH], state[1, _HASH], state[2, _HASH] = h0, h1, h2
        for lane in range(LANES):
            cut = _ZERO
            if lane == hit:
                cut = state[lane, _POS] - _ONE  # the byte whose hash matched starts a chunk
            elif state[lane, _POS] == state[lane, _END]:
                if state[lane, _PHASE] == _ZERO and state[lane, _END] < state[lane, _LAST]:
                    state[lane, _PHASE] = _ONE
                    state[lane, _END] = state[lane, _LAST]
                else:
                    cut = state[lane, _CUT]
            if cut != _ZERO:
                _hash_chunk(
                    data, state[lane, _START], cut, lane_hashes[lane], ncuts[lane], function, words
                )
                cuts[lane, ncuts[lane]] = np.int64(cut)
                ncuts[lane] += 1
                _lane_setup(
                    state, lane, cut, limit, eof, lo, avg, hi, ends[lane], cuts, ncuts, data,
                    lane_hashes, function, words,
                )  # fmt: skip
            if state[lane, _DONE] != _ZERO:
                running = False
    # Lanes still running when the first finished go on alone, from their chunk start.
    for lane in range(LANES):
        if state[lane, _DONE] != _ZERO:
            continue
        position = state[lane, _START]
        while not _lane_done(lane, position, limit, eof, hi, ends[lane], cuts, ncuts):
            length, sink = _chunk_length(
                data, position, limit - position, lo, avg, hi, mask_s, mask_l, gear, gear_ls,
                sink,
            )  # fmt: skip
            _hash_chunk(
                data, position, position + length, lane_hashes[lane], ncuts[lane], function, words
            )
            position += length
            cuts[lane, ncuts[lane]] = np.int64(position)
            ncuts[lane] += 1
    # Stitch: chunk on from the last true cut until landing on a cut of the next lane;
    # that lane's later cuts are then true as well.
    count = 0
    for k in range(ncuts[0]):
        out[count] = cuts[0, k]
        if words:
            hashes[count] = lane_hashes[0, k]
        count += 1
    position = np.uint64(out[count - 1]) if count > 0 else base
    for lane in range(1, LANES):
        lane_cuts = cuts[lane, : ncuts[lane]]
        count, position, sink = _chunk_until(
            data, position, limit, eof, lo, avg, hi, mask_s, mask_l, gear, gear_ls, out, count,
            lane_cuts, sink, hashes, function, words,
        )  # fmt: skip
        for k in range(lane_cuts.size):
            if np.uint64(lane_cuts[k]) == position:
                for i in range(k + 1, lane_cuts.size):
                    out[count] = lane_cuts[i]
                    if words:
                        hashes[count] = lane_hashes[lane, i]
                    count += 1
                position = np.uint64(lane_cuts[lane_cuts.size - 1])
                break
    count, position, sink = _chunk_until(
        data, position, limit, eof, lo, avg, hi, mask_s, mask_l, gear, gear_ls, out, count,
        cuts[0, :0], sink, hashes, function, words,
    )  # fmt: skip
    return count, np.int64(position), sink
