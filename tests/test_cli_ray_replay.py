"""``fastplace ray-replay`` refuses bad flags and files with one line and exit status 2,
before it starts Ray (so these tests need no cluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastplace.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--compression", "0"], "--compression = 0.0 must be > 0"),
        (["--compression", "nan"], "--compression = nan must be > 0"),
        (["--duration", "-1"], "--duration = -1.0 must be a number of seconds >= 0"),
        (["--keep-alive", "inf"], "--keep-alive = inf must be a number of seconds >= 0"),
        (["--policies", " , "], "--policies is empty"),
        (["--policies", "first_fit,nope"], "--policies: "),
        (["--seed", "-2"], "argument --seed: '-2' must be >= 0"),
        (["--node-memory", "512"], "--node-memory = 512 MB: a partition of the log needs"),
    ],
)
def test_bad_flags_are_one_line_and_status_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["ray-replay", *argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fastplace ray-replay: error: {message}"), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_bad_logs_are_one_line_and_status_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,model\n0.5,a\nsoon,b\n", encoding="utf-8")
    for log, message in [
        (tmp_path / "missing.csv", "cannot read request log"),
        (tmp_path, "cannot read request log"),
        (bad, "bad.csv:3: column 'timestamp'"),
    ]:
        assert main(["ray-replay", str(log), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("fastplace ray-replay: error: ") and message in err, err
        assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--kill-actor-at", "-1"], "--kill-actor-at = -1.0 must be a number of seconds >= 0"),
        (["--kill-node-at", "nan"], "--kill-node-at = nan must be a number of seconds >= 0"),
        (["--kill-actor-at", "301"], "--kill-actor-at = 301.0 is after the replayed span"),
        (["--kill-node-at", "5", "--nodes", "1"], "--kill-node-at needs --nodes >= 2"),
    ],
)
def test_bad_fault_flags_are_refused(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["ray-replay", *argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fastplace ray-replay: error: {message}"), err
    assert not (tmp_path / "out").exists()
