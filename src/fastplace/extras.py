"""Optional dependencies: which extra of ``pip install fastplace[...]`` brings which module.

``pip install fastplace`` depends on numpy only: placement (``Cluster``, ``BlockIndex``,
``ServerAllocator``), the simulator and the greedy packing policies need nothing else.
The parts that need more import it when first used, through :func:`require`, so a
missing module ends in :class:`MissingExtra` naming the extra to install rather than
in a bare ``No module named 'numba'``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Final

__all__ = ["EXTRAS", "MissingExtra", "require"]

EXTRAS: Final[dict[str, str]] = {
    "numba": "blocks",
    "llvmlite": "blocks",
    "xxhash": "blocks",
    "rich": "cli",
    "matplotlib": "cli",
    "torch": "torch",
    "safetensors": "torch",
    "ray": "ray",
    "prometheus_client": "metrics",
}
"""Top-level module name -> the extra of fastplace that installs it."""


class MissingExtra(ModuleNotFoundError):
    """An optional dependency is not installed; the message says which extra brings it.

    A ``ModuleNotFoundError`` (hence an ``ImportError``), so code that already catches
    those keeps working; ``extra`` is the extra's name, ``name`` the missing module.
    """

    def __init__(self, feature: str, module: str, extra: str) -> None:
        """feature: what needs the module, as the user called it; module: the missing
        module's name; extra: the fastplace extra that installs it."""
        super().__init__(f"{feature} needs {module}: pip install 'fastplace[{extra}]'", name=module)
        self.feature = feature
        self.extra = extra


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` (e.g. ``"numba"`` or ``"matplotlib.pyplot"``) for ``feature``.

    ``feature`` names what needs it, as the user would call it (``"fastplace.blocks"``,
    ``"the 'best' packing policy"``). Raises :class:`MissingExtra` if the module's
    distribution is not installed; any other import failure (a broken install, an
    incompatible version) propagates unchanged, so it is not mistaken for a missing extra.
    """
    top = module.partition(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        raise ValueError(f"module = {module!r} is not an optional dependency of fastplace")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name is None or error.name.partition(".")[0] != top:
            raise
        raise MissingExtra(feature, top, extra) from error
