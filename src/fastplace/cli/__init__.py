"""The ``fastplace`` command: one module per subcommand, wired together here."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]

# Subcommand modules, each with add_parser(subparsers) and run(args) -> int. They are
# imported when the command line is parsed, so `fastplace place` never loads numba
# or torch for the other subcommands' sake beyond what their modules import at top.
SUBCOMMANDS: tuple[str, ...] = (
    "fastplace.cli.place",
    "fastplace.cli.simulate",
    "fastplace.cli.similarity",
    "fastplace.cli.pack",
    "fastplace.cli.train",
    "fastplace.cli.ray_demo",
    "fastplace.cli.ray_replay",
)


class CommandError(Exception):
    """A user-facing error: printed as one line on stderr, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastplace",
        description="Placement of distributed-inference containers on serverless clusters.",
    )
    from fastplace import __version__

    parser.add_argument("--version", action="version", version=f"fastplace {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``fastplace`` command line (``argv`` without the program name; None:
    ``sys.argv``) and returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except CommandError as error:
        print(f"fastplace {args.command}: error: {error}", file=sys.stderr)
        return 2
    except MemoryError as error:  # e.g. --servers 10**9: say so instead of a traceback
        detail = f": {error}" if str(error) else ""
        print(
            f"fastplace {args.command}: error: out of memory{detail}; ask for less "
            "(fewer servers, requests or a shorter duration)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`fastplace simulate | head`): not an error of ours.
        # Point stdout at /dev/null so that flushing it at exit does not raise again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is not a file (e.g. captured)
            pass
        return 141  # what a shell reports for a process killed by SIGPIPE
    return status


if __name__ == "__main__":
    sys.exit(main())
