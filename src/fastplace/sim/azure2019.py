"""The Azure Functions 2019 trace as a DI workload.

Each function of the trace stands for one DI model: its app's allocated memory gives
the partitions' memory, its execution-time percentiles give the service time (sampled
by inverse CDF per request), and its per-minute invocation counts give the arrivals
(spread uniformly within each minute). The number of partitions (1-4) is derived from
the function's hash, so it is the same on every run.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from fastplace._checks import integer
from fastplace.sim.workload import DIModel, Partition, Workload

__all__ = [
    "MAX_INVOCATIONS_PER_MINUTE",
    "MAX_MEMORY_MB",
    "TraceFormatError",
    "azure2019_workload",
    "read_trace",
    "trace_files",
    "trace_requests",
    "trace_workload",
]

_RUN_PERCENTILES = (0, 1, 25, 50, 75, 99, 100)
_RUN_COLUMNS = tuple(f"percentile_Average_{p}" for p in _RUN_PERCENTILES)
_MEMORY_COLUMN = "AverageAllocatedMb_pct99"
#: Longest service time taken from the trace; a few functions run for many minutes.
MAX_SERVICE_S = 300.0


class TraceFormatError(ValueError):
    """A trace file is malformed; the message names the file and line."""


#: The largest invocation count of one function in one minute that a trace may hold:
#: each invocation becomes a request (~400 B in the simulator), so 10**9 in a minute
#: is ~400 GB, and sums of such counts stay far inside int64.
MAX_INVOCATIONS_PER_MINUTE = 10**9
#: The largest memory (MB) a function may ask for: 128 GiB, twice the simulator's
#: default server and far above any function platform's offer. A partition's model
#: file is half its memory, cut into blocks the simulator keeps per version.
MAX_MEMORY_MB = 1 << 17


@dataclass(frozen=True)
class TraceFunction:
    name: str
    memory_mb: int
    run_ms_percentiles: npt.NDArray[np.float64]  # at _RUN_PERCENTILES
    per_minute: npt.NDArray[np.int64]


class _Row:
    """One CSV record: its values by column name, and where it is (for errors)."""

    def __init__(self, path: Path, line: int, header: list[str], values: dict[str, str]):
        self.path = path
        self.line = line
        self.header = header
        self.values = values

    def __getitem__(self, column: str) -> str:
        return self.values[column]

    def where(self, column: str) -> str:
        """``path:line: column N (name)``: N counts CSV columns from 1."""
        number = len(self.header) - self.header[::-1].index(column)  # the one DictReader keeps
        return f"{self.path}:{self.line}: column {number} ({column})"


def _open_regular(path: Path, max_bytes: int | None) -> int:
    """A descriptor of ``path`` open for reading, or TraceFormatError if it is not a
    regular file of at most ``max_bytes``. O_NONBLOCK: a FIFO is refused at once rather
    than waited on for a writer."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise TraceFormatError(f"{path}: cannot read: {error.strerror or error}") from None
    status = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(status.st_mode):
        problem = "is a directory" if stat.S_ISDIR(status.st_mode) else "is not a regular file"
    elif max_bytes is not None and status.st_size > max_bytes:
        problem = f"is {status.st_size:,} bytes, more than the limit of {max_bytes:,}"
    if problem is not None:
        os.close(fd)
        raise TraceFormatError(f"{path}: {problem}")
    os.set_blocking(fd, True)
    return fd


