"""The CLI's input helpers: files opened without blocking and read up to the size they
had, and the memory a command may plan for (cli/files.py, cli/memory.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from child_process import child_env
from fastplace.cli import CommandError
from fastplace.cli import files as cli_files
from fastplace.cli import memory as cli_memory
from fifo_guard import fifo


def test_a_file_is_read_up_to_the_size_it_had_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "growing.bin"
    path.write_bytes(b"a" * 1000)
    with cli_files.input_file(path, "NEW") as file:
        with open(path, "ab") as writer:  # another process appends meanwhile
            writer.write(b"b" * 5000)
        assert file.size == 1000
        with file.stream() as first, file.stream() as second:
            assert second.read(10) == b"a" * 10  # each stream has its own position
            assert first.read() == b"a" * 1000
            assert second.read() == b"a" * 990


def test_a_file_cut_short_meanwhile_ends_where_it_ends(tmp_path: Path) -> None:
    path = tmp_path / "shrinking.bin"
    path.write_bytes(b"a" * 1000)
    with cli_files.input_file(path, "OLD") as file:
        path.write_bytes(b"b" * 10)  # truncated and rewritten in place
        with file.stream() as stream:
            assert stream.read() == b"b" * 10


def test_a_fifo_swapped_in_after_the_stat_is_refused_without_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stat() check passes (as if the path was a regular file then); the open must
    # not wait for a writer and the descriptor's fstat() must refuse it.
    monkeypatch.setattr(cli_files, "regular_file", lambda *args, **kwargs: 0)
    with fifo(tmp_path / "pipe") as pipe:
        with pytest.raises(CommandError, match=r"pipe: not a regular file \(a FIFO\)"):
            with cli_files.input_file(pipe, "OLD"):
                pass


def test_text_that_is_not_utf8_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "x.vbp"
    path.write_bytes(b"2\n10 10\n1\n3 \xe9 1\n")
    with cli_files.input_file(path, "FILE.vbp") as file:
        with pytest.raises(CommandError, match=r"x.vbp:4:3: not UTF-8 text \(byte 0xe9\)"):
            file.read_text()


def test_require_memory_says_the_estimate_and_its_formula(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli_memory, "available_memory", lambda: 1 << 30)
    cli_memory.require_memory("--servers 10", 1 << 30, "1 B per byte")  # just fits
    with pytest.raises(CommandError) as refused:
        cli_memory.require_memory("--servers 20", (1 << 30) + 1, "1 B per byte")
    assert str(refused.value) == (
        "--servers 20 would need about 1.0 GiB of memory (1 B per byte); only 1.0 GiB is available"
    )
    monkeypatch.setattr(cli_memory, "available_memory", lambda: None)  # unknown: no check
    cli_memory.require_memory("--servers 30", 1 << 60, "1 B per byte")


def test_available_memory_counts_the_address_space_limit(tmp_path: Path) -> None:
    code = (
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
        "from fastplace.cli.memory import available_memory\n"
        "print(available_memory())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), check=True
    )
    assert 0 < int(done.stdout) < 3 << 30  # the limit less what the interpreter maps


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1,023 B"),
        (1536, "1.5 KiB"),
        (5 << 40, "5.0 TiB"),
        (1 << 62, "4,096.0 PiB"),
    ],
)
def test_format_bytes(size: int, text: str) -> None:
    assert cli_memory.format_bytes(size) == text
