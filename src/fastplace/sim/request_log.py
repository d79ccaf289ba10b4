"""Request logs, one row per request, as DI workloads.

A request log is a CSV file (UTF-8) with a header and one row per request:

- ``timestamp``: when the request arrived, as seconds (any number: epoch or relative)
  or as a date-time, ISO 8601 (``2021-01-31T14:03:07.25+01:00``) or
  ``YYYY-MM-DD HH:MM:SS`` with optional fractional seconds. An offset (``Z``,
  ``+01:00``) is honoured; a date-time without one is taken as UTC. One form per log.
- ``model``: the model (or function) the request is for, any non-empty string.
- ``version`` (optional): the model's version that the request saw, any string. The
  first value of a model is its version 0; each value new for that model is a rollout
  of the model at the time of its first request, whose blocks change as the
  simulator's scheduled rollouts change them (``changed_fraction`` of them, in runs).
  Which version serves each request then follows the simulator's switch window, as
  for scheduled rollouts. Without the column, every model rolls out every
  ``rollout_interval_s`` (0: never), staggered by a seeded offset.
- ``duration`` (optional): seconds partition 0 takes to answer, >= 0. Without it,
  the simulator's default service time (``workload.service_times``): a per-model base
  uniform in 0.05-0.4 s times a log-normal(0, 0.3) factor per request.
- ``partitions``, ``memory_mb`` (optional): the model's partition count (1-64) and
  memory per partition's container (MB); every row of a model must agree. What no
  column gives is drawn per model, as ``synthetic_workload`` draws it: 2-6 partitions
  (uniform), each partition's memory uniform over ``DEFAULT_MEMORY_MB``, its model file
  half that; the draws are seeded by ``(seed, model name)``, so a model keeps its shape
  whatever else the log holds. Each partition's CPU follows its memory.

A log may name its columns otherwise: ``columns={"timestamp": "ts", "model": "fn"}``.
The Azure Functions 2021 invocation trace (header ``app,func,end_timestamp,duration``)
is recognised by its header when ``columns`` is None: the model is ``func`` and a
request arrives at ``end_timestamp - duration``.

Rows may come in any order: they are sorted by arrival (ties keep the file's order),
and the time axis starts at the first request. The workload's ``span_s``, what the
simulator runs for unless told otherwise, lasts until the last request ends (at least
1 s). A bad row raises :class:`RequestLogError` naming the file, the line and the
column. The file is read in chunks and converted with numpy, so a million rows load in
seconds.
"""

from __future__ import annotations

import csv
import hashlib
import io
import operator
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from fastplace._atomic import atomic_file
from fastplace.sim.azure2019 import TraceFormatError
from fastplace.sim.workload import (
    DEFAULT_MEMORY_MB,
    DIModel,
    Partition,
    Workload,
    service_times,
)

__all__ = [
    "AZURE2021_HEADER",
    "COLUMNS",
    "RequestLogError",
    "request_log_workload",
    "small_request_log",
    "write_request_log",
]

#: The columns a request log may have; ``columns`` maps them to a log's own names.
COLUMNS = ("timestamp", "model", "version", "duration", "partitions", "memory_mb")
_REQUIRED = ("timestamp", "model")
#: The header of the Azure Functions 2021 invocation trace, recognised as it is.
AZURE2021_HEADER = ("app", "func", "end_timestamp", "duration")
MAX_PARTITIONS = 64
MAX_MEMORY_MB = 2**31 - 1
#: The longest log accepted: a longer one almost always has timestamps in ms or us.
MAX_SPAN_S = 366 * 86_400.0
#: Rows converted at a time: big enough for numpy to pay, small enough to stream.
_CHUNK_ROWS = 1 << 16
_UTC = timezone.utc
# What datetime.fromisoformat of Python 3.10 does not take (Z, any number of fraction
# digits, +HHMM) nor 3.11's (spaces around), rewritten to what both take.
_DATETIME = re.compile(
    r"\s*(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d(?::\d\d)?)(?:[.,](\d+))?\s*"
    r"(?:([Zz])|([+-]\d\d)(?::?(\d\d))?)?\s*"
)


class RequestLogError(TraceFormatError):
    """A request log is unusable; the message names the file, and the line and column
    of a bad row."""


