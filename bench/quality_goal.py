"""The quality goal the optimizer benchmarks judge every policy by, in one place.

Changes are a policy's metric against first fit's on the same run, in percent
(negative is better). Goal (issue 5, kept by issue 16): at least 5% fewer mean active
servers or at least 20% fewer cold-start bytes, and never more than 2% worse on
either. Moonshot (issue 16): at least 30% fewer bytes at no more than +1% servers.
"""

from __future__ import annotations

__all__ = ["MEETS", "NOT_ENOUGH", "WORSE", "goal", "moonshot"]

MEETS, WORSE, NOT_ENOUGH = "meets", "worse", "not enough"


def goal(servers: float, bytes_: float) -> str:
    """MEETS, WORSE (more than 2% worse on servers or bytes) or NOT_ENOUGH."""
    better = servers <= -5.0 or bytes_ <= -20.0
    not_worse = servers <= 2.0 and bytes_ <= 2.0
    if better and not_worse:
        return MEETS
    return NOT_ENOUGH if not_worse else WORSE


def moonshot(servers: float, bytes_: float) -> bool:
    """>= 30% fewer bytes than first fit at <= +1% servers."""
    return bytes_ <= -30.0 and servers <= 1.0
