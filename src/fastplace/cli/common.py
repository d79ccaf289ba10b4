"""Small helpers shared by the subcommands."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["console", "positive_int"]


def console(*, stderr: bool = False) -> Console:
    """A rich console (imported lazily: rich is only needed for terminal output)."""
    from rich.console import Console

    return Console(stderr=stderr)


def positive_int(text: str) -> int:
    """argparse type: an integer > 0 (underscores allowed, as in 10_000)."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value