def small_request_log() -> Path:
    """The example log shipped in the package (``requests_small.csv``: about 3,000
    requests to 12 models over 10 minutes, with versions and durations)."""
    return Path(str(resources.files("fastplace.sim.data") / "requests_small.csv"))


def request_log_workload(
    path: str | os.PathLike[str],
    *,
    columns: Mapping[str, str] | None = None,
    rollout_interval_s: float = 300.0,
    changed_fraction: float = 0.2,
    seed: int = 0,
) -> Workload:
    """The requests of a CSV request log as a workload (see the module doc).

    ``columns`` maps any of :data:`COLUMNS` to the log's own column names (the rest keep
    their names); ``rollout_interval_s`` schedules rollouts when the log has no version
    column; ``seed`` drives what the log does not give (partitions, memory, service
    times, rollout offsets). Raises :class:`RequestLogError` (a ``ValueError``) for a
    file that is not a readable regular UTF-8 CSV file or has a bad row, and
    ``ValueError`` naming the argument for a bad argument.
    """
    seed = operator.index(seed)
    if seed < 0:
        raise ValueError(f"seed = {seed} must be >= 0")
    if not (np.isfinite(rollout_interval_s) and rollout_interval_s >= 0):
        raise ValueError(f"rollout_interval_s = {rollout_interval_s!r} must be finite and >= 0")
    if not 0.0 <= changed_fraction <= 1.0:
        raise ValueError(f"changed_fraction = {changed_fraction!r} must be in [0, 1]")
    requests = _read(Path(path), _checked_columns(columns))
    return requests.workload(
        rollout_interval_s=float(rollout_interval_s),
        changed_fraction=float(changed_fraction),
        seed=seed,
    )


def write_request_log(
    workload: Workload,
    path: str | os.PathLike[str],
    *,
    digits: int | None = None,
    shapes: bool = False,
) -> None:
    """Writes a workload's requests as a request log (atomically, like every file
    fastplace writes): ``timestamp`` (its arrival, s), ``model`` (its name), ``version``
    (``v1`` plus the rollouts of its model by then, scheduled or named) and ``duration``
    (its service time, s); with ``shapes``, also each model's ``partitions`` and
    ``memory_mb`` (which needs every partition of a model to have the same memory).

    Times are written exactly (``digits`` None) or rounded to ``digits`` decimals.
    Reading the log back gives the same requests (arrivals shifted to start at 0), and
    each rollout at the first request that saw the new version.
    """
    names = [model.name for model in workload.models]
    if len(set(names)) != len(names):
        raise ValueError("model names must be distinct to be written as a log")
    header = ["timestamp", "model", "version", "duration"]
    per_model: list[list[str]] = [[] for _ in names]
    if shapes:
        header += ["partitions", "memory_mb"]
        for model, extra in zip(workload.models, per_model, strict=True):
            memory = {partition.memory_mb for partition in model.partitions}
            if len(memory) != 1:
                raise ValueError(
                    f"model {model.name!r}: partitions of {sorted(memory)} MB cannot be "
                    "written as one memory_mb"
                )
            extra += [str(len(model.partitions)), str(memory.pop())]

    def text(values: npt.NDArray[np.float64]) -> list[str]:
        if digits is None:
            return [repr(x) for x in values.tolist()]
        return [f"{x:.{digits}f}" for x in values.tolist()]

    versions = _versions_at_arrival(workload)
    with atomic_file(path) as raw:
        file = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(
            [t, names[m], f"v{v + 1}", s, *per_model[m]]
            for t, m, v, s in zip(
                text(workload.arrival_s),
                workload.arrival_model.tolist(),
                versions.tolist(),
                text(workload.service_s),
                strict=True,
            )
        )
        file.flush()
        file.detach()  # atomic_file closes (and first syncs) the file itself


def _versions_at_arrival(workload: Workload) -> npt.NDArray[np.int64]:
    """How many rollouts each request's model has had by its arrival, as the simulator
    counts them (a rollout at the arrival's instant comes first)."""
    t = workload.arrival_s
    model = workload.arrival_model
    interval = np.array([m.rollout_interval_s for m in workload.models])[model]
    first = np.array([m.rollout_offset_s or m.rollout_interval_s for m in workload.models])
    since = t - first[model]
    scheduled = interval > 0
    versions = np.zeros(t.shape[0], dtype=np.int64)
    ok = scheduled & (since >= 0)
    versions[ok] = 1 + np.floor(since[ok] / interval[ok]).astype(np.int64)
    for m in np.unique(workload.rollout_model).tolist():
        mine = model == m
        times = workload.rollout_s[workload.rollout_model == m]
        versions[mine] += np.searchsorted(times, t[mine], side="right")
    return versions


