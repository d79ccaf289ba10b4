"""Resource dimensions, what a request for them may be, and Lambda-style CPU from memory.

:func:`as_request` is the one check of a container request in Python: the allocator,
the simulator's models and policies and the Ray engine's deployments all go through
it, and it accepts exactly what :meth:`fastplace.Cluster.place` accepts (the rules of
``cpp/bindings/request_conversion.hpp``; tests/test_request_validation.py checks the
two against each other), so no entry point books what another would refuse.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_RESOURCES",
    "MB_PER_VCPU",
    "as_amount",
    "as_request",
    "cpu_for_memory",
    "request_for_memory",
]

#: The two dimensions every container asks for: memory in MB and CPU in millicores.
DEFAULT_RESOURCES: tuple[str, ...] = ("memory_mb", "cpu_millis")

#: AWS Lambda grants one full vCPU (1,000 millicores) at 1,769 MB of memory and CPU
#: in proportion to memory below and above that.
MB_PER_VCPU = 1769

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# The core refuses floats from 9.2e18 on (a round number just below 2**63, the first
# float int64 cannot hold); the same limit here keeps the two in agreement.
_FLOAT_LIMIT = 9.2e18


def _type_name(value: object) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def _convert_amount(value: object, label: str) -> int:
    """One amount as an int, any sign; the core's conversion rules for one element."""
    if type(value) is int:
        number = value
    elif isinstance(value, bool | np.bool_):
        raise TypeError(f"{label} must be an integer, got {_type_name(value)}")
    elif isinstance(value, float):  # also numpy.float64, a float subclass
        if not math.isfinite(value):
            raise ValueError(f"{label} = {value!r} is not finite")
        if value != math.floor(value):
            raise ValueError(f"{label} = {value!r} is not a whole number")
        if abs(value) >= _FLOAT_LIMIT:
            raise ValueError(f"{label} is too large for int64")
        return int(value)
    elif hasattr(type(value), "__index__"):  # numpy integers, IntEnum members, 0-d arrays
        try:
            number = operator.index(value)  # type: ignore[arg-type]
        except TypeError:  # a 0-d float or bool array
            raise TypeError(
                f"{label} = {value!r} must be an integer or a whole float, got {_type_name(value)}"
            ) from None
    elif isinstance(value, np.floating):  # float32, float16, longdouble scalars
        return _convert_amount(float(value), label)
    else:
        raise TypeError(f"{label} must be a number, got {_type_name(value)}")
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise ValueError(f"{label} is too large for int64")
    return number


def as_amount(value: object, name: str) -> int:
    """One resource amount (a request's or a capacity's element) as an int >= 0.

    Takes what :meth:`fastplace.Cluster.place` takes in a request: ints, numpy
    integers, and finite whole floats; bools, fractional floats, text and anything
    else raise TypeError or ValueError naming ``name`` and the value.
    """
    number = _convert_amount(value, name)
    if number < 0:
        raise ValueError(f"{name} = {number} must be >= 0")
    return number


