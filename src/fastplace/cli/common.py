"""Small helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import os
import stat

__all__ = ["positive_int", "regular_file", "writable_file"]


def positive_int(text: str) -> int:
    """argparse type: an integer > 0 (underscores allowed, as in 10_000)."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def regular_file(path: str | os.PathLike[str], what: str) -> None:
    """Raises CommandError unless ``path`` is a regular file (not missing, a directory,
    a FIFO or a device, which would block a reader or mean nothing as input)."""
    from fastplace.cli import CommandError

    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise CommandError(f"cannot read {what} {path}: {error.strerror}") from None
    if stat.S_ISDIR(mode):
        raise CommandError(f"cannot read {what} {path}: Is a directory")
    if not stat.S_ISREG(mode):
        raise CommandError(f"cannot read {what} {path}: not a regular file")


def writable_file(path: str | os.PathLike[str], what: str) -> None:
    """Raises CommandError unless ``path`` can be written as a file: checked before a
    long run, so that a typo in an output path fails at once, not at the end."""
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