def _checked_columns(columns: Mapping[str, str] | None) -> dict[str, str] | None:
    if columns is None:
        return None
    mapping = dict(columns)
    for role, name in mapping.items():
        if role not in COLUMNS:
            raise ValueError(f"columns: {role!r} is not one of {', '.join(COLUMNS)}")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"columns: {role} = {name!r} must be a column name")
    seen: dict[str, str] = {}
    for role, name in mapping.items():
        if name.strip() in seen:
            raise ValueError(
                f"columns: {seen[name.strip()]} and {role} both name column {name.strip()!r}"
            )
        seen[name.strip()] = role
    return mapping


# ---- reading ----------------------------------------------------------------------


def _open(path: Path) -> TextIO:
    """The file for reading, refused unless it is a regular file: a FIFO or a device
    would block the reader or never end, and a directory means nothing here."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise RequestLogError(f"{path}: cannot read: {error.strerror or error}") from None
    if stat.S_ISDIR(mode):
        raise RequestLogError(f"{path}: is a directory, not a request log")
    if not stat.S_ISREG(mode):
        raise RequestLogError(f"{path}: not a regular file (a FIFO, device or socket)")
    try:
        # O_NONBLOCK: should the path have become a FIFO since the stat, opening it
        # does not wait for a writer, and the fstat below refuses it.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise RequestLogError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise RequestLogError(f"{path}: not a regular file (a FIFO, device or socket)")
        # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column name.
        return open(descriptor, encoding="utf-8-sig", newline="")
    except BaseException:
        os.close(descriptor)
        raise


def _read(path: Path, columns: dict[str, str] | None) -> _Requests:
    with _open(path) as file:
        reader = csv.reader(file)
        try:
            try:
                header = next(reader)
            except StopIteration:
                raise RequestLogError(f"{path}: empty file (no header)") from None
            requests = _Requests(path, header, columns)
            rows: list[list[str]] = []
            lines: list[int] = []
            for row in reader:
                if not row:  # a blank line
                    continue
                rows.append(row)
                lines.append(reader.line_num)
                if len(rows) == _CHUNK_ROWS:
                    requests.add(rows, lines)
                    rows, lines = [], []
            requests.add(rows, lines)
        except UnicodeDecodeError as error:
            # Decoding runs ahead of the csv reader, so the line is not known.
            raise RequestLogError(
                f"{path}: not UTF-8 text (a binary file?): "
                f"byte {error.object[error.start]:#04x} is {error.reason}"
            ) from None
        except csv.Error as error:  # a field over the size limit, NUL (Python < 3.11), ...
            raise RequestLogError(f"{path}:{reader.line_num}: {error}") from None
    return requests


class _Requests:
    """The converted columns of a log, chunk by chunk, then the workload."""

    def __init__(self, path: Path, header: Sequence[str], columns: dict[str, str] | None) -> None:
        self.path = path
        self.width = len(header)
        names = [name.strip() for name in header]
        self.azure2021 = columns is None and tuple(names) == AZURE2021_HEADER
        if self.azure2021:
            columns = {"timestamp": "end_timestamp", "model": "func"}
        mapped = {role: name.strip() for role, name in (columns or {}).items()}
        # A role keeps its own name unless it is mapped, or its name is another's column.
        wanted = {
            role: role for role in COLUMNS if role not in mapped and role not in mapped.values()
        } | mapped
        self.index: dict[str, int] = {}
        self.label: dict[str, str] = {}  # role -> how errors name its column
        for role, name in wanted.items():
            found = [i for i, column in enumerate(names) if column == name]
            if len(found) > 1:
                raise RequestLogError(f"{path}:1: column {name!r} appears {len(found)} times")
            if found:
                self.index[role] = found[0]
                self.label[role] = repr(name) if name == role else f"{name!r} ({role})"
            elif role in _REQUIRED or role in mapped:
                raise RequestLogError(
                    f"{path}:1: no column {name!r} for the {role} (header: {', '.join(names)}); "
                    "name it with columns= (--columns ROLE=COLUMN)"
                )
        self.lines: list[npt.NDArray[np.int64]] = []
        self.values: dict[str, list[npt.NDArray[np.generic]]] = {role: [] for role in self.index}
        self.models: dict[str, int] = {}
        self.versions: dict[str, int] = {}
        self.form: tuple[str, int] | None = None  # timestamps: "number" or "date-time", line

    def bad(self, line: int, role: str, text: str, why: str) -> RequestLogError:
        return RequestLogError(f"{self.path}:{line}: column {self.label[role]}: {text!r} {why}")

    def add(self, rows: list[list[str]], lines: list[int]) -> None:
        if not rows:
            return
        if set(map(len, rows)) != {self.width}:
            row = next(i for i, fields in enumerate(rows) if len(fields) != self.width)
            raise RequestLogError(
                f"{self.path}:{lines[row]}: {len(rows[row])} fields where the header has "
                f"{self.width}"
            )
        self.lines.append(np.asarray(lines, dtype=np.int64))
        convert: dict[str, Callable[[list[str], list[int]], npt.NDArray[np.generic]]] = {
            "timestamp": self._timestamps,
            "model": self._models,
            "version": self._versions,
            "duration": self._durations,
            "partitions": lambda t, n: self._integers("partitions", t, n, MAX_PARTITIONS),
            "memory_mb": lambda t, n: self._integers("memory_mb", t, n, MAX_MEMORY_MB),
        }
        for role, i in self.index.items():
            self.values[role].append(convert[role]([row[i] for row in rows], lines))

    # ---- one chunk of one column ------------------------------------------------------

    def _timestamps(self, texts: list[str], lines: list[int]) -> npt.NDArray[np.float64]:
        # A log's timestamps are all numbers of seconds or all date-times, as its first.
        if self.form is None:
            self.form = ("number" if _is_number(texts[0]) else "date-time", lines[0])
        if self.form[0] == "number":
            try:
                values = np.array(texts, dtype=np.float64)
            except ValueError:
                row = next(i for i, text in enumerate(texts) if not _is_number(text))
                raise self._not_a_timestamp(texts[row], lines[row]) from None
        else:
            values = self._datetimes(texts, lines)
        self._check(texts, lines, "timestamp", np.isfinite(values), "is not finite")
        return values

    def _datetimes(self, texts: list[str], lines: list[int]) -> npt.NDArray[np.float64]:
        parse = datetime.fromisoformat
        try:
            moments = [parse(text) for text in texts]
        except ValueError:  # find which, or read what 3.10's fromisoformat does not
            moments = []
            for text, line in zip(texts, lines, strict=True):
                try:
                    moments.append(_parse_datetime(text))
                except ValueError as error:
                    raise self._not_a_timestamp(text, line, error) from None
        return np.array(
            [(m if m.tzinfo else m.replace(tzinfo=_UTC)).timestamp() for m in moments],
            dtype=np.float64,
        )

    def _not_a_timestamp(
        self, text: str, line: int, error: ValueError | None = None
    ) -> RequestLogError:
        assert self.form is not None
        form, first = self.form
        if form == "number" and _is_datetime(text):
            why = f"is a date-time where line {first} has a number of seconds"
        elif form == "date-time" and _is_number(text):
            why = f"is a number of seconds where line {first} has a date-time"
        elif error is not None and _DATETIME.fullmatch(text):  # month 13, hour 25, ...
            return self.bad(line, "timestamp", text, f"is not a valid date-time ({error})")
        else:
            why = (
                "is neither a number of seconds nor a date-time "
                "(ISO 8601 or YYYY-MM-DD HH:MM:SS[.fff])"
            )
            return self.bad(line, "timestamp", text, why)
        return self.bad(line, "timestamp", text, why + " (one form of timestamp per log)")

    def _models(self, texts: list[str], lines: list[int]) -> npt.NDArray[np.int64]:
        self._no_nul("model", texts, lines)
        index = self.models
        ids = [index.setdefault(text, len(index)) for text in texts]
        if "" in index:
            row = texts.index("")
            raise self.bad(lines[row], "model", "", "is empty: every request names its model")
        return np.asarray(ids, dtype=np.int64)

    def _versions(self, texts: list[str], lines: list[int]) -> npt.NDArray[np.int64]:
        self._no_nul("version", texts, lines)
        index = self.versions
        return np.asarray([index.setdefault(text, len(index)) for text in texts], dtype=np.int64)

    def _no_nul(self, role: str, texts: list[str], lines: list[int]) -> None:
        # The csv module of Python >= 3.11 reads NUL bytes; in a name they mean binary data.
        if "\x00" in "".join(texts):
            row = next(i for i, text in enumerate(texts) if "\x00" in text)
            raise self.bad(lines[row], role, texts[row], "has a NUL byte (a binary file?)")

    def _durations(self, texts: list[str], lines: list[int]) -> npt.NDArray[np.float64]:
        values = self._numbers("duration", texts, lines, np.float64, "is not a number of seconds")
        ok = np.isfinite(values) & (values >= 0)
        self._check(texts, lines, "duration", ok, "must be a finite number >= 0")
        return values

    def _integers(
        self, role: str, texts: list[str], lines: list[int], most: int
    ) -> npt.NDArray[np.int64]:
        why = f"is not an integer from 1 to {most:,}"
        values = self._numbers(role, texts, lines, np.int64, why)
        self._check(texts, lines, role, (values >= 1) & (values <= most), why)
        return values

    def _numbers(
        self,
        role: str,
        texts: list[str],
        lines: list[int],
        dtype: type[np.float64] | type[np.int64],
        why: str,
    ) -> npt.NDArray[Any]:
        try:
            return np.array(texts, dtype=dtype)
        except (ValueError, OverflowError):
            convert = float if dtype is np.float64 else int
            for text, line in zip(texts, lines, strict=True):
                try:
                    value = convert(text)
                    np.array(value, dtype=dtype)
                except (ValueError, OverflowError):
                    raise self.bad(line, role, text, why) from None
            raise  # pragma: no cover - numpy refused what each row passes

    def _check(
        self,
        texts: list[str],
        lines: list[int],
        role: str,
        ok: npt.NDArray[np.bool_],
        why: str,
    ) -> None:
        if not ok.all():
            row = int(np.argmin(ok))
            raise self.bad(lines[row], role, texts[row], why)

    # ---- the whole log ----------------------------------------------------------------

    def column(self, role: str) -> npt.NDArray[np.generic] | None:
        parts = self.values.get(role)
        return None if parts is None else np.concatenate(parts)

    def workload(
        self, *, rollout_interval_s: float, changed_fraction: float, seed: int
    ) -> Workload:
        if not self.lines:
            raise RequestLogError(f"{self.path}: no requests (a header and no rows)")
        lines = np.concatenate(self.lines)
        stamps = np.asarray(self.column("timestamp"), dtype=np.float64)
        duration = self.column("duration")
        if self.azure2021:
            stamps = stamps - np.asarray(duration, dtype=np.float64)  # end -> start
        order = np.argsort(stamps, kind="stable")
        arrival = stamps[order] - stamps[order[0]]
        if arrival[-1] > MAX_SPAN_S:
            raise RequestLogError(
                f"{self.path}: the requests span {arrival[-1]:,.0f} s (line "
                f"{lines[order[0]]} to line {lines[order[-1]]}), more than a year: "
                "timestamps must be seconds (are these milliseconds?)"
            )
        # Models are numbered in order of their first request.
        file_model = np.asarray(self.column("model"), dtype=np.int64)
        names = list(self.models)
        by_time = file_model[order]
        present, first = np.unique(by_time, return_index=True)
        ranked = present[np.argsort(first)]
        renumber = np.empty(len(names), dtype=np.int64)
        renumber[ranked] = np.arange(len(names))
        arrival_model = renumber[by_time].astype(np.int32)
        shapes = [
            self._given(role, file_model, lines, names) for role in ("partitions", "memory_mb")
        ]
        service_rng = np.random.default_rng([seed, 1])
        models, base_s = [], np.empty(len(names))
        named_versions = "version" in self.values
        for m, original in enumerate(ranked.tolist()):
            model, base_s[m] = _model(
                names[original],
                seed,
                partitions=int(shapes[0][original]) if shapes[0] is not None else None,
                memory_mb=int(shapes[1][original]) if shapes[1] is not None else None,
                rollout_interval_s=0.0 if named_versions else rollout_interval_s,
                changed_fraction=changed_fraction,
            )
            models.append(model)
        if duration is None:
            service = service_times(base_s, arrival_model, service_rng)
        else:
            service = np.asarray(duration, dtype=np.float64)[order]
        rollout_s, rollout_model = np.zeros(0), np.zeros(0, dtype=np.int32)
        if named_versions:
            labels = np.asarray(self.column("version"), dtype=np.int64)[order]
            first_of_version = _new_versions(arrival_model, labels, len(self.versions))
            rollout_s = arrival[first_of_version]
            rollout_model = arrival_model[first_of_version]
        return Workload(
            name=str(self.path),
            models=tuple(models),
            arrival_s=arrival,
            arrival_model=arrival_model,
            service_s=service,
            rollout_s=rollout_s,
            rollout_model=rollout_model,
            span_s=max(1.0, float(np.max(arrival + service))),
        )

    def _given(
        self,
        role: str,
        model: npt.NDArray[np.int64],
        lines: npt.NDArray[np.int64],
        names: list[str],
    ) -> npt.NDArray[np.int64] | None:
        """Each model's value of a per-model column (by model number in file order)."""
        values = self.column(role)
        if values is None:
            return None
        _, first = np.unique(model, return_index=True)
        per_model = np.asarray(values[first], dtype=np.int64)
        differs = values != per_model[model]
        if differs.any():
            row = int(np.argmax(differs))
            raise self.bad(
                int(lines[row]),
                role,
                str(values[row]),
                f"differs from line {lines[first[model[row]]]}'s {per_model[model[row]]} "
                f"for model {names[model[row]]!r} (one value per model)",
            )
        return per_model


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_datetime(text: str) -> bool:
    try:
        _parse_datetime(text)
    except ValueError:
        return False
    return True


