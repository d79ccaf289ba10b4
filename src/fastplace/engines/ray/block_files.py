"""Content-addressed block files: SHA-256 addresses, the folders that hold them, and
reads that hand out bytes only when they match their address.

A block's address is the SHA-256 of its bytes, as 64 lowercase hex digits. The model
store is shared by several model owners, so its addresses must be a hash nobody can
collide on purpose: with xxh3-64 (what :mod:`fastplace.blocks` uses to compare model
files, where speed matters and nothing is trusted) one owner could craft a block that
another owner's model then loads.

A :class:`BlockFolder` keeps ``<root>/<first 2 hex digits>/<address>``; the model store
and every node cache are one. Neither is trusted: disks rot, and other processes on a
node write there. So:

- an address is checked to be 64 hex digits before it becomes a path: a manifest that
  names ``../x`` or an absolute path names no file;
- the root is resolved once, a ``<hh>`` subfolder must be a real folder (a symbolic link
  there is never followed) and block files are opened with ``O_NOFOLLOW``, so no lookup
  leaves the root;
- :meth:`BlockFolder.read_into` accepts a file only if it is a regular file of exactly
  the expected size whose SHA-256 is the address. Callers repair what it refuses.

Writes go through :mod:`fastplace._atomic` (unique temporary, fsync, rename, fsync of
the folder).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from fastplace._atomic import is_temporary, make_directories, open_real_folder, write_atomic_in

__all__ = [
    "ADDRESS_HEX_DIGITS",
    "BlockFolder",
    "CorruptBlock",
    "Repairs",
    "block_address",
    "check_address",
    "index_key",
]

ADDRESS_HEX_DIGITS = 64
_ADDRESS = re.compile(r"[0-9a-f]{64}")
_SUBFOLDER = re.compile(r"[0-9a-f]{2}")
NOT_A_BLOCK_FILE = -1
"""What :meth:`BlockFolder.size` says of a symlink, folder, FIFO ... where a block belongs."""

# O_NONBLOCK: a FIFO planted where a block belongs must not block the open.
_READ_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)) | getattr(
    os, "O_BINARY", 0
)


class CorruptBlock(OSError):
    """A block's bytes do not match its address (damaged, truncated, extended, replaced)."""


