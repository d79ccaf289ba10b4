"""Where bytes come from: paths (read in windows), in-memory buffers and binary streams.

Fingerprinting never loads a file whole: paths and streams are read into one reusable
window (16 MiB by default), so a 10 GB model needs tens of MB of memory. Buffers that
are already in memory (bytes, numpy arrays, mmap) are used in place, without a copy.
"""

from __future__ import annotations

import io
import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "DEFAULT_WINDOW",
    "EmptySourceError",
    "Source",
    "SourceReader",
    "describe_source",
    "open_source",
]

DEFAULT_WINDOW = 16 << 20
"""Bytes read from a file per system call batch; the unit of streaming."""

Source: TypeAlias = (
    str | os.PathLike[str] | bytes | bytearray | memoryview | NDArray[Any] | mmap.mmap | IO[bytes]
)
"""What can be fingerprinted: a path, a bytes-like object, a numpy array, an mmap or a
binary stream with ``readinto`` or ``read``."""


class EmptySourceError(ValueError):
    """The source holds no bytes: there is nothing to fingerprint."""


@dataclass
class SourceReader:
    """An opened source: either the whole content in memory, or a stream to read from."""

    name: str
    """How errors and progress name the source (a path, or e.g. ``"<bytes>"``)."""
    size: int | None
    """Total bytes when known in advance (paths, buffers); None for a stream."""
    memory: NDArray[np.uint8] | None
    """The whole content as a read-only uint8 view when it is already in memory."""
    stream: IO[bytes] | None

    def readinto(self, buffer: NDArray[np.uint8]) -> int:
        """Fill ``buffer`` from the stream as far as the data goes; return bytes read.

        Returns fewer than ``len(buffer)`` bytes only at the end of the data.
        """
        if self.stream is None:
            raise TypeError("readinto() needs a stream source; in-memory sources use .memory")
        view = buffer.data.cast("B")
        filled = 0
        readinto = getattr(self.stream, "readinto", None)
        while filled < len(view):
            if readinto is not None:
                got = readinto(view[filled:])
            else:
                data = self.stream.read(len(view) - filled)
                got = len(data)
                view[filled : filled + got] = data
            if not got:
                break
            filled += got
        return filled


def describe_source(source: object) -> str:
    """A short name for messages: the path itself, or the kind of in-memory object."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    name = getattr(source, "name", None)
    if isinstance(name, str):
        return name
    return f"<{type(source).__name__}>"


def _memory_view(source: object, name: str) -> NDArray[np.uint8]:
    if isinstance(source, np.ndarray):
        if not source.flags.c_contiguous:
            raise ValueError(
                f"source {name} is a non-contiguous numpy array; pass np.ascontiguousarray(...)"
            )
        array = source.reshape(-1).view(np.uint8)
    else:
        try:
            view = memoryview(source)  # type: ignore[arg-type]
        except TypeError:
            raise TypeError(
                "source must be a path, bytes-like object, numpy array, mmap or binary stream, "
                f"not {type(source).__name__}"
            ) from None
        if not view.c_contiguous:
            raise ValueError(f"source {name} is a non-contiguous buffer")
        array = np.frombuffer(view.cast("B"), dtype=np.uint8)
    readonly = array.view()
    readonly.flags.writeable = False
    return readonly


@contextmanager
def open_source(source: Source) -> Iterator[SourceReader]:
    """Open ``source`` for reading; the file (if any) is closed on exit.

    Raises EmptySourceError for a source of known size 0, the usual OSError subclasses
    (FileNotFoundError, PermissionError, IsADirectoryError) for unreadable paths, and
    TypeError for objects that hold no bytes.
    """
    name = describe_source(source)
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb", buffering=0) as file:
            size = os.fstat(file.fileno()).st_size
            if size == 0:
                raise EmptySourceError(f"source {name} is empty (0 bytes)")
            yield SourceReader(name=name, size=size, memory=None, stream=file)
        return
    if isinstance(source, (io.IOBase, io.BufferedIOBase)) or (
        hasattr(source, "read") and not isinstance(source, mmap.mmap)
    ):
        yield SourceReader(name=name, size=None, memory=None, stream=source)  # type: ignore[arg-type]
        return
    memory = _memory_view(source, name)
    if memory.size == 0:
        raise EmptySourceError(f"source {name} is empty (0 bytes)")
    yield SourceReader(name=name, size=int(memory.size), memory=memory, stream=None)