def _text_lines(path: Path, file: BinaryIO) -> Iterator[str]:
    """The file's lines as text; TraceFormatError naming the line and column of the first
    byte that is not UTF-8 (a binary file where a CSV belongs)."""
    for number, raw in enumerate(file, start=1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise TraceFormatError(
                f"{path}:{number}:{error.start + 1}: not UTF-8 text (byte "
                f"0x{raw[error.start]:02x}); is this a binary file?"
            ) from None


def _rows(path: Path, required: tuple[str, ...], max_bytes: int | None = None) -> Iterator[_Row]:
    """The file's records, read as they are used (memory stays one record, not the file)."""
    with open(_open_regular(path, max_bytes), "rb") as file:
        reader = csv.DictReader(_text_lines(path, file))
        try:
            header = list(reader.fieldnames or [])
            missing = [c for c in required if c not in header]
            if missing:
                raise TraceFormatError(f"{path}:1: missing column(s) {', '.join(missing)}")
            for values in reader:
                if None in values:  # DictReader's key for values past the header's columns
                    raise TraceFormatError(
                        f"{path}:{reader.line_num}: {len(header) + len(values[None])} values, "
                        f"but the header has {len(header)} columns"
                    )
                yield _Row(path, reader.line_num, header, values)
        except csv.Error as error:  # a NUL byte, an overlong field, ...
            raise TraceFormatError(f"{path}:{reader.line_num}: {error}") from None
        except OSError as error:
            raise TraceFormatError(f"{path}: cannot read: {error.strerror or error}") from None


def _number(row: _Row, column: str, high: float = math.inf) -> float:
    text = row.values.get(column)
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TraceFormatError(f"{row.where(column)} = {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise TraceFormatError(f"{row.where(column)} = {text!r} must be a finite number >= 0")
    if value > high:
        raise TraceFormatError(f"{row.where(column)} = {text!r} must be <= {high:,g}")
    return value


def _count(row: _Row, column: str) -> int:
    """An invocation count: a whole number from 0 to MAX_INVOCATIONS_PER_MINUTE."""
    value = _number(row, column)
    if not value.is_integer():
        raise TraceFormatError(f"{row.where(column)} = {row.values[column]!r} is not a whole count")
    if value > MAX_INVOCATIONS_PER_MINUTE:
        raise TraceFormatError(
            f"{row.where(column)} = {row.values[column]!r} is too large to simulate "
            f"(at most {MAX_INVOCATIONS_PER_MINUTE:,} invocations a minute)"
        )
    return int(value)


def trace_files(source: str | Path | None = None) -> tuple[Path, Path, Path]:
    """The (invocations, memory, durations) CSV files ``source`` names: a directory
    holding one of each, a PREFIX of PREFIX_inv.csv ..., or None for the shipped
    excerpt; TraceFormatError if they are not there."""
    if source is None:
        base = resources.files("fastplace.sim.data") / "azure2019"
        return (
            Path(str(base / "inv.csv")),
            Path(str(base / "mem.csv")),
            Path(str(base / "run.csv")),
        )
    path = Path(source)
    if path.is_dir():
        found = []
        for kind in ("inv", "mem", "run"):
            matches = sorted(path.glob(f"*{kind}.csv"))
            if len(matches) != 1:
                raise TraceFormatError(
                    f"{path}: expected exactly one *{kind}.csv, found {len(matches)}"
                    + (" (pass a prefix such as DIR/100 to choose)" if matches else "")
                )
            found.append(matches[0])
        return found[0], found[1], found[2]
    files = tuple(Path(f"{path}_{kind}.csv") for kind in ("inv", "mem", "run"))
    for file in files:
        if not file.exists():
            raise TraceFormatError(f"{file}: no such trace file")
    return files  # type: ignore[return-value]


def read_trace(
    source: str | Path | None = None, *, max_file_bytes: int | None = None
) -> list[TraceFunction]:
    """Functions of an Azure-2019-format trace (the shipped excerpt when ``source`` is None).

    Each file must be a regular file of at most ``max_file_bytes`` (None: any size).
    Raises TraceFormatError naming the file, line and column of the first bad value.
    """
    inv_path, mem_path, run_path = trace_files(source)
    memory: dict[str, float] = {}
    for row in _rows(mem_path, ("HashApp", _MEMORY_COLUMN), max_file_bytes):
        memory[row["HashApp"]] = _number(row, _MEMORY_COLUMN, MAX_MEMORY_MB)
    runs: dict[str, npt.NDArray[np.float64]] = {}
    for row in _rows(run_path, ("HashFunction", *_RUN_COLUMNS), max_file_bytes):
        values = np.array([_number(row, c) for c in _RUN_COLUMNS])
        runs[row["HashFunction"]] = np.maximum.accumulate(values)
    functions = []
    for row in _rows(inv_path, ("HashFunction", "HashApp", "minute_1"), max_file_bytes):
        minutes = [k for k in row.values if k.startswith("minute_")]
        counts = np.array([_count(row, k) for k in minutes], dtype=np.int64)
        name = row["HashFunction"]
        if row["HashApp"] not in memory:
            raise TraceFormatError(
                f"{inv_path}:{row.line}: app {row['HashApp'][:12]}… has no memory row"
            )
        if name not in runs:
            raise TraceFormatError(
                f"{inv_path}:{row.line}: function {name[:12]}… has no duration row"
            )
        functions.append(
            TraceFunction(
                name=name,
                memory_mb=max(128, int(np.ceil(memory[row["HashApp"]] / 64.0)) * 64),
                run_ms_percentiles=runs[name],
                per_minute=counts,
            )
        )
    if not functions:
        raise TraceFormatError(f"{inv_path}: no functions")
    return functions


def trace_requests(functions: Sequence[TraceFunction], duration_s: float) -> int:
    """How many requests :func:`trace_workload` makes of the first ``duration_s``
    seconds at most (the invocations of every minute that starts before then)."""
    n_minutes = math.ceil(duration_s / 60.0)
    return sum(int(f.per_minute[:n_minutes].sum()) for f in functions)


def azure2019_workload(
    source: str | Path | None = None,
    *,
    duration_s: float = 600.0,
    rollout_interval_s: float = 300.0,
    changed_fraction: float = 0.2,
    seed: int = 0,
) -> Workload:
    """A workload replaying the trace's first ``duration_s`` seconds."""
    seed = integer(seed, "seed", minimum=0)  # before the trace is read
    return trace_workload(
        read_trace(source),
        name="azure2019" if source is None else str(source),
        duration_s=duration_s,
        rollout_interval_s=rollout_interval_s,
        changed_fraction=changed_fraction,
        seed=seed,
    )


def trace_workload(
    functions: Sequence[TraceFunction],
    *,
    name: str,
    duration_s: float = 600.0,
    rollout_interval_s: float = 300.0,
    changed_fraction: float = 0.2,
    seed: int = 0,
) -> Workload:
    """The workload of functions read by :func:`read_trace`: each one a DI model whose
    requests arrive as its first ``duration_s`` seconds of invocations did."""
    seed = integer(seed, "seed", minimum=0)
    rng = np.random.default_rng(seed)
    models = []
    times: list[npt.NDArray[np.float64]] = []
    owners: list[npt.NDArray[np.int32]] = []
    services: list[npt.NDArray[np.float64]] = []
    n_minutes = int(np.ceil(duration_s / 60.0))
    for m, function in enumerate(functions):
        digest = hashlib.sha256(function.name.encode()).digest()
        n_parts = 1 + digest[0] % 4
        models.append(
            DIModel(
                name=function.name[:12],
                partitions=tuple(Partition.of_memory(function.memory_mb) for _ in range(n_parts)),
                rollout_interval_s=rollout_interval_s,
                rollout_offset_s=(digest[1] / 255.0 * 0.8 + 0.2) * rollout_interval_s,
                changed_fraction=changed_fraction,
            )
        )
        counts = function.per_minute[:n_minutes]
        minute_of = np.repeat(np.arange(counts.shape[0]), counts)
        arrivals = (minute_of + rng.random(minute_of.shape[0])) * 60.0
        arrivals = arrivals[arrivals < duration_s]
        quantiles = rng.uniform(0.0, 100.0, size=arrivals.shape[0])
        service_ms = np.interp(quantiles, _RUN_PERCENTILES, function.run_ms_percentiles)
        times.append(arrivals)
        owners.append(np.full(arrivals.shape[0], m, dtype=np.int32))
        services.append(np.asarray(np.clip(service_ms / 1000.0, 0.001, MAX_SERVICE_S)))
    all_times = np.concatenate(times)
    order = np.argsort(all_times, kind="stable")
    return Workload(
        name=name,
        models=tuple(models),
        arrival_s=all_times[order],
        arrival_model=np.concatenate(owners)[order],
        service_s=np.concatenate(services)[order],
    )
