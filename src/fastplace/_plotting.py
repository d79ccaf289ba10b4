"""matplotlib, imported only by the code that draws, with the non-interactive Agg backend."""

from __future__ import annotations

from typing import Any

__all__ = ["MATPLOTLIB_MISSING", "pyplot"]

MATPLOTLIB_MISSING = "plots need matplotlib: pip install 'fastplace[cli]'"


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend; ImportError saying which extra provides it."""
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(MATPLOTLIB_MISSING, name="matplotlib") from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