def block_address(data: bytes | bytearray | memoryview) -> str:
    """The address of a block: SHA-256 of its bytes, 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def check_address(address: object, what: str = "block address") -> str:
    """``address`` if it is 64 lowercase hex digits, else ValueError naming it: an
    address becomes a file name, so nothing else may pass."""
    if not isinstance(address, str) or _ADDRESS.fullmatch(address) is None:
        raise ValueError(f"{what} {address!r} is not a SHA-256 address (64 lowercase hex digits)")
    return address


def index_key(address: str) -> int:
    """The 64-bit key fastplace's :class:`~fastplace.BlockIndex` knows a block by (the
    address's first 8 bytes). The index only plans placements: two blocks sharing a
    key make a plan slightly wrong, never a served byte, since serving checks the whole
    address."""
    return int(check_address(address)[:16], 16)


@dataclass
class Repairs:
    """Bad blocks found and replaced with good bytes: a counter safe across threads."""

    blocks: int = 0
    bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, size: int) -> None:
        with self._lock:
            self.blocks += 1
            self.bytes += size


class BlockFolder:
    """Block files under one root folder, named by their addresses."""

    def __init__(self, root: str | os.PathLike[str], *, durable: bool = True) -> None:
        """The folder ``root`` (created if missing), resolved now: a later swap of one
        of its parents for a symlink does not move it. ``durable=False`` writes without
        fsync (a cache: every read is checked, see :mod:`fastplace._atomic`)."""
        self.root = make_directories(root).resolve()
        self.durable = durable

    def path(self, address: str) -> Path:
        """Where the block with this address lives (ValueError for a bad address)."""
        check_address(address)
        return self.root / address[:2] / address

    def _subfolder(self, address: str) -> Path | None:
        """The real ``<hh>`` folder of ``address``; None if it is missing or is not a real
        folder. (Reads check what they open; :meth:`write` holds the folder open.)"""
        folder = self.path(address).parent
        try:
            return folder if stat.S_ISDIR(os.lstat(folder).st_mode) else None
        except FileNotFoundError:
            return None

    def size(self, address: str) -> int | None:
        """The size of the block's file; None if there is none; NOT_A_BLOCK_FILE if what
        is there is not a regular file in a real subfolder. Does not read it."""
        folder = self.path(address).parent
        # One look at the folder: missing is "no block", anything but a real folder is
        # "not a block file". (Two looks raced with a writer creating the folder and
        # reported a fresh store's block as damaged.)
        try:
            if not stat.S_ISDIR(os.lstat(folder).st_mode):
                return NOT_A_BLOCK_FILE
        except FileNotFoundError:
            return None
        try:
            info = os.lstat(folder / address)
        except FileNotFoundError:
            return None
        return info.st_size if stat.S_ISREG(info.st_mode) else NOT_A_BLOCK_FILE

    def read_into(self, address: str, view: memoryview) -> bool:
        """Fills ``view`` with the block and says whether it is good: a regular file of
        exactly ``len(view)`` bytes whose SHA-256 is ``address``. False (``view``
        undefined) for a missing, damaged or foreign file."""
        return self.fill(address, view) and block_address(view) == address

    def fill(self, address: str, view: memoryview) -> bool:
        """:meth:`read_into` without the SHA-256 (the caller must check it, e.g. in
        another thread): True if a regular file of exactly ``len(view)`` bytes was read."""
        folder = self._subfolder(address)
        if folder is None:
            return False
        try:
            handle = os.open(folder / address, _READ_FLAGS)
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.ELOOP, errno.EISDIR, errno.ENXIO):
                return False
            raise
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode) or info.st_size != len(view):
            os.close(handle)
            return False
        with open(handle, "rb", buffering=0, closefd=True) as file:
            filled = 0
            while filled < len(view):
                count = file.readinto(view[filled:])
                if not count:
                    return False  # shrank while we read
                filled += count
            return not file.read(1)  # False if it grew while we read

    def read(self, address: str, size: int) -> bytes | None:
        """The block's ``size`` bytes if they are good (see :meth:`read_into`), else None."""
        data = bytearray(size)
        return bytes(data) if self.read_into(address, memoryview(data)) else None

    def write(self, address: str, data: bytes | bytearray | memoryview) -> None:
        """Stores ``data`` (the caller has checked it is the block ``address``) atomically,
        replacing whatever was there (a symlink, folder or FIFO included). The ``<hh>``
        folder is held open while the block is written into it (see
        :func:`fastplace._atomic.write_atomic_in`): a symlink planted in its place
        meanwhile does not redirect the write."""
        folder = self._open_subfolder(address)
        try:
            try:
                mode = os.stat(address, dir_fd=folder, follow_symlinks=False).st_mode
            except FileNotFoundError:
                mode = stat.S_IFREG
            if stat.S_ISDIR(mode):
                shutil.rmtree(address, dir_fd=folder)  # does not follow the links inside
            # A symlink, FIFO, socket ... is replaced by the rename, never written through.
            key = str(self.path(address).parent)
            write_atomic_in(folder, address, data, durable=self.durable, key=key)
        finally:
            os.close(folder)

    def _open_subfolder(self, address: str) -> int:
        """The ``<hh>`` folder of ``address`` held open, made if missing; a symlink or
        file in its place is removed (never followed) and a real folder made."""
        folder = self.path(address).parent
        error: OSError | None = None
        for _ in range(3):  # a process replanting a link each time gets an error
            try:
                return open_real_folder(folder)
            except FileNotFoundError as missing:
                error = missing
            except OSError as other:
                if other.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                error = other
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(folder)  # planted or damaged: replaced
            make_directories(folder)
        assert error is not None
        raise error

    def remove(self, address: str) -> int:
        """Deletes the block's file if there is one; returns the bytes it held (0 for
        anything but a regular file, which is removed all the same)."""
        folder = self._subfolder(address)
        if folder is None:
            return 0
        target = folder / address
        try:
            info = os.lstat(target)
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(target)
                return 0
            os.unlink(target)
        except FileNotFoundError:
            return 0
        return info.st_size if stat.S_ISREG(info.st_mode) else 0

    def addresses(self) -> set[str]:
        """Every address with a regular file in a real subfolder (temporaries, symlinks
        and stray names are not blocks)."""
        found = set()
        for folder in os.scandir(self.root):
            if _SUBFOLDER.fullmatch(folder.name) is None or not folder.is_dir(
                follow_symlinks=False
            ):
                continue
            for entry in os.scandir(folder.path):
                if (
                    _ADDRESS.fullmatch(entry.name)
                    and entry.name.startswith(folder.name)
                    and not is_temporary(entry.name)
                    and entry.is_file(follow_symlinks=False)
                ):
                    found.add(entry.name)
        return found
