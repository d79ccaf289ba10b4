"""Files the commands read and write: checked before the work starts, never waited on.

An input must be a regular file. A FIFO, a device or a directory is refused without
a blocking open: the path is stat()ed first, then opened with O_NONBLOCK and checked
again on the descriptor, so that a path swapped in between cannot make the command
wait for a writer that never comes (nor read /dev/zero until memory runs out).

What is read is bounded: a file is read up to the size it had when it was opened (a
file that grows meanwhile is cut there), and a command that holds a whole file in
memory states a size limit and refuses a larger file before reading a byte of it.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

from fastplace.cli.memory import format_bytes

__all__ = ["InputFile", "input_file", "regular_file", "writable_file"]

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _refuse_mode(mode: int, what: str, path: str | os.PathLike[str]) -> None:
    from fastplace.cli import CommandError

    if stat.S_ISDIR(mode):
        raise CommandError(f"cannot read {what} {path}: Is a directory")
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a plain file")
        raise CommandError(f"cannot read {what} {path}: not a regular file ({kind})")


def _refuse_size(size: int, what: str, path: str | os.PathLike[str], limit: int | None) -> None:
    from fastplace.cli import CommandError

    if limit is not None and size > limit:
        raise CommandError(
            f"{what} {path} is {size:,} bytes ({format_bytes(size)}), more than the limit "
            f"of {limit:,} bytes ({format_bytes(limit)})"
        )


def regular_file(path: str | os.PathLike[str], what: str, *, max_bytes: int | None = None) -> int:
    """The size of ``path``, or CommandError unless it is a regular file (not missing,
    a directory, a FIFO or a device) of at most ``max_bytes``. For files that a library
    opens by name; :func:`input_file` also holds the file open for the reading."""
    from fastplace.cli import CommandError

    try:
        status = os.stat(path)
    except OSError as error:
        raise CommandError(f"cannot read {what} {path}: {error.strerror}") from None
    _refuse_mode(status.st_mode, what, path)
    _refuse_size(status.st_size, what, path, max_bytes)
    return status.st_size


class _Reader(io.RawIOBase):
    """Bytes [0, size) of a descriptor, read with pread: several readers of one
    InputFile each keep their own position, and none reads past ``size``."""

    def __init__(self, fd: int, size: int, name: str) -> None:
        super().__init__()
        self._fd = fd
        self._left = size
        self._offset = 0
        self.name = name  # how fingerprints and errors name the source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self._left)
        if count <= 0:
            return 0
        got = os.preadv(self._fd, [memoryview(buffer).cast("B")[:count]], self._offset)
        self._offset += got
        self._left = self._left - got if got else 0  # a file cut short ends here
        return got


class InputFile:
    """A regular file held open for reading, with its size when it was opened."""

    def __init__(self, path: str, what: str, fd: int, size: int) -> None:
        self.path = path
        self.what = what
        self.fd = fd
        self.size = size

    def stream(self) -> io.BufferedReader:
        """A new binary stream over the file's bytes, from the start."""
        return io.BufferedReader(_Reader(self.fd, self.size, self.path))

    def read_text(self) -> str:
        """The whole file as UTF-8 text; CommandError naming the line and column of the
        first byte that is not UTF-8 (a binary file given where text belongs)."""
        from fastplace.cli import CommandError

        with self.stream() as stream:
            data = stream.read()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            line = data.count(b"\n", 0, error.start) + 1
            column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
            raise CommandError(
                f"{self.what} {self.path}:{line}:{column}: not UTF-8 text (byte "
                f"0x{data[error.start]:02x}); is this a binary file?"
            ) from None


@contextmanager
def input_file(
    path: str | os.PathLike[str], what: str, *, max_bytes: int | None = None
) -> Iterator[InputFile]:
    """Opens ``path`` (named ``what`` in errors, e.g. "FILE.vbp") for reading, or raises
    CommandError if it is missing, unreadable, not a regular file or larger than
    ``max_bytes``; closes it on exit."""
    from fastplace.cli import CommandError

    regular_file(path, what, max_bytes=max_bytes)  # refuses a FIFO before any open()
    try:
        # O_NONBLOCK: if a FIFO took the path's place since the stat, open() returns
        # at once instead of waiting for a writer, and fstat() below refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise CommandError(f"cannot read {what} {path}: {error.strerror}") from None
    try:
        status = os.fstat(fd)
        _refuse_mode(status.st_mode, what, path)
        _refuse_size(status.st_size, what, path, max_bytes)
        os.set_blocking(fd, True)  # a regular file: reads never wait anyway
        yield InputFile(os.fspath(path), what, fd, status.st_size)
    finally:
        os.close(fd)


def writable_file(path: str | os.PathLike[str], what: str) -> None:
    """Raises CommandError unless ``path`` can be written as a file: checked before a
    long run, so that a typo in an output path fails at once, not at the end. An
    existing FIFO or device is refused too (opening it to write would wait for a
    reader, or write somewhere else than a file)."""
    from fastplace.cli import CommandError

    parent = os.path.dirname(os.fspath(path)) or "."
    if not os.path.exists(parent):
        raise CommandError(f"cannot write {what} {path}: no directory {parent}")
    if not os.path.isdir(parent):
        raise CommandError(f"cannot write {what} {path}: {parent} is not a directory")
    if os.path.isdir(path):
        raise CommandError(f"cannot write {what} {path}: Is a directory")
    if os.path.exists(path) and not os.path.isfile(path):
        raise CommandError(f"cannot write {what} {path}: exists and is not a regular file")
