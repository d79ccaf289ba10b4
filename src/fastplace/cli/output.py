"""What the commands show: tables, notes, "wrote FILE" lines and progress.

Data (tables, JSON) goes to stdout; notes, progress and "wrote FILE" lines go to
stderr, so ``fastplace pack x.vbp --json > summary.json`` stays valid JSON.

rich (extra ``fastplace[cli]``) draws tables and progress bars only where a person
watches, i.e. when the stream is a terminal. Elsewhere, or without rich, tables are
plain aligned text as wide as their widest cell (a CI log must not lose digits to an
80-column cut) and progress is a few plain lines.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from fastplace.extras import EXTRAS

__all__ = [
    "PLOTS_NEED",
    "ProgressTask",
    "Table",
    "can_plot",
    "note",
    "print_table",
    "progress",
    "rich_installed",
    "status",
    "wrote",
]

#: What a missing matplotlib costs, said once by each command that would plot.
PLOTS_NEED = f"plots need matplotlib: pip install 'fastplace[{EXTRAS['matplotlib']}]'"

#: Plain progress lines start once a task has run this long: a log need not say
#: how a one-second job went.
QUIET_SECONDS = 1.0


def rich_installed() -> bool:
    """Whether rich imports (it comes with the extra ``fastplace[cli]``)."""
    try:
        import rich.console  # noqa: F401
    except ImportError:
        return False
    return True


def _rich_on(stream: IO[str]) -> bool:
    """Whether to draw with rich on ``stream``: a terminal, and rich installed."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty()) and rich_installed()


@dataclass
class Table:
    """A titled table of text cells; ``align`` has one letter per column, l or r."""

    title: str
    columns: Sequence[str]
    align: str
    rows: list[Sequence[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.align) != len(self.columns) or set(self.align) - {"l", "r"}:
            raise ValueError(f"align = {self.align!r} needs one l or r per column")

    def add_row(self, *cells: str) -> None:
        """Appends a row: one text cell per column (ValueError otherwise)."""
        if len(cells) != len(self.columns):
            raise ValueError(f"row has {len(cells)} cells, the table {len(self.columns)} columns")
        self.rows.append(cells)

    def plain(self) -> str:
        """The table as aligned text: title, header, a rule, one line per row."""
        widths = [
            max([len(heading), *(len(row[i]) for row in self.rows)])
            for i, heading in enumerate(self.columns)
        ]

        def line(cells: Sequence[str]) -> str:
            padded = (
                cell.rjust(width) if side == "r" else cell.ljust(width)
                for cell, width, side in zip(cells, widths, self.align, strict=True)
            )
            return "  ".join(padded).rstrip()

        rule = "  ".join("-" * width for width in widths)
        return "\n".join([self.title, line(self.columns), rule, *map(line, self.rows)])


def print_table(table: Table) -> None:
    """The table on stdout: rich on a terminal (cells fold, never cut), else plain text."""
    if not _rich_on(sys.stdout):
        print(table.plain())
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    # No vertical rules and no outer padding: about as narrow as the plain table, so
    # that more terminals fit it whole; where one does not, cells fold onto a second
    # line rather than lose digits to an ellipsis.
    # Text(), not str: a cell such as "[x]" is data, not rich markup.
    drawn = RichTable(title=Text(table.title), box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for heading, side in zip(table.columns, table.align, strict=True):
        drawn.add_column(Text(heading), justify="right" if side == "r" else "left", overflow="fold")
    for row in table.rows:
        drawn.add_row(*map(Text, row))
    Console().print(drawn)


def note(message: str) -> None:
    """One line on stderr (dimmed on a terminal)."""
    if _rich_on(sys.stderr):
        from rich.console import Console

        Console(stderr=True).print(message, style="dim", highlight=False, markup=False)
    else:
        print(message, file=sys.stderr)


def wrote(*paths: object) -> None:
    """A "wrote FILE" line on stderr for each file a command wrote."""
    for path in paths:
        print(f"wrote {path}", file=sys.stderr)


def can_plot(skipped: Sequence[object]) -> bool:
    """Whether matplotlib imports; if not, says once (one line) which plots are skipped."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(f"{PLOTS_NEED} (skipped {', '.join(map(str, skipped))})", file=sys.stderr)
        return False
    return True


@contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner with ``message`` on a terminal; otherwise the message, once."""
    if _rich_on(sys.stderr):
        from rich.console import Console

        with Console(stderr=True).status(message):
            yield
    else:
        print(f"{message} ...", file=sys.stderr)
        yield


class ProgressTask:
    """One bar (or line of plain reports) of a :func:`progress` display."""

    def __init__(
        self,
        name: str,
        total: float,
        counter: Callable[[float, float], str],
        reports: int,
        rich: Any | None,
    ) -> None:
        self.name = name
        self.total = total
        self.completed = 0.0
        self._counter = counter
        self._rich = rich
        self._task = None if rich is None else rich.add_task(name, total=total, status="")
        self._started = time.perf_counter()
        self._reports = reports
        self._reported = 0  # plain reports printed so far

    def update(self, completed: float, status: str = "") -> None:
        """Sets how much is done (same unit as total), with an optional status text."""
        self.completed = completed
        if self._rich is not None:
            self._rich.update(self._task, completed=completed, status=status)
            return
        # Plain output: a line each time another 1/reports of the total is done.
        share = completed / self.total if self.total > 0 else 1.0
        due = min(self._reports, int(share * self._reports + 1e-9))
        seconds = time.perf_counter() - self._started
        if due > self._reported and seconds >= QUIET_SECONDS:
            self._reported = due
            text = f"{self.name}: {self._counter(completed, self.total)}"
            if status:
                text += f"  {status}"
            print(f"{text}  ({seconds:.1f} s)", file=sys.stderr, flush=True)

    def advance(self, amount: float, status: str = "") -> None:
        """Adds ``amount`` to what is done (see :meth:`update`)."""
        self.update(self.completed + amount, status)


@contextmanager
def progress(
    counter: Callable[[float, float], str], *, reports: int = 4, transient: bool = True
) -> Iterator[Callable[[str, float], ProgressTask]]:
    """Progress bars on a terminal's stderr, else up to ``reports`` plain lines per task
    (none for the first QUIET_SECONDS).

    Yields ``add(name, total) -> ProgressTask``; ``counter(completed, total)`` is the
    text that says how far a task is ("37.5% of simulated time", "3/30 episodes").
    """
    if not _rich_on(sys.stderr):
        yield lambda name, total: ProgressTask(name, total, counter, reports, None)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Counter(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(counter(task.completed, task.total or 0.0))

    with Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        Counter(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=transient,
    ) as bars:
        yield lambda name, total: ProgressTask(name, total, counter, reports, bars)
