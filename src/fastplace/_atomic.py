"""Writing a file so that readers see the old file or the whole new one, never a part."""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "write_atomic"]


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a fresh temporary path next to ``path`` (same suffix, so writers that pick
    the format from the name still do); once the block ends, the file there is fsynced
    and renamed over ``path``. On an error the temporary file is removed."""
    target = Path(path)
    if target.exists() and not target.is_file():
        # Renaming over a directory fails anyway; over a FIFO or a device it would
        # silently replace something that is not ours to replace.
        strerror = "Is a directory" if target.is_dir() else "exists and is not a regular file"
        raise OSError(errno.EEXIST, strerror, str(target))
    temporary = target.with_name(f".{target.name}-{secrets.token_hex(6)}-tmp{target.suffix}")
    # O_EXCL: the name is ours alone; mode 0o666 less the umask, as open() would give.
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield temporary
        with open(temporary, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Writes ``data`` (text as UTF-8) to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data.encode() if isinstance(data, str) else data)
