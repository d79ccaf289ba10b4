"""Writing a file so that readers see the old file or the whole new one, never a part,
and so that a file once written survives a crash of the machine.

Every file fastplace writes goes through here. A write:

1. creates a temporary file with a unique name (``.<name>-<12 hex>-tmp<suffix>``) in the
   target's folder (same file system, so the rename below is atomic), with ``O_EXCL``:
   concurrent writers never share one;
2. lets the caller fill it, then fsyncs it (the data is on disk before its name is);
3. renames it over the target (``os.replace``: atomic, the last writer wins);
4. fsyncs the folder (the new name itself is on disk).

One kind of file skips the two fsyncs (``durable=False``): a node cache's blocks, which
are checked against their SHA-256 address on every read, so a block a crash lost or
tore is fetched again, never used; a fsync per block would cost more than the fetch.

A writer that crashes leaves its temporary behind. Readers never see one (they open the
target's own name, and directory listings skip them with :func:`is_temporary`). The rule
for cleaning them: a temporary not modified for :data:`STALE_AFTER_S` (an hour) is a
dead writer's, and the next write into that folder removes it. A live writer's
temporary is younger (its writes touch it), so it is left alone. Each process looks at
a folder at most once every :data:`SCAN_EVERY_S`, so a store writing thousands of blocks
into one folder does not list it thousands of times.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "SCAN_EVERY_S",
    "STALE_AFTER_S",
    "atomic_file",
    "atomic_path",
    "clean_stale_temporaries",
    "fsync_directory",
    "is_temporary",
    "make_directories",
    "open_real_folder",
    "write_atomic",
    "write_atomic_in",
]

STALE_AFTER_S = 3600.0
"""A temporary untouched this long (seconds) belongs to a writer that died."""
SCAN_EVERY_S = 60.0
"""How often (seconds) one process looks for stale temporaries in one folder."""

_TEMPORARY = re.compile(r"\..+-[0-9a-f]{12}-tmp(\.[^/]*)?")
_last_scan: dict[str, float] = {}
_scan_lock = threading.Lock()


def is_temporary(name: str | os.PathLike[str]) -> bool:
    """Whether a file name (or path) is one of this module's temporaries."""
    return _TEMPORARY.fullmatch(os.path.basename(os.fspath(name))) is not None


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Makes the folder's entries (names created, renamed or removed) durable."""
    if os.name == "nt":  # Windows cannot open a folder; its renames are journalled
        return
    handle = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def make_directories(directory: str | os.PathLike[str]) -> Path:
    """``mkdir -p``, fsyncing the parent of every folder it creates (a file renamed into
    a new folder is not durable until the folder's own name is)."""
    folder = Path(directory)
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for created in reversed(missing):
        try:
            created.mkdir()
        except FileExistsError:
            if not created.is_dir():
                raise
            continue  # another writer made it: it fsyncs the parent
        fsync_directory(created.parent)
    return Path(directory)


def clean_stale_temporaries(
    directory: str | os.PathLike[str], *, now: float | None = None, force: bool = False
) -> int:
    """Removes temporaries in ``directory`` untouched for :data:`STALE_AFTER_S`; returns
    how many. Without ``force``, does nothing if this process looked within
    :data:`SCAN_EVERY_S`."""
    folder = os.path.abspath(directory)
    if not force and not _time_to_scan(folder):
        return 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    return _remove_stale(entries, None, time.time() if now is None else now)


def _time_to_scan(key: str) -> bool:
    """True at most once every SCAN_EVERY_S per folder and process."""
    clock = time.monotonic()
    with _scan_lock:
        if clock - _last_scan.get(key, -SCAN_EVERY_S) < SCAN_EVERY_S:
            return False
        _last_scan[key] = clock
    return True


def _remove_stale(entries: list[os.DirEntry[str]], folder: int | None, wall: float) -> int:
    """Unlinks the stale temporaries among ``entries`` (relative to the descriptor
    ``folder`` when given, else by their paths); returns how many."""
    removed = 0
    for entry in entries:
        if not is_temporary(entry.name):
            continue
        try:
            if wall - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S:
                if folder is None:
                    os.unlink(entry.path)
                else:
                    os.unlink(entry.name, dir_fd=folder)
                removed += 1
        except FileNotFoundError:  # another writer cleaned it first
            pass
    return removed


def _check_target(target: Path) -> None:
    if target.exists() and not target.is_file():
        # Renaming over a directory fails anyway; over a FIFO or a device it would
        # silently replace something that is not ours to replace.
        strerror = "Is a directory" if target.is_dir() else "exists and is not a regular file"
        raise OSError(errno.EEXIST, strerror, str(target))


