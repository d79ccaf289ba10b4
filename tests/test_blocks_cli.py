"""``fastplace similarity``: table, JSON, plot and one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from fastplace.cli import main
from fifo_guard import fifo


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("versions")
    rng = np.random.default_rng(5)
    old = bytearray(rng.bytes(3 << 20))
    new = bytearray(old)
    new[1 << 20 : (1 << 20) + 4096] = rng.bytes(4096)  # one changed page in the middle
    (directory / "v1.bin").write_bytes(old)
    (directory / "v2.bin").write_bytes(new)
    return directory / "v1.bin", directory / "v2.bin"


def test_table(versions: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    old, new = versions
    assert main(["similarity", str(old), str(new), "--block-sizes", "32K,1M"]) == 0
    out = capsys.readouterr().out
    assert "32K" in out and "1M" in out
    assert "99.0 %" in out  # 32K: 95 of 96 blocks unchanged
    assert "66.7 %" in out  # 1M: 2 of 3


@pytest.mark.parametrize("cdc", [False, True])
def test_json_is_all_that_is_printed(
    versions: tuple[Path, Path], capsys: pytest.CaptureFixture[str], cdc: bool
) -> None:
    old, new = versions
    argv = ["similarity", str(old), str(new), "--json"] + (["--cdc"] if cdc else [])
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["block_size"] for row in rows] == [32 << 10 << i for i in range(6)]
    for row in rows:
        assert set(row) == {"block_size", "similar_blocks", "similar_bytes"}
        assert 0.5 < row["similar_bytes"] < 1.0
        assert 0.0 <= row["similar_blocks"] <= 1.0
    if not cdc:
        assert rows[0]["similar_blocks"] == pytest.approx(95 / 96)


def test_plot_writes_a_png_and_says_where(
    versions: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = versions
    figure = tmp_path / "fig3.png"
    assert main(["similarity", str(old), str(new), "--plot", str(figure), "--json"]) == 0
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"wrote {figure}"]
    json.loads(captured.out)  # stdout stays the JSON alone
    assert [p.name for p in tmp_path.iterdir()] == ["fig3.png"]  # no temporary left


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "cannot read NEW .*missing.bin: No such file or directory"),
        ("empty", "NEW .*empty.bin is empty"),
        ("bad-size", "argument --block-sizes: size = '32Q' is not a size"),
        ("zero-size", "argument --block-sizes: size = '0' must be > 0"),
        ("too-big", "block size 4M: OLD .* less than one block"),
        ("directory", "cannot read NEW .*: Is a directory"),
        ("plot-dir", "cannot write --plot .*x.png: no directory .*no$"),
        ("fifo", "cannot read NEW .*pipe.bin: not a regular file"),
    ],
)
def test_errors_are_one_line(
    versions: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    message: str,
) -> None:
    old, new = versions
    (tmp_path / "empty.bin").write_bytes(b"")
    argv = {
        "missing": [str(old), str(tmp_path / "missing.bin")],
        "empty": [str(old), str(tmp_path / "empty.bin")],
        "bad-size": [str(old), str(new), "--block-sizes", "32K,32Q"],
        "zero-size": [str(old), str(new), "--block-sizes", "0"],
        "too-big": [str(old), str(new), "--block-sizes", "1M,4M"],
        "directory": [str(old), str(tmp_path)],
        "fifo": [str(old), str(tmp_path / "pipe.bin")],
        "plot-dir": [
            str(old),
            str(new),
            "--block-sizes",
            "1M",
            "--plot",
            str(tmp_path / "no" / "x.png"),
        ],
    }[case]
    with fifo(tmp_path / "pipe.bin"):  # opening it to read would wait for a writer
        assert main(["similarity", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("fastplace similarity: error: ")
    assert re.search(message, lines[0]), lines[0]
