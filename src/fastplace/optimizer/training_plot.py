"""The training curve: validation return against the baselines, training return, TD loss.

Readable for any run length: a run of one or a few episodes gets markers (a line
through one point draws nothing), and a panel with nothing to show says why instead
of staying blank. matplotlib is imported only when drawing (extra ``fastplace[cli]``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastplace._atomic import atomic_path
from fastplace._plotting import pyplot

if TYPE_CHECKING:
    from fastplace.optimizer.train import EpisodeStats

__all__ = ["curve_figure", "curve_title", "plot_curve"]

#: Up to this many points per series, each point gets a marker.
MARKERS_UP_TO = 40


def curve_title(episodes: int, decisions: int, seed: int) -> str:
    """The plot's title, e.g. "DQN resource optimizer: 1 episode, 60 decisions, seed 0"."""
    return (
        f"DQN resource optimizer: {_count(episodes, 'episode')}, "
        f"{_count(decisions, 'decision')}, seed {seed}"
    )


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def curve_figure(
    episodes: Sequence[EpisodeStats],
    baselines: dict[str, float],
    title: str,
    *,
    learn_start: int | None = None,
) -> Any:
    """The three-panel matplotlib figure (the caller closes it). Episodes are numbered
    from 1, as the command line reports them. ``learn_start`` (decisions before the
    first gradient step) lets an empty loss panel say when learning would start."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(8, 8), sharex=True)

    validation = [
        (e.episode + 1, e.validation_return) for e in episodes if e.validation_return is not None
    ]
    if validation:
        _series(top, validation, "C0", label="DQN (greedy)")
    for (name, value), colour in zip(baselines.items(), ("C2", "C3", "C4"), strict=False):
        top.axhline(value, linestyle="--", color=colour, label=name)
    if validation or baselines:
        top.legend(fontsize=8, loc="lower right")
    if not validation:
        _empty(top, "no validation run" + ("" if baselines else " (validate_every = 0)"))
    top.set_ylabel("validation return\n(per episode)")
    top.set_title(title, fontsize=10)

    returns = [(e.episode + 1, e.episode_return / max(e.steps, 1)) for e in episodes]
    if returns:
        _series(middle, returns, "0.5")
    else:
        _empty(middle, "no episode finished")
    middle.set_ylabel("training return\nper decision")

    losses = [(e.episode + 1, e.loss) for e in episodes if math.isfinite(e.loss)]
    if losses:
        _series(bottom, losses, "C1")
        bottom.set_yscale("log")
    else:
        decisions = episodes[-1].total_steps if episodes else 0
        why = f"no gradient step in {_count(decisions, 'decision')}"
        if learn_start is not None:
            why += f": learning starts after {learn_start:,}"
        _empty(bottom, why)
    bottom.set_ylabel("TD loss (Huber)")
    bottom.set_xlabel("episode")
    last = episodes[-1].episode + 1 if episodes else 1
    if last <= 10:  # every episode ticked (an integer locator wants two ticks at least)
        bottom.set_xticks(range(1, last + 1))
    else:
        bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_xlim(0.5, last + 0.5)
    figure.tight_layout()
    return figure


def _series(axis: Any, points: Sequence[tuple[float, float]], colour: str, **style: Any) -> None:
    x, y = zip(*points, strict=True)
    marker = "o" if len(points) <= MARKERS_UP_TO else None
    axis.plot(x, y, color=colour, marker=marker, markersize=4, **style)


def _empty(axis: Any, message: str) -> None:
    axis.set_yticks([])  # no scale for data that is not there
    axis.text(
        0.5,
        0.5,
        message,
        transform=axis.transAxes,
        ha="center",
        va="center",
        fontsize=9,
        color="0.4",
    )


def plot_curve(
    episodes: Sequence[EpisodeStats],
    baselines: dict[str, float],
    path: str | os.PathLike[str],
    title: str,
    *,
    learn_start: int | None = None,
) -> None:
    """Draws :func:`curve_figure` into ``path`` (written under a temporary name and
    renamed); MissingExtra naming the extra when matplotlib is missing."""
    figure = curve_figure(episodes, baselines, title, learn_start=learn_start)
    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=110)
    finally:
        pyplot().close(figure)