def as_request(
    request: object, resources: Sequence[str] = DEFAULT_RESOURCES, *, name: str = "request"
) -> list[int]:
    """``request`` as a list of ``len(resources)`` ints >= 0, one per resource.

    Accepts exactly what :meth:`fastplace.Cluster.place` accepts (a list, tuple or other
    ordered sequence, or a 1-D integer or float array; each element as
    :func:`as_amount`), except that bytes-like objects (``bytearray``, ``memoryview``)
    are refused like ``bytes``. Raises TypeError or ValueError naming ``name``, the
    element's index and resource, and the value. A list of plain ints in range is
    returned as it is, not copied.
    """
    if type(request) is list and len(request) == len(resources):
        # The common case, plain ints in range: one pass, no labels, no copy (this runs
        # on every allocator decision, whose greedy path takes ~0.6 us in all).
        for value in request:
            if type(value) is not int or not 0 <= value <= _INT64_MAX:
                break
        else:
            return request
    dims = len(resources)
    values: Any
    if type(request) is list or type(request) is tuple:
        values = request
    elif isinstance(request, str | bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be a sequence of numbers, got {_type_name(request)}")
    elif isinstance(request, np.ndarray):
        if request.ndim != 1 or request.shape[0] != dims:
            raise ValueError(f"{name} has shape {request.shape}, expected ({dims},)")
        kind = request.dtype.kind
        if kind == "u" and request.size and int(request.max()) > _INT64_MAX:
            dim = int(np.argmax(request > _INT64_MAX))
            raise ValueError(f"{name}[{dim}] ({resources[dim]}) is too large for int64")
        if kind in "iu":
            values = request.astype(np.int64).tolist()
        elif kind == "f":
            values = list(request)
        else:
            raise TypeError(f"{name} must hold numbers, got dtype {request.dtype}")
    elif isinstance(request, dict) or not hasattr(type(request), "__getitem__"):
        # Sets, dicts and generators iterate, but in no order a resource can rely on.
        raise TypeError(f"{name} must be a sequence of {dims} numbers, got {_type_name(request)}")
    else:
        try:
            values = list(request)  # type: ignore[call-overload]
        except TypeError:
            raise TypeError(
                f"{name} must be a sequence of {dims} numbers, got {_type_name(request)}"
            ) from None
    if len(values) != dims:
        raise ValueError(f"{name} has {len(values)} values, expected {dims}")
    labels = [f"{name}[{d}] ({resource})" for d, resource in enumerate(resources)]
    amounts = [_convert_amount(value, label) for value, label in zip(values, labels, strict=True)]
    for amount, label in zip(amounts, labels, strict=True):
        if amount < 0:
            raise ValueError(f"{label} = {amount} must be >= 0")
    return amounts


@overload
def cpu_for_memory(memory_mb: int | float, *, mb_per_vcpu: float = MB_PER_VCPU) -> int: ...
@overload
def cpu_for_memory(
    memory_mb: npt.ArrayLike, *, mb_per_vcpu: float = MB_PER_VCPU
) -> npt.NDArray[np.int64]: ...


def cpu_for_memory(
    memory_mb: npt.ArrayLike, *, mb_per_vcpu: float = MB_PER_VCPU
) -> int | npt.NDArray[np.int64]:
    """CPU millicores a container of ``memory_mb`` gets, Lambda style.

    ``cpu_millis = round(memory_mb * 1000 / mb_per_vcpu)``, so 1,769 MB gives 1,000.
    Accepts a scalar (returns ``int``) or an array (returns an int64 array) of amounts
    as a request holds them (:func:`as_amount`: no bools, no fractional megabytes).
    """
    if (
        isinstance(mb_per_vcpu, bool)
        or not isinstance(mb_per_vcpu, int | float)
        or not math.isfinite(mb_per_vcpu)
        or mb_per_vcpu <= 0
    ):
        raise ValueError(f"mb_per_vcpu = {mb_per_vcpu!r} must be a finite number > 0")
    if not isinstance(memory_mb, np.ndarray) and np.ndim(memory_mb) == 0:
        memory = np.asarray(as_amount(memory_mb, "memory_mb"))
    else:
        memory = _memory_array(memory_mb)
    millis = np.floor(memory.astype(np.float64) * 1000.0 / mb_per_vcpu + 0.5).astype(np.int64)
    if memory.ndim == 0:
        return int(millis)
    return millis


def _memory_array(memory_mb: npt.ArrayLike) -> npt.NDArray[Any]:
    """An array of container memory sizes, held to :func:`as_amount`'s rules."""
    memory = np.asarray(memory_mb)
    if memory.dtype.kind not in "iuf":
        raise TypeError(f"memory_mb must hold integers, got dtype {memory.dtype}")
    if memory.dtype.kind == "f":
        bad = ~np.isfinite(memory) | (memory != np.floor(memory))
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"memory_mb{list(where)} = {memory[where]} is not a whole number")
    negative = memory < 0
    if negative.any():
        where = tuple(int(i) for i in np.argwhere(negative)[0])
        raise ValueError(f"memory_mb{list(where)} = {memory[where]} must be >= 0")
    return memory


def request_for_memory(memory_mb: object, *, name: str = "memory_mb") -> list[int]:
    """A Lambda-style container request, ``[memory_mb, cpu_for_memory(memory_mb)]``
    (for :data:`DEFAULT_RESOURCES`); ``memory_mb`` is checked as :func:`as_amount`."""
    memory = as_amount(memory_mb, name)
    return [memory, cpu_for_memory(memory)]
