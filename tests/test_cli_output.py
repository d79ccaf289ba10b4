"""The CLI's output: whole numbers off a terminal, and plain text without rich or matplotlib."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from child_process import child_env, run_cli_without
from fastplace.cli import main
from fastplace.cli.output import PLOTS_NEED, Table
from fastplace.sim.report import TABLE_METRICS

VBP = "3\n10 10 10\n2\n3 3 3 3\n7 7 7 3\n"  # 6 items in 3 bins

ALL_POLICIES = "first_fit,best_fit,dot_product,l2_norm,similarity,locality,random,hybrid"


def test_simulate_table_keeps_every_digit_when_stdout_is_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", "--policies", ALL_POLICIES, "--servers", "30", "--duration", "30"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "…" not in out
    results = json.loads((tmp_path / "metrics.json").read_text())["policies"]
    # Every cell of the table, as formatted, is on the policy's row in full.
    from fastplace.sim.report import table_rows

    lines = out.splitlines()
    for row in table_rows(results):
        line = next(line for line in lines if line.startswith(row[0]))
        assert line.split()[-len(results) :] == row[1:], line
    assert len(lines[0]) > 80 or max(map(len, lines)) > 80  # wider than a terminal default
    assert len(table_rows(results)) == len(TABLE_METRICS)


def test_plain_table_is_aligned_and_never_cut() -> None:
    table = Table("t", ["metric", "a", "b"], "lrr")
    table.add_row("bytes", "12,345,678,901,234,567,890", "1")
    table.add_row("x", "2", "31,337.5")
    lines = table.plain().splitlines()
    assert lines[0] == "t"
    assert lines[3].endswith("12,345,678,901,234,567,890         1")
    assert lines[4].endswith("2  31,337.5")
    assert len({len(line) for line in lines[1:]}) == 1  # right-aligned columns line up
    with pytest.raises(ValueError, match="cells"):
        table.add_row("too", "few")
    with pytest.raises(ValueError, match="align"):
        Table("t", ["a"], "x")


def test_cli_without_rich_prints_plain_tables(tmp_path: Path) -> None:
    (tmp_path / "small.vbp").write_text(VBP)
    done = run_cli_without(["rich"], ["pack", "small.vbp"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "bins used" in done.stdout and done.stdout.count("\n") >= 6
    assert done.stderr == ""

    done = run_cli_without(
        ["rich"],
        ["simulate", "--policies", "first_fit", "--servers", "20", "--duration", "20"],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "servers (mean)" in done.stdout and "first_fit" in done.stdout
    assert "wrote out/metrics.json" in done.stderr
    assert "wrote out/metrics.png" in done.stderr


def test_simulate_without_matplotlib_says_once_that_plots_need_the_extra(
    tmp_path: Path,
) -> None:
    argv = ["simulate", "--policies", "first_fit,random", "--servers", "20", "--duration", "20"]
    done = run_cli_without(["matplotlib"], argv, tmp_path)
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if "matplotlib" in line]
    assert notes == [f"{PLOTS_NEED} (skipped out/metrics.png)"]
    assert "pip install 'fastplace[cli]'" in notes[0]
    assert (tmp_path / "out" / "metrics.json").exists()
    assert not (tmp_path / "out" / "metrics.png").exists()
    assert "first_fit" in done.stdout


def test_similarity_plot_without_matplotlib_prints_the_table(tmp_path: Path) -> None:
    (tmp_path / "old.bin").write_bytes(bytes(range(256)) * 1024)
    (tmp_path / "new.bin").write_bytes(bytes(range(256)) * 1024)
    argv = ["similarity", "old.bin", "new.bin", "--block-sizes", "32K", "--plot", "fig.png"]
    done = run_cli_without(["matplotlib", "rich"], argv, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [f"{PLOTS_NEED} (skipped fig.png)"]
    assert "100.0 %" in done.stdout
    assert not (tmp_path / "fig.png").exists()


def test_library_plots_name_the_extra_without_matplotlib(tmp_path: Path) -> None:

    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None\n"
        "from fastplace.sim.report import plot\n"
        "from fastplace.extras import MissingExtra\n"
        "try:\n"
        "    plot({'a': {}}, 'x.png', 't')\n"
        "except MissingExtra as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), cwd=tmp_path
    )
    assert done.stdout.strip() == "plotting needs matplotlib: pip install 'fastplace[cli]'"
