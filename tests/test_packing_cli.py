"""``fastplace pack FILE.vbp``: the summary, and one-line errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fastplace.cli import main
from fifo_guard import fifo

INSTANCE = "3\n10 10 10\n2\n3 3 3 3\n7 7 7 3\n"  # the 3/7 instance: 3 bins, volume bound 3


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "small.vbp"
    path.write_text(text)
    return path


@pytest.mark.parametrize("policy", ["first_fit", "first_fit_decreasing", "best"])
def test_json_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: str) -> None:
    path = write(tmp_path, INSTANCE)
    assert main(["pack", str(path), "--policy", policy, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["instance"] == "small"
    assert summary["policy"] == policy
    assert summary["items"] == 6 and summary["dims"] == 3
    assert summary["bins"] == (4 if policy == "first_fit" else 3)
    assert summary["lower_bound"] == 3 and summary["strong_lower_bound"] == 3
    assert summary["seconds"] >= 0


def test_table_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, INSTANCE)
    assert main(["pack", str(path)]) == 0
    out = capsys.readouterr().out
    assert "bins used" in out and "lower bound (volume)" in out


def test_malformed_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "3\n10 10 10\n2\n3 3 3 3\n7 7 x 3\n")
    assert main(["pack", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"fastplace pack: error: {path}:5: value 3 ('x') is not an integer"


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pack", str(tmp_path / "absent.vbp")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_unknown_policy_is_refused_by_the_parser(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, INSTANCE)
    assert main(["pack", str(path), "--policy", "worst_fit"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("fastplace pack: error: argument --policy: ")


def test_assignments_are_printed_one_row_per_item(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, INSTANCE)
    assert main(["pack", str(path), "--policy", "first_fit", "--assignments"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines.index("item  type  bin")
    rows = [line.split() for line in lines[header + 2 :]]
    # first_fit on 3,3,3,7,7,7 in bins of 10: the 3s fill bin 0 to 9, so each 7
    # opens a bin of its own.
    assert rows == [
        ["0", "0", "0"],
        ["1", "0", "0"],
        ["2", "0", "0"],
        ["3", "1", "1"],
        ["4", "1", "2"],
        ["5", "1", "3"],
    ]


def test_assignments_in_the_json_summary_and_in_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, INSTANCE)
    assert main(["pack", str(path), "--json", "--assignments"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["item_type"] == [0, 0, 0, 1, 1, 1]
    bins = summary["bin"]
    assert len(bins) == 6 and len(set(bins)) == summary["bins"] == 3

    target = tmp_path / "bins.json"
    assert main(["pack", str(path), "--assignments", str(target)]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == f"wrote {target}"
    assert "item  type  bin" not in captured.out  # written, not printed
    written = json.loads(target.read_text())
    assert written["bin"] == bins and written["bins"] == 3
    # written under a temporary name, then renamed: nothing else is left behind
    assert {p.name for p in tmp_path.iterdir()} == {"small.vbp", "bins.json"}


def test_a_fifo_is_refused_without_being_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, INSTANCE)
    with fifo(tmp_path / "pipe.vbp") as pipe:  # reading it would wait for a writer
        assert main(["pack", str(pipe)]) == 2
        message = f"cannot read FILE.vbp {pipe}: not a regular file (a FIFO)"
        assert capsys.readouterr().err.strip() == f"fastplace pack: error: {message}"
    with fifo(tmp_path / "pipe.json") as pipe:  # renaming over it would replace it
        assert main(["pack", str(path), "--assignments", str(pipe)]) == 2
        message = f"cannot write --assignments {pipe}: exists and is not a regular file"
        assert capsys.readouterr().err.strip() == f"fastplace pack: error: {message}"
        assert pipe.is_fifo()


def test_bad_paths_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pack", str(tmp_path)]) == 2
    message = f"cannot read FILE.vbp {tmp_path}: Is a directory"
    assert capsys.readouterr().err.strip() == f"fastplace pack: error: {message}"
    target = tmp_path / "absent" / "bins.json"
    assert main(["pack", str(write(tmp_path, INSTANCE)), "--assignments", str(target)]) == 2
    message = f"cannot write --assignments {target}: no directory {target.parent}"
    assert capsys.readouterr().err.strip() == f"fastplace pack: error: {message}"
