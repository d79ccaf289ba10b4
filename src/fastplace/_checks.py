"""Checks of scalar integer arguments (counts, sizes, seeds, indices) for the Python API.

An integer parameter takes a Python ``int`` or a numpy integer (anything with
``__index__``, as ``range`` and the native core's ids do), never a ``bool`` (``True``
is 1 by accident, not by intent) and never a ``float``, even a whole one: ``1.5``
would have to be rounded one way or the other, and accepting ``2.0`` but not ``2.5``
makes a value's type depend on arithmetic upstream. Resource *amounts* are different:
they follow the requests' rules (:func:`fastplace.resources.as_amount`).
"""

from __future__ import annotations

import operator

import numpy as np

__all__ = ["integer"]


def integer(
    value: object, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """``value`` as an ``int``, checked to lie in ``minimum .. maximum`` (either optional).

    Raises TypeError for bools, floats and anything without ``__index__``, and
    ValueError outside the bounds; both messages name ``name`` and the value.
    """
    if isinstance(value, bool | np.bool_) or not hasattr(type(value), "__index__"):
        raise TypeError(f"{name} = {value!r} must be an integer, got {type(value).__name__}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:  # a 0-d float or bool array has __index__ but refuses it
        raise TypeError(
            f"{name} = {value!r} must be an integer, got {type(value).__name__}"
        ) from None
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} = {number} must be >= {minimum}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{name} = {number} must be <= {maximum}")
    return number
