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
from collections.abc import Mapping

import numpy as np

__all__ = ["amount_tuples", "integer", "integer_fields", "integer_tuples"]


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


def integer_fields(config: object, minimums: Mapping[str, int | None]) -> None:
    """Checks the named fields of a (frozen) dataclass with :func:`integer`, the given
    minimum each, and stores the plain ``int``; errors name ``Class.field``."""
    prefix = type(config).__name__
    for field, minimum in minimums.items():
        checked = integer(getattr(config, field), f"{prefix}.{field}", minimum=minimum)
        object.__setattr__(config, field, checked)


def integer_tuples(config: object, fields: tuple[str, ...], *, minimum: int | None) -> None:
    """:func:`integer_fields` for fields that hold a tuple of integers (or None)."""
    prefix = type(config).__name__
    for field in fields:
        values = getattr(config, field)
        if values is not None:
            checked = tuple(
                integer(value, f"{prefix}.{field}[{i}]", minimum=minimum)
                for i, value in enumerate(values)
            )
            object.__setattr__(config, field, checked)


def amount_tuples(config: object, fields: tuple[str, ...]) -> None:
    """Fields that hold a tuple of resource amounts (or None), each checked as a
    request's element is (:func:`fastplace.resources.as_amount`)."""
    from fastplace.resources import as_amount  # resources imports nothing of ours

    prefix = type(config).__name__
    for field in fields:
        values = getattr(config, field)
        if values is not None:
            checked = tuple(
                as_amount(value, f"{prefix}.{field}[{i}]") for i, value in enumerate(values)
            )
            object.__setattr__(config, field, checked)
