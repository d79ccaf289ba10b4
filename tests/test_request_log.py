"""Request-log workloads: every timestamp form, column mapping, the Azure 2021 trace,
versions, defaults, every bad row (file, line, column), refused files, determinism, a
round trip from the synthetic workload through the simulator, and the command line."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from child_process import child_env
from fastplace.cli import main
from fastplace.sim import (
    SimConfig,
    Workload,
    is_request_log,
    load_workload,
    request_log_workload,
    simulate,
    synthetic_workload,
)
from fastplace.sim import request_log as request_log_module
from fastplace.sim.request_log import (
    RequestLogError,
    small_request_log,
    write_request_log,
)
from fastplace.sim.workload import DEFAULT_MEMORY_MB
from fifo_guard import fifo


def write(tmp_path: Path, text: str, name: str = "log.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def arrivals(path: Path, **options: object) -> list[float]:
    return request_log_workload(path, **options).arrival_s.tolist()  # type: ignore[arg-type]


# ---- timestamps ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "stamps",
    [
        ["100", "101.5", "161.25"],  # seconds, relative
        ["1612051200", "1612051201.5", "1612051261.25"],  # seconds, epoch
        ["2021-01-31T00:00:00", "2021-01-31T00:00:01.5", "2021-01-31T00:01:01.25"],
        ["2021-01-31 00:00:00", "2021-01-31 00:00:01.500", "2021-01-31 00:01:01.250000"],
        ["2021-01-31T00:00:00Z", "2021-01-31T01:00:01.5+01:00", "2021-01-30T19:01:01.25-05:00"],
        ["2021-01-31T00:00:00+0000", "2021-01-31T00:00:01,5z", " 2021-01-31 00:01:01.25 Z"],
    ],
    ids=["seconds", "epoch", "iso", "space", "offsets", "other-spellings"],
)
def test_every_timestamp_form_gives_seconds_from_the_first_request(
    tmp_path: Path, stamps: list[str]
) -> None:
    rows = "".join(f'"{stamp}",m\n' for stamp in stamps)
    assert arrivals(write(tmp_path, "timestamp,model\n" + rows)) == [0.0, 1.5, 61.25]


def test_a_date_time_without_offset_is_utc(tmp_path: Path) -> None:
    log = "timestamp,model\n2021-01-31T01:00:00+01:00,a\n2021-01-31T00:00:10,b\n"
    assert arrivals(write(tmp_path, log)) == [0.0, 10.0]


def test_what_python_3_10_cannot_parse_is_read_by_the_fallback() -> None:
    # The fallback (leading space, 7 fraction digits, +HH offsets) runs on 3.11 too,
    # for rows datetime.fromisoformat refuses.
    parsed = request_log_module._parse_datetime(" 2021-01-31 00:00:01.1234567+01")
    assert parsed.isoformat() == "2021-01-31T00:00:01.123456+01:00"
    parsed = request_log_module._parse_datetime("2021-01-31T00:00:01.5Z")
    assert parsed.isoformat() == "2021-01-31T00:00:01.500000+00:00"


# ---- columns ------------------------------------------------------------------------


def test_columns_map_roles_to_the_logs_own_names(tmp_path: Path) -> None:
    plain = write(tmp_path, "timestamp,model,version,duration\n0,a,1,0.5\n2,a,2,0.25\n", "p.csv")
    named = write(tmp_path, "when,fn,rev,secs,extra\n0,a,1,0.5,x\n2,a,2,0.25,y\n", "n.csv")
    columns = {"timestamp": "when", "model": "fn", "version": "rev", "duration": "secs"}
    assert_same_workload(request_log_workload(plain), request_log_workload(named, columns=columns))


def test_a_column_mapped_to_another_roles_name_takes_it(tmp_path: Path) -> None:
    # "version" holds the model here, so the version role has no column.
    log = write(tmp_path, "timestamp,version\n0,a\n1,b\n")
    workload = request_log_workload(log, columns={"model": "version"})
    assert [m.name for m in workload.models] == ["a", "b"]
    assert workload.rollout_s.shape == (0,)


def test_a_mapped_column_missing_from_the_header_is_named(tmp_path: Path) -> None:
    log = write(tmp_path, "timestamp,model\n0,a\n")
    with pytest.raises(RequestLogError, match=r"log.csv:1: no column 'secs' for the duration"):
        request_log_workload(log, columns={"duration": "secs"})


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"when": "t"}, "columns: 'when' is not one of timestamp, model"),
        ({"model": ""}, "columns: model = '' must be a column name"),
        ({"model": "x", "version": "x"}, "columns: model and version both name column 'x'"),
    ],
)
def test_bad_columns_argument_is_named(
    tmp_path: Path, columns: dict[str, str], message: str
) -> None:
    log = write(tmp_path, "timestamp,model,x\n0,a,b\n")
    with pytest.raises(ValueError, match=message):
        request_log_workload(log, columns=columns)


# ---- the Azure Functions 2021 trace ---------------------------------------------------


def test_azure_2021_trace_is_recognised_by_its_header(tmp_path: Path) -> None:
    # end_timestamp is when a call ended: it arrived duration seconds earlier. The
    # rows are in end order, which is not arrival order.
    log = write(
        tmp_path,
        "app,func,end_timestamp,duration\napp1,f1,10.0,1.0\napp1,f2,10.5,8.5\napp2,f1,12.0,0.5\n",
    )
    workload = request_log_workload(log)
    assert workload.arrival_s.tolist() == [0.0, 7.0, 9.5]  # starts 2.0, 9.0, 11.5
    assert [workload.models[m].name for m in workload.arrival_model] == ["f2", "f1", "f1"]
    assert workload.service_s.tolist() == [8.5, 1.0, 0.5]
    assert workload.span_s == 10.0  # first start (2.0) to last end (12.0)


def test_azure_2021_bad_row_names_its_column(tmp_path: Path) -> None:
    log = write(tmp_path, "app,func,end_timestamp,duration\na,f,10,1\na,f,soon,1\n")
    with pytest.raises(RequestLogError, match=r":3: column 'end_timestamp' \(timestamp\): 'soon'"):
        request_log_workload(log)


# ---- order, versions, defaults ------------------------------------------------------


def test_rows_out_of_order_are_sorted_ties_in_file_order(tmp_path: Path) -> None:
    log = write(tmp_path, "timestamp,model,duration\n5,c,0.5\n1,a,0.1\n5,b,0.3\n3,a,0.2\n")
    workload = request_log_workload(log)
    assert workload.arrival_s.tolist() == [0.0, 2.0, 4.0, 4.0]
    assert [workload.models[m].name for m in workload.arrival_model] == ["a", "a", "c", "b"]
    assert workload.service_s.tolist() == [0.1, 0.2, 0.5, 0.3]
    assert [m.name for m in workload.models] == ["a", "c", "b"]  # by first request
    assert workload.span_s == 4.5


def test_each_new_version_of_a_model_is_a_rollout_at_its_first_request(tmp_path: Path) -> None:
    log = write(
        tmp_path,
        "timestamp,model,version\n"
        "0,a,v1\n"
        "1,b,v2\n"  # b's first version: not a rollout, whatever its name
        "3,a,v2\n"  # a: rollout at 3
        "4,a,v1\n"  # an old version still serving: not new
        "6,b,v1\n"  # b: rollout at 6 (new for b)
        "7,a,v2\n"
        "9,a,v3\n",  # a: rollout at 9
    )
    workload = request_log_workload(log)
    names = [m.name for m in workload.models]
    assert workload.rollout_s.tolist() == [3.0, 6.0, 9.0]
    assert [names[m] for m in workload.rollout_model] == ["a", "b", "a"]
    assert all(m.rollout_interval_s == 0 for m in workload.models)  # no schedule on top


def test_without_a_version_column_rollouts_follow_the_schedule(tmp_path: Path) -> None:
    log = write(tmp_path, "timestamp,model\n0,a\n1,b\n")
    for interval in (60.0, 0.0):
        workload = request_log_workload(log, rollout_interval_s=interval)
        assert workload.rollout_s.shape == (0,)
        for model in workload.models:
            assert model.rollout_interval_s == interval
            assert 0.2 * interval <= model.rollout_offset_s <= interval


def test_missing_optional_columns_are_drawn_from_the_documented_distribution(
    tmp_path: Path,
) -> None:
    rows = "".join(f"{i},model-{i % 40}\n" for i in range(400))
    workload = request_log_workload(write(tmp_path, "timestamp,model\n" + rows))
    counts = [len(m.partitions) for m in workload.models]
    assert set(counts) == {2, 3, 4, 5, 6}  # 40 models: every count appears
    memory = {p.memory_mb for m in workload.models for p in m.partitions}
    assert memory <= set(DEFAULT_MEMORY_MB) and len(memory) > 5
    for model in workload.models:
        for partition in model.partitions:
            assert partition.file_bytes == partition.memory_mb << 19  # half the memory
    # Service times: per-model base in 0.05-0.4 s times a log-normal(0, 0.3) factor.
    assert (workload.service_s > 0).all() and 0.1 < np.median(workload.service_s) < 0.4


def test_partitions_and_memory_columns_are_used(tmp_path: Path) -> None:
    log = write(
        tmp_path,
        "timestamp,model,partitions,memory_mb\n0,a,3,1500\n1,b,1,64\n2,a,3,1500\n",
    )
    a, b = request_log_workload(log).models
    assert [p.memory_mb for p in a.partitions] == [1500] * 3
    assert [p.memory_mb for p in b.partitions] == [64]


def test_a_model_keeps_its_shape_whatever_else_the_log_holds(tmp_path: Path) -> None:
    alone = request_log_workload(write(tmp_path, "timestamp,model\n0,a\n", "1.csv"))
    among = request_log_workload(write(tmp_path, "timestamp,model\n0,z\n1,a\n2,y\n", "2.csv"))
    assert among.models[1] == alone.models[0]


def test_same_seed_same_workload_other_seed_other_draws(tmp_path: Path) -> None:
    rows = "".join(f"{i * 0.5},m{i % 7}\n" for i in range(200))
    log = write(tmp_path, "timestamp,model\n" + rows)
    first = request_log_workload(log, seed=3)
    assert_same_workload(first, request_log_workload(log, seed=3))
    other = request_log_workload(log, seed=4)
    assert other.arrival_s.tolist() == first.arrival_s.tolist()
    assert other.models != first.models
    assert other.service_s.tolist() != first.service_s.tolist()


def test_blank_lines_are_skipped_and_counted_in_line_numbers(tmp_path: Path) -> None:
    log = write(tmp_path, "timestamp,model\n\n0,a\n\n1,b\n2,\n")
    with pytest.raises(RequestLogError, match=r"log.csv:6: column 'model': '' is empty"):
        request_log_workload(log)


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbftimestamp,model\n0,a\n")
    assert request_log_workload(path).n_requests == 1


# ---- any log against a plain reference ------------------------------------------------

NAMES = st.text(min_size=1, max_size=6).filter(lambda name: "\x00" not in name)


@st.composite
def logs(draw: st.DrawFn) -> tuple[list[list[str]], list[str]]:
    """Rows of a log (header first) with any model and version names (commas, quotes,
    newlines, any script), times in any order with ties, optional columns."""
    header = ["timestamp", "model"]
    versions, durations = draw(st.booleans()), draw(st.booleans())
    header += ["version"] * versions + ["duration"] * durations
    models = draw(st.lists(NAMES, min_size=1, max_size=5, unique=True))
    labels = draw(st.lists(NAMES, min_size=1, max_size=4, unique=True))
    rows = []
    for _ in range(draw(st.integers(1, 40))):
        row = [repr(draw(st.sampled_from([0.0, 1.5, 2.0, 1e6, 3.25]) | st.floats(-1e6, 1e6)))]
        row.append(draw(st.sampled_from(models)))
        row += [draw(st.sampled_from(labels))] * versions
        row += [repr(draw(st.floats(0.0, 100.0)))] * durations
        rows.append(row)
    return [header, *rows], header


def reference(rows: list[list[str]], header: list[str]) -> dict[str, list[object]]:
    """What the log says, read the obvious way: sort (stably) by time, number the models
    by first request, a rollout wherever a model sees a version it has not seen."""
    column = {name: i for i, name in enumerate(header)}
    order = sorted(rows, key=lambda row: float(row[0]))
    t0 = float(order[0][0])
    names: list[str] = []
    seen: dict[str, set[str]] = {}
    rollouts: list[tuple[float, str]] = []
    for row in order:
        model = row[1]
        if model not in seen:
            names.append(model)
            seen[model] = set()
        if "version" in column:
            label = row[column["version"]]
            if seen[model] and label not in seen[model]:
                rollouts.append((float(row[0]) - t0, model))
            seen[model].add(label)
    return {
        "arrival_s": [float(row[0]) - t0 for row in order],
        "model": [row[1] for row in order],
        "names": names,
        "service_s": [float(row[column["duration"]]) for row in order]
        if "duration" in column
        else [],
        "rollouts": rollouts,
    }


@settings(max_examples=60)
@given(log=logs())
def test_any_log_reads_as_the_plain_reference_says(
    tmp_path_factory: pytest.TempPathFactory, log: tuple[list[list[str]], list[str]]
) -> None:
    table, header = log
    path = tmp_path_factory.mktemp("log") / "any.csv"
    with open(path, "w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows(table)
    workload = request_log_workload(path)
    expected = reference(table[1:], header)
    names = [model.name for model in workload.models]
    assert workload.arrival_s.tolist() == expected["arrival_s"]
    assert [names[m] for m in workload.arrival_model] == expected["model"]
    assert names == expected["names"]
    if expected["service_s"]:
        assert workload.service_s.tolist() == expected["service_s"]
    rollout_names = [names[m] for m in workload.rollout_model]
    rollouts = list(zip(workload.rollout_s.tolist(), rollout_names, strict=True))
    assert rollouts == expected["rollouts"]


# ---- bad rows -----------------------------------------------------------------------

GOOD = "timestamp,model,version,duration,partitions,memory_mb\n0,a,v1,0.5,2,1024\n"


@pytest.mark.parametrize(
    ("row", "where"),
    [
        ("yesterday,a,v1,0.5,2,1024", "column 'timestamp': 'yesterday' is neither a number"),
        (",a,v1,0.5,2,1024", "column 'timestamp': '' is neither a number"),
        ("nan,a,v1,0.5,2,1024", "column 'timestamp': 'nan' is not finite"),
        ("inf,a,v1,0.5,2,1024", "column 'timestamp': 'inf' is not finite"),
        (
            "2021-01-31 00:00:00,a,v1,0.5,2,1024",
            "'2021-01-31 00:00:00' is a date-time where line 2 has a number of seconds",
        ),
        ("1,,v1,0.5,2,1024", "column 'model': '' is empty"),
        ("1,a,v1,fast,2,1024", "column 'duration': 'fast' is not a number of seconds"),
        ("1,a,v1,-0.1,2,1024", "column 'duration': '-0.1' must be a finite number >= 0"),
        ("1,a,v1,nan,2,1024", "column 'duration': 'nan' must be a finite number >= 0"),
        ("1,b,v1,0.5,0,1024", "column 'partitions': '0' is not an integer from 1 to 64"),
        ("1,b,v1,0.5,2.5,1024", "column 'partitions': '2.5' is not an integer from 1 to 64"),
        ("1,b,v1,0.5,65,1024", "column 'partitions': '65' is not an integer from 1 to 64"),
        ("1,b,v1,0.5,2,-5", "column 'memory_mb': '-5' is not an integer from 1 to"),
        ("1,b,v1,0.5,2,1e3", "column 'memory_mb': '1e3' is not an integer from 1 to"),
        ("1,b,v1,0.5,2,99999999999999999999", "column 'memory_mb': '99999999999999999999'"),
        ("1,a,v1,0.5,3,1024", "column 'partitions': '3' differs from line 2's 2 for model 'a'"),
        ("1,a,v1,0.5,2,2048", "column 'memory_mb': '2048' differs from line 2's 1024"),
        ("1,a,v1,0.5,2", "5 fields where the header has 6"),
        ("1,a,v1,0.5,2,1024,x", "7 fields where the header has 6"),
        ("1,a\x00,v1,0.5,2,1024", "column 'model': 'a\\x00' has a NUL byte"),
        ("1,a,v\x00,0.5,2,1024", "column 'version': 'v\\x00' has a NUL byte"),
    ],
)
def test_every_bad_row_names_file_line_and_column(tmp_path: Path, row: str, where: str) -> None:
    log = write(tmp_path, GOOD + "1,a,v1,0.5,2,1024\n" + row + "\n")
    with pytest.raises(RequestLogError) as caught:
        request_log_workload(log)
    assert str(caught.value).startswith(f"{log}:4: ")
    assert where in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_number_among_date_times_is_named(tmp_path: Path) -> None:
    log = write(tmp_path, "timestamp,model\n2021-01-31 00:00:00,a\n17,a\n")
    with pytest.raises(
        RequestLogError,
        match=r":3: column 'timestamp': '17' is a number of seconds where line 2 has a date-time",
    ):
        request_log_workload(log)


def test_an_impossible_date_is_named(tmp_path: Path) -> None:
    log = write(tmp_path, "timestamp,model\n2021-01-31 00:00:00,a\n2021-13-01 00:00:00,a\n")
    with pytest.raises(RequestLogError, match=r":3: column 'timestamp': '2021-13-01 00:00:00'"):
        request_log_workload(log)


def test_rows_past_the_first_chunk_are_named_by_their_own_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(request_log_module, "_CHUNK_ROWS", 3)
    rows = "".join(f"{i},a\n" for i in range(7))
    workload = request_log_workload(write(tmp_path, "timestamp,model\n" + rows, "ok.csv"))
    assert workload.arrival_s.tolist() == list(range(7))
    where = r":9: column 'timestamp': '2021-01-31 00:00:00' is a date-time where line 2"
    with pytest.raises(RequestLogError, match=where):
        request_log_workload(
            write(tmp_path, "timestamp,model\n" + rows + "2021-01-31 00:00:00,a\n")
        )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file (no header)"),
        ("timestamp,model\n", "no requests (a header and no rows)"),
        ("time,model\n0,a\n", ":1: no column 'timestamp' for the timestamp (header: time, model)"),
        ("timestamp,model,model\n0,a,b\n", ":1: column 'model' appears 2 times"),
        (
            "timestamp,model\n0,a\n1e11,a\n",
            "the requests span 100,000,000,000 s (line 2 to line 3)",
        ),
    ],
)
def test_unusable_logs_are_named(tmp_path: Path, text: str, message: str) -> None:
    log = write(tmp_path, text)
    with pytest.raises(RequestLogError, match=message.replace("(", r"\(").replace(")", r"\)")):
        request_log_workload(log)


def test_binary_file_is_not_utf8_text(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"timestamp,model\n0,a\n" + bytes(range(128, 256)) * 4)
    with pytest.raises(RequestLogError, match=r"model.bin: not UTF-8 text \(a binary file\?\)"):
        request_log_workload(path)


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    log = write(tmp_path, "timestamp,model\n0,a\n")
    with pytest.raises(ValueError, match="seed = -1 must be >= 0"):
        request_log_workload(log, seed=-1)
    with pytest.raises(ValueError, match="rollout_interval_s = nan must be finite and >= 0"):
        request_log_workload(log, rollout_interval_s=float("nan"))
    with pytest.raises(ValueError, match=r"changed_fraction = 1.5 must be in \[0, 1\]"):
        request_log_workload(log, changed_fraction=1.5)


# ---- files that are not regular -------------------------------------------------------


def test_fifo_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    with fifo(tmp_path / "pipe.csv") as path:
        with pytest.raises(RequestLogError, match=r"pipe.csv: not a regular file \(a FIFO"):
            request_log_workload(path)


def test_directory_device_and_missing_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RequestLogError, match="is a directory, not a request log"):
        request_log_workload(tmp_path)
    with pytest.raises(RequestLogError, match=r"/dev/null: not a regular file"):
        request_log_workload("/dev/null")
    with pytest.raises(RequestLogError, match=r"gone.csv: cannot read: No such file or directory"):
        request_log_workload(tmp_path / "gone.csv")


def test_a_path_that_becomes_a_fifo_after_the_check_is_refused_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stat saw a regular file; by the open, the name is a FIFO with no writer.
    regular = write(tmp_path, "timestamp,model\n0,a\n")
    real_stat = os.stat
    monkeypatch.setattr(request_log_module.os, "stat", lambda path: real_stat(regular))
    os.mkfifo(tmp_path / "swapped.csv")
    with pytest.raises(RequestLogError, match=r"swapped.csv: not a regular file"):
        request_log_workload(tmp_path / "swapped.csv")


# ---- round trip and the simulator -----------------------------------------------------


def assert_same_workload(a: Workload, b: Workload) -> None:
    assert a.models == b.models
    for field in ("arrival_s", "arrival_model", "service_s", "rollout_s", "rollout_model"):
        assert getattr(a, field).tolist() == getattr(b, field).tolist(), field
    assert a.span_s == b.span_s


def test_a_synthetic_workload_written_as_a_log_reads_back_as_the_same_requests(
    tmp_path: Path,
) -> None:
    synthetic = synthetic_workload(
        duration_s=300.0, n_models=9, total_rate=20.0, rollout_interval_s=60.0, seed=7
    )
    path = tmp_path / "synthetic.csv"
    write_request_log(synthetic, path)
    log = request_log_workload(path)
    assert log.arrival_s.tolist() == (synthetic.arrival_s - synthetic.arrival_s[0]).tolist()
    assert log.service_s.tolist() == synthetic.service_s.tolist()
    names = [m.name for m in log.models]
    expected = [synthetic.models[m].name for m in synthetic.arrival_model]
    assert [names[m] for m in log.arrival_model] == expected
    # Each scheduled rollout becomes one at the first request after it (models that
    # get no request between two rollouts skip a version: they never saw it).
    shift = synthetic.arrival_s[0]
    for m, model in enumerate(log.models):
        spec = next(s for s in synthetic.models if s.name == model.name)
        first = spec.rollout_offset_s or spec.rollout_interval_s
        mine = log.arrival_s[log.arrival_model == m] + shift
        seen = sorted({max(0, 1 + int((t - first) // 60.0)) for t in mine})
        times = log.rollout_s[log.rollout_model == m] + shift
        assert len(times) == len(seen) - 1
        for version, t in zip(seen[1:], times, strict=True):
            scheduled = first + (version - 1) * 60.0
            assert t == min(x for x in mine if x >= scheduled)
    # The log written back from the log workload is the same log, byte for byte.
    again = tmp_path / "again.csv"
    write_request_log(log, again)
    assert_same_workload(log, request_log_workload(again))


@pytest.mark.parametrize("policy", ["first_fit", "similarity"])
def test_the_simulator_runs_a_log_exactly_as_the_workload_it_came_from(
    tmp_path: Path, policy: str
) -> None:
    # One memory size, so that the log's partitions and memory_mb columns describe the
    # synthetic models exactly; no rollouts, whose times a log can only approximate.
    synthetic = synthetic_workload(
        duration_s=120.0,
        n_models=6,
        total_rate=15.0,
        rollout_interval_s=0.0,
        seed=2,
        memory_mb=[2048],
    )
    shift = float(synthetic.arrival_s[0])
    path = tmp_path / "shapes.csv"
    write_request_log(synthetic, path, shapes=True)
    log = request_log_workload(path, rollout_interval_s=0.0)
    config = SimConfig(servers=12, duration_s=120.0, keep_alive_s=5.0)
    ran = simulate(config, synthetic, policy)
    replayed = simulate(
        SimConfig(servers=12, duration_s=120.0 - shift, keep_alive_s=5.0), log, policy
    )
    for metric in ("requests", "warm_requests", "cold_starts", "bytes_downloaded", "rejected"):
        assert replayed[metric] == ran[metric], metric
    for metric in ("cold_start_p50_s", "cold_start_p99_s", "request_p50_s", "request_p99_s"):
        assert replayed[metric] == pytest.approx(ran[metric]), metric


def test_shapes_need_one_memory_per_model(tmp_path: Path) -> None:
    synthetic = synthetic_workload(duration_s=10.0, n_models=3, seed=1)
    with pytest.raises(ValueError, match=r"partitions of .* MB cannot be written as one"):
        write_request_log(synthetic, tmp_path / "x.csv", shapes=True)
    assert not (tmp_path / "x.csv").exists()


def test_the_shipped_log_loads_and_simulates() -> None:
    workload = load_workload(str(small_request_log()))
    assert workload.n_requests == 3088 and len(workload.models) == 12
    assert workload.rollout_s.shape[0] > 0 and 590 < (workload.span_s or 0) < 610
    metrics = simulate(SimConfig(servers=40, duration_s=60.0), workload, "first_fit")
    assert metrics["requests"] == int(np.searchsorted(workload.arrival_s, 60.0, side="right"))


def test_load_workload_tells_logs_from_traces(tmp_path: Path) -> None:
    (tmp_path / "t_inv.csv").write_text("")
    assert not is_request_log(str(tmp_path / "t"))  # an Azure 2019 PREFIX
    assert not is_request_log(str(tmp_path)) and not is_request_log("synthetic")
    assert is_request_log(str(tmp_path / "t_inv.csv")) and is_request_log("missing.csv")
    with pytest.raises(ValueError, match="only a request log has columns"):
        load_workload("synthetic", columns={"model": "fn"})


# ---- the command line ----------------------------------------------------------------


def test_simulate_a_request_log_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = write(
        tmp_path,
        "when,fn\n"
        + "".join(f"2021-01-31 00:{i // 60:02d}:{i % 60:02d}.5,f{i % 3}\n" for i in range(90)),
    )
    out = tmp_path / "out"
    argv = ["simulate", "--workload", str(log), "--columns", "timestamp=when,model=fn"]
    argv += ["--policies", "first_fit", "--servers", "20", "--out", str(out)]
    assert main(argv) == 0
    data = json.loads((out / "metrics.json").read_text())
    assert data["workload"] == str(log)
    assert data["policies"]["first_fit"]["requests"] == 90
    span = request_log_workload(log, columns={"timestamp": "when", "model": "fn"}).span_s
    assert data["config"]["duration_s"] == span  # --duration defaults to the log's span
    assert "90 requests, 3 models" in capsys.readouterr().out


def test_simulate_a_log_longer_than_a_day(tmp_path: Path) -> None:
    log = write(tmp_path, "timestamp,model\n0,a\n172000,a\n")
    argv = ["simulate", "--workload", str(log), "--policies", "first_fit", "--servers", "4"]
    assert main([*argv, "--rollout-interval", "0", "--out", str(tmp_path / "o")]) == 0
    data = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert data["policies"]["first_fit"]["requests"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--columns", "timestamp"], "--columns: 'timestamp' is not ROLE=COLUMN"),
        (["--columns", "when=t"], "--columns: 'when' is not one of timestamp, model"),
        (["--columns", "model=a,model=b"], "--columns: model is given twice"),
        (["--columns", "model=x,version=x"], "model and version both name column 'x'"),
        (["--columns", "model=fn"], ":1: no column 'fn' for the model"),
        (["--rollout-interval", "-1"], "argument --rollout-interval: '-1' must be >= 0"),
        (["--duration", "nan"], "argument --duration: 'nan' is not a finite number"),
        (["--duration", "900000"], "--duration = 900000.0 must be <= 86,401 s (the log's span"),
    ],
)
def test_simulate_log_flag_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    log = write(tmp_path, "timestamp,model\n0,a\n")
    assert main(["simulate", "--workload", str(log), *extra, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fastplace simulate: error: ")
    assert message in err[0]


def test_columns_with_a_generated_workload_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--columns", "model=fn", "--out", str(tmp_path)]) == 2
    assert "--columns: --workload = 'synthetic' is not a request log" in capsys.readouterr().err


def test_simulate_bad_row_and_fifo_in_a_child_are_one_line_each(tmp_path: Path) -> None:
    bad = write(tmp_path, "timestamp,model,duration\n0,a,1\n1,b,soon\n")
    with fifo(tmp_path / "pipe.csv") as pipe:
        for path, message in (
            (bad, f"fastplace simulate: error: {bad}:3: column 'duration': 'soon' is not a"),
            (pipe, f"fastplace simulate: error: cannot read --workload {pipe}: not a regular file"),
        ):
            done = subprocess.run(
                [sys.executable, "-m", "fastplace", "simulate", "--workload", str(path)],
                capture_output=True,
                text=True,
                env=child_env(),
                cwd=tmp_path,
                timeout=120,
            )
            assert done.returncode == 2, done.stderr
            assert done.stderr.splitlines() == [done.stderr.strip()]
            assert done.stderr.startswith(message)