def _temporary_name(name: str) -> str:
    """A fresh temporary's name for the file ``name`` (same suffix: writers that pick
    the format from the name still do); :func:`is_temporary` recognises it."""
    return f".{name}-{secrets.token_hex(6)}-tmp{os.path.splitext(name)[1]}"


def _create_temporary(target: Path) -> tuple[Path, int]:
    temporary = target.with_name(_temporary_name(target.name))
    # O_EXCL: the name is ours alone; mode 0o666 less the umask, as open() would give.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    return temporary, os.open(temporary, flags, 0o666)


def _publish(temporary: Path, target: Path, durable: bool) -> None:
    os.replace(temporary, target)
    if durable:
        fsync_directory(target.parent)
    clean_stale_temporaries(target.parent)


@contextmanager
def atomic_file(path: str | os.PathLike[str], *, durable: bool = True) -> Iterator[BinaryIO]:
    """Yields a binary file open for writing; once the block ends, its content replaces
    ``path`` atomically and durably (see the module docstring). On an error the
    temporary file is removed and ``path`` is left as it was.

    ``durable=False`` skips both fsyncs (the write stays atomic). Only for files whose
    every read checks the content against a cryptographic address, so that a file a
    crash tore is fetched again, never used: the node caches of the model store, where
    a fsync per block would cost more than fetching the block."""
    target = Path(path)
    _check_target(target)
    temporary, handle = _create_temporary(target)
    try:
        with os.fdopen(handle, "wb") as file:
            yield file
            if durable:
                file.flush()
                os.fsync(file.fileno())
        _publish(temporary, target, durable)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a fresh temporary path next to ``path`` (same suffix, so writers that pick
    the format from the name still do) for writers that want a name, not a file; once
    the block ends, the file there replaces ``path`` as :func:`atomic_file` does."""
    target = Path(path)
    _check_target(target)
    temporary, handle = _create_temporary(target)
    os.close(handle)
    try:
        yield temporary
        with open(temporary, "rb+") as file:
            os.fsync(file.fileno())
        _publish(temporary, target, durable=True)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomic(
    path: str | os.PathLike[str],
    data: str | bytes | bytearray | memoryview,
    *,
    durable: bool = True,
) -> None:
    """Writes ``data`` (text as UTF-8) to ``path`` through :func:`atomic_file`."""
    with atomic_file(path, durable=durable) as file:
        file.write(data.encode() if isinstance(data, str) else data)


# ---- writing inside a folder held open ------------------------------------------------
# A folder checked to be real (not a symlink) and then written to by path can be swapped
# for a symlink in between, and the write then lands wherever the link points. Writers
# into folders other processes can write to (the model store, node caches) open the
# folder once and do every step relative to that descriptor instead: a swap afterwards
# moves the name, not the folder they write into.

_FOLDER_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)


def open_real_folder(path: str | os.PathLike[str]) -> int:
    """A descriptor of the folder at ``path`` itself: OSError (ENOTDIR or ELOOP) if
    ``path`` is a symlink, a file or anything but a folder; FileNotFoundError if it is
    missing. The caller closes it."""
    handle = os.open(path, _FOLDER_FLAGS)
    if not stat.S_ISDIR(os.fstat(handle).st_mode):  # O_DIRECTORY unsupported
        os.close(handle)
        raise OSError(errno.ENOTDIR, "Not a directory", os.fspath(path))
    return handle


def write_atomic_in(
    folder: int,
    name: str,
    data: str | bytes | bytearray | memoryview,
    *,
    durable: bool = True,
    key: str = "",
) -> None:
    """:func:`write_atomic` of ``name`` inside the folder open as descriptor ``folder``
    (from :func:`open_real_folder`): temporary, fsync, rename and folder fsync all
    relative to it. What is at ``name`` is replaced whatever it is (a symlink there is
    replaced, never written through), except a folder (IsADirectoryError). ``key``
    (the folder's path) throttles the cleaning of stale temporaries there as
    :func:`clean_stale_temporaries` does; "" skips it."""
    if os.sep in name or name in ("", ".", ".."):
        raise ValueError(f"name {name!r} must be a plain file name")
    temporary = _temporary_name(name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    handle = os.open(temporary, flags, 0o666, dir_fd=folder)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data.encode() if isinstance(data, str) else data)
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=folder)
        raise
    if durable:
        os.fsync(folder)
    if key and _time_to_scan(os.path.abspath(key)):
        with os.scandir(folder) as entries:
            stale = list(entries)
        _remove_stale(stale, folder, time.time())