def _parse_datetime(text: str) -> datetime:
    """ISO 8601 or ``YYYY-MM-DD HH:MM:SS[.f]`` with an optional offset, as
    datetime.fromisoformat takes it, or rewritten to what it takes (Python 3.10's
    takes no Z and only 3 or 6 fraction digits; none takes surrounding spaces)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    match = _DATETIME.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a date-time")
    date, clock, fraction, zulu, hours, minutes = match.groups()
    iso = f"{date}T{clock}" + (f".{(fraction + '000000')[:6]}" if fraction else "")
    if zulu:
        iso += "+00:00"
    elif hours:
        iso += f"{hours}:{minutes or '00'}"
    return datetime.fromisoformat(iso)


def _model(
    name: str,
    seed: int,
    *,
    partitions: int | None,
    memory_mb: int | None,
    rollout_interval_s: float,
    changed_fraction: float,
) -> tuple[DIModel, float]:
    """A log's model with what the log does not say drawn, and its base service time."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()
    rng = np.random.default_rng([seed, int.from_bytes(digest[:16], "little")])
    drawn = int(rng.integers(2, 7))  # drawn even when given, so later draws do not move
    count = drawn if partitions is None else partitions
    memory = rng.choice(np.asarray(DEFAULT_MEMORY_MB), size=count)
    if memory_mb is not None:
        memory[:] = memory_mb
    base_s = float(rng.uniform(0.05, 0.4))
    offset = float(rng.uniform(0.2, 1.0)) * rollout_interval_s
    model = DIModel(
        name=name,
        partitions=tuple(Partition.of_memory(int(x)) for x in memory),
        rollout_interval_s=rollout_interval_s,
        rollout_offset_s=offset,
        changed_fraction=changed_fraction,
    )
    return model, base_s


def _new_versions(
    model: npt.NDArray[np.int32], label: npt.NDArray[np.int64], n_labels: int
) -> npt.NDArray[np.int64]:
    """Positions (in time order) of the requests that bring a model a version label it
    has not had before, except each model's first: its rollouts, in time order."""
    pair = model.astype(np.int64) * max(n_labels, 1) + label
    _, first = np.unique(pair, return_index=True)
    first_of_model = np.unique(model, return_index=True)[1]
    return np.setdiff1d(first, first_of_model)
