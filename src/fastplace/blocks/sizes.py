"""Byte sizes as people write them: ``"32K"``, ``"1M"``, ``"1.5MiB"``, ``"4096"``.

Units are binary (K = 1024 bytes), as block sizes in the paper and in file systems are.
"""

from __future__ import annotations

import re

__all__ = ["format_size", "parse_size", "parse_sizes"]

_UNITS: dict[str, int] = {
    "": 1,
    "B": 1,
    "K": 1 << 10,
    "KB": 1 << 10,
    "KIB": 1 << 10,
    "M": 1 << 20,
    "MB": 1 << 20,
    "MIB": 1 << 20,
    "G": 1 << 30,
    "GB": 1 << 30,
    "GIB": 1 << 30,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text: str, *, field: str = "size") -> int:
    """Parse one size such as ``"32K"`` into bytes; ValueError naming ``field`` if invalid."""
    match = _SIZE.match(text)
    unit = match.group(2).upper() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(
            f"{field} = {text!r} is not a size (expected e.g. 4096, 32K, 1M or 1.5MiB)"
        )
    value = float(match.group(1)) * _UNITS[unit]
    if value != int(value):
        raise ValueError(f"{field} = {text!r} is not a whole number of bytes")
    if value <= 0:
        raise ValueError(f"{field} = {text!r} must be > 0")
    return int(value)


def parse_sizes(text: str, *, field: str = "sizes") -> list[int]:
    """Parse a comma-separated list such as ``"32K,64K,1M"`` into bytes, keeping order."""
    items = [item for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError(f"{field} = {text!r} lists no sizes")
    return [parse_size(item, field=field) for item in items]


def format_size(size: int) -> str:
    """Shortest exact spelling: 32768 -> ``"32K"``, 1048576 -> ``"1M"``, 1000 -> ``"1000"``."""
    for suffix, unit in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size >= unit and size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)
