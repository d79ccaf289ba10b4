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
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt

from fastplace._checks import integer
from fastplace.sim.workload import DIModel, Partition, Workload

__all__ = ["TraceFormatError", "azure2019_workload", "read_trace"]

_RUN_PERCENTILES = (0, 1, 25, 50, 75, 99, 100)
_RUN_COLUMNS = tuple(f"percentile_Average_{p}" for p in _RUN_PERCENTILES)
_MEMORY_COLUMN = "AverageAllocatedMb_pct99"
#: Longest service time taken from the trace; a few functions run for many minutes.
MAX_SERVICE_S = 300.0


class TraceFormatError(ValueError):
    """A trace file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class TraceFunction:
    name: str
    memory_mb: int
    run_ms_percentiles: npt.NDArray[np.float64]  # at _RUN_PERCENTILES
    per_minute: npt.NDArray[np.int64]


def _rows(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    try:
        with open(path, newline="") as file:
            reader = csv.DictReader(file)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise TraceFormatError(f"{path}:1: missing column(s) {', '.join(missing)}")
            return [(reader.line_num, row) for row in reader]
    except OSError as error:
        raise TraceFormatError(f"{path}: cannot read: {error.strerror or error}") from None


def _number(path: Path, line: int, row: dict[str, str], column: str) -> float:
    text = row.get(column)
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TraceFormatError(f"{path}:{line}: {column} = {text!r} is not a number") from None
    if not np.isfinite(value) or value < 0:
        raise TraceFormatError(f"{path}:{line}: {column} = {text!r} must be a finite number >= 0")
    return value


def _files(source: str | Path | None) -> tuple[Path, Path, Path]:
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
        if not file.is_file():
            raise TraceFormatError(f"{file}: no such trace file")
    return files  # type: ignore[return-value]


def read_trace(source: str | Path | None = None) -> list[TraceFunction]:
    """Functions of an Azure-2019-format trace (the shipped excerpt when ``source`` is None)."""
    inv_path, mem_path, run_path = _files(source)
    memory: dict[str, float] = {}
    for line, row in _rows(mem_path, ("HashApp", _MEMORY_COLUMN)):
        memory[row["HashApp"]] = _number(mem_path, line, row, _MEMORY_COLUMN)
    runs: dict[str, npt.NDArray[np.float64]] = {}
    for line, row in _rows(run_path, ("HashFunction", *_RUN_COLUMNS)):
        values = np.array([_number(run_path, line, row, c) for c in _RUN_COLUMNS])
        runs[row["HashFunction"]] = np.maximum.accumulate(values)
    functions = []
    for line, row in _rows(inv_path, ("HashFunction", "HashApp", "minute_1")):
        minutes = [k for k in row if k.startswith("minute_")]
        counts = np.array([_number(inv_path, line, row, k) for k in minutes], dtype=np.int64)
        name = row["HashFunction"]
        if row["HashApp"] not in memory:
            raise TraceFormatError(
                f"{inv_path}:{line}: app {row['HashApp'][:12]}… has no memory row"
            )
        if name not in runs:
            raise TraceFormatError(f"{inv_path}:{line}: function {name[:12]}… has no duration row")
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


def azure2019_workload(
    source: str | Path | None = None,
    *,
    duration_s: float = 600.0,
    rollout_interval_s: float = 300.0,
    changed_fraction: float = 0.2,
    seed: int = 0,
) -> Workload:
    """A workload replaying the trace's first ``duration_s`` seconds."""
    seed = integer(seed, "seed", minimum=0)
    functions = read_trace(source)
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
        name="azure2019" if source is None else str(source),
        models=tuple(models),
        arrival_s=all_times[order],
        arrival_model=np.concatenate(owners)[order],
        service_s=np.concatenate(services)[order],
    )
