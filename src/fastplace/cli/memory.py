"""Memory a command will need, estimated before the work, against what the machine has.

A command whose memory grows with its input (servers, events, items, blocks) states
its estimate as a formula, calls :func:`require_memory` before it allocates, and so
refuses with the estimate instead of dying of MemoryError, bad_alloc or the OOM killer
minutes later. The estimates are measured peaks (see each formula) rounded up: they
may refuse a run that would just fit, never admit one that is far too big.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

__all__ = ["available_memory", "format_bytes", "require_memory"]


def format_bytes(size: float) -> str:
    """1536 -> ``"1.5 KiB"``; binary units, as memory is counted."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(size) < 1024 or unit == "PiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _meminfo_available() -> int | None:
    """MemAvailable of /proc/meminfo: what the kernel can hand out without swapping."""
    try:
        with open("/proc/meminfo", encoding="ascii") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):  # not POSIX, or not this name
        return None


#: Where each cgroup version keeps the memory limit and usage: (hierarchy line prefix,
#: mount point, limit file, usage file). v1 writes "no limit" as a number near 2**63.
_CGROUPS = (
    ("0::", Path("/sys/fs/cgroup"), "memory.max", "memory.current"),
    ("memory:", Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes", "memory.usage_in_bytes"),
)


def _cgroup_headroom() -> int | None:
    """The smallest limit - usage of this process's memory cgroup and its ancestors:
    in a container the limit, not the host's free memory, is what counts."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as file:
            lines = file.read().splitlines()
    except OSError:
        return None
    headroom: int | None = None
    for line in lines:
        _, _, entry = line.partition(":")  # "ID:CONTROLLERS:PATH"
        for prefix, root, limit_file, usage_file in _CGROUPS:
            if not entry.startswith(prefix):
                continue
            group = root / entry[len(prefix) :].lstrip("/")
            # Inside a cgroup namespace the path may not exist under the mount, whose
            # root is then the group itself: every level that exists is read.
            for directory in (group, *group.parents):
                if not directory.is_relative_to(root):
                    break
                try:
                    limit = (directory / limit_file).read_text().strip()
                    used = int((directory / usage_file).read_text())
                except (OSError, ValueError):
                    continue
                if limit == "max" or not limit.isdigit() or int(limit) >= 2**62:
                    continue
                left = max(0, int(limit) - used)
                headroom = left if headroom is None else min(headroom, left)
    return headroom


def _address_space_headroom() -> int | None:
    """RLIMIT_AS (ulimit -v) minus the address space already mapped, if there is a limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    mapped = 0
    try:
        with open("/proc/self/status", encoding="ascii") as file:
            for line in file:
                if line.startswith("VmSize:"):
                    mapped = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return max(0, soft - mapped)


def available_memory() -> int | None:
    """Bytes this process can still allocate: the least of the machine's available
    memory, its cgroup's headroom and its address-space limit (None: unknown)."""
    known = [
        value
        for value in (_meminfo_available(), _cgroup_headroom(), _address_space_headroom())
        if value is not None
    ]
    return min(known) if known else None


def require_memory(what: str, estimate: float, formula: str) -> None:
    """Raises CommandError if ``what`` (e.g. "--servers 10,000,000") would need more than
    the available memory: ``estimate`` bytes, computed as ``formula`` (said in the error)."""
    from fastplace.cli import CommandError

    available = available_memory()
    if available is not None and estimate > available:
        raise CommandError(
            f"{what} would need about {format_bytes(estimate)} of memory ({formula}); "
            f"only {format_bytes(available)} is available"
        )
