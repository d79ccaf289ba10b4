"""The ``fastplace`` command: one module per subcommand, wired together here."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

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


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line on stderr, as every other error of
    the command is: ``fastplace CMD: error: argument --flag: ...``, status 2. (argparse
    would print the usage first; --help still shows it.) Subcommand parsers are made
    by add_parser with this class too."""

    #: Subcommand name -> its parser (set by build_parser on the top parser).
    commands: Mapping[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


#: Every character str.splitlines() breaks at, spelled as an escape instead.
_LINE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


def one_line(message: str) -> str:
    """``message`` with its line breaks escaped: an error is one line on stderr even
    when it quotes a file name or an argument that holds a newline."""
    return message.translate(_LINE_BREAKS)


def build_parser() -> _Parser:
    parser = _Parser(
        prog="fastplace",
        description="Placement of distributed-inference containers on serverless clusters.",
    )
    from fastplace import __version__

    parser.add_argument("--version", action="version", version=f"fastplace {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(name).add_parser(subparsers)
    parser.commands = subparsers.choices
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``fastplace`` command line (``argv`` without the program name; None:
    ``sys.argv``) and returns the exit status."""
    parser = build_parser()
    try:
        # Known args first, so that a stray argument is reported by the subcommand's
        # parser (prefix "fastplace CMD:") rather than the top one.
        args, extra = parser.parse_known_args(argv)
        if extra:
            parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as done:  # a bad command line (2), or --help / --version (0)
        return done.code if isinstance(done.code, int) else 0
    try:
        status: int = args.run(args)
    except CommandError as error:
        print(f"fastplace {args.command}: error: {one_line(str(error))}", file=sys.stderr)
        return 2
    except MemoryError as error:  # e.g. --servers 10**9: say so instead of a traceback
        detail = f": {one_line(str(error))}" if str(error) else ""
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
