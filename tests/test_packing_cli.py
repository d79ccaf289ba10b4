"""``fastplace pack FILE.vbp``: the summary, and one-line errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fastplace.cli import main

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


def test_unknown_policy_is_refused_by_the_parser(tmp_path: Path) -> None:
    path = write(tmp_path, INSTANCE)
    with pytest.raises(SystemExit) as info:
        main(["pack", str(path), "--policy", "worst_fit"])
    assert info.value.code == 2
