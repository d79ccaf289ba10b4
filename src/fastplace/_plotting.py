"""matplotlib, imported only by the code that draws, with the non-interactive Agg backend."""

from __future__ import annotations

from typing import Any

from fastplace.extras import require

__all__ = ["pyplot"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend; :class:`fastplace.extras.MissingExtra`
    naming the extra ``fastplace[cli]`` when matplotlib is not installed."""
    matplotlib = require("matplotlib", "plotting")
    matplotlib.use("Agg")
    return require("matplotlib.pyplot", "plotting")
