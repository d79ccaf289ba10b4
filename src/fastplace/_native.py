"""Loads the compiled core, with a message that says what to do when it is missing."""

from __future__ import annotations

try:
    from fastplace import _core
except ImportError as error:  # pragma: no cover - exercised only on broken installs
    raise ImportError(
        "fastplace's native extension (fastplace._core) is not built or not importable: "
        f"{error}. Install the package with `pip install .` (it compiles the C++ core), "
        "or run ./dev-build.sh for an in-tree development build."
    ) from error

__all__ = ["_core"]
