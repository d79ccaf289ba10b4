"""Similarity-versus-block-size curves, drawn like Fig. 3 of the paper (matplotlib, Agg)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from fastplace.blocks.sizes import format_size

__all__ = ["plot_similarity"]

_STYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "D", "v", "x")


def plot_similarity(
    curves: Mapping[str, Sequence[tuple[int, float]]],
    path: str | os.PathLike[str],
    *,
    title: str = "Model similarity across block sizes",
    ylabel: str = "similar blocks (%)",
) -> None:
    """Draw one line per curve: (block size in bytes, fraction 0..1) points, log2 x axis.

    matplotlib is imported here, with the non-interactive Agg backend, so that nothing
    else in fastplace pays for it (MissingExtra naming the extra ``fastplace[cli]`` when
    it is missing). The format follows the file name (.png, .svg, .pdf); the file is
    written under a temporary name and renamed.
    """
    from fastplace._atomic import atomic_path
    from fastplace._plotting import pyplot

    plt = pyplot()

    figure, axes = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    try:
        ticks: set[int] = set()
        for index, (label, points) in enumerate(curves.items()):
            ordered = sorted(points)
            sizes = [size for size, _ in ordered]
            ticks.update(sizes)
            # Curves often coincide (e.g. two formats, same blocks): vary style and
            # marker so that every one stays visible where they overlap.
            axes.plot(
                sizes,
                [100.0 * value for _, value in ordered],
                linestyle=_STYLES[index % len(_STYLES)],
                marker=_MARKERS[index % len(_MARKERS)],
                markersize=7 - index % 3,
                label=label,
            )
        axes.set_xscale("log", base=2)
        axes.set_xticks(sorted(ticks), [format_size(size) for size in sorted(ticks)])
        axes.minorticks_off()
        axes.set_xlabel("block size (bytes)")
        axes.set_ylabel(ylabel)
        axes.set_ylim(bottom=0)
        axes.set_title(title)
        axes.grid(True, alpha=0.3)
        if len(curves) > 1:
            axes.legend(fontsize="small")
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=120)
    finally:
        plt.close(figure)
