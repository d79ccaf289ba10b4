"""Resource dimensions and Lambda-style CPU from memory."""

from __future__ import annotations

import math
from typing import overload

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_RESOURCES", "MB_PER_VCPU", "cpu_for_memory"]

#: The two dimensions every container asks for: memory in MB and CPU in millicores.
DEFAULT_RESOURCES: tuple[str, ...] = ("memory_mb", "cpu_millis")

#: AWS Lambda grants one full vCPU (1,000 millicores) at 1,769 MB of memory and CPU
#: in proportion to memory below and above that.
MB_PER_VCPU = 1769


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
    Accepts a scalar (returns ``int``) or an array (returns an int64 array).
    """
    if (
        isinstance(mb_per_vcpu, bool)
        or not isinstance(mb_per_vcpu, int | float)
        or not math.isfinite(mb_per_vcpu)
        or mb_per_vcpu <= 0
    ):
        raise ValueError(f"mb_per_vcpu = {mb_per_vcpu!r} must be a finite number > 0")
    memory = np.asarray(memory_mb)
    if memory.dtype.kind not in "iuf":
        raise TypeError(f"memory_mb must be numeric, got dtype {memory.dtype}")
    as_float = memory.astype(np.float64)
    if not np.all(np.isfinite(as_float)):
        raise ValueError(f"memory_mb = {memory_mb!r} is not finite")
    if np.any(as_float < 0):
        raise ValueError(f"memory_mb = {memory_mb!r} must be >= 0")
    millis = np.floor(as_float * 1000.0 / mb_per_vcpu + 0.5).astype(np.int64)
    if memory.ndim == 0:
        return int(millis)
    return millis
