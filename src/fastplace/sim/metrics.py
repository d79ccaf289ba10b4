"""What a simulation run measures, and how it is summarised."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MetricsRecorder"]


def _percentile(values: list[float] | list[int], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


@dataclass
class MetricsRecorder:
    """Accumulates one run's measurements; ``summary()`` gives the metric table row."""

    resources: tuple[str, ...]
    capacity_total: np.ndarray[Any, np.dtype[np.int64]]
    sla_s: float
    last_t: float = 0.0
    active_area: float = 0.0
    # Plain floats, not numpy: advance() runs once per event (millions per run at 6,000
    # servers), and numpy's per-call overhead on a 2-element array was most of its cost.
    used_area: list[float] = field(default_factory=list)
    cold_start_s: list[float] = field(default_factory=list)
    #: Per gang started (the containers one request cold-started together): the
    #: slowest container's cold start, what a gang-level runtime reports.
    gang_cold_start_s: list[float] = field(default_factory=list)
    #: Per request that waited (gang cap reached, or no room): seconds waited.
    wait_s: list[float] = field(default_factory=list)
    request_s: list[float] = field(default_factory=list)
    decision_ns: list[int] = field(default_factory=list)
    bytes_downloaded: int = 0
    placements: int = 0
    requests: int = 0
    warm_requests: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    peak_active: int = 0

    def __post_init__(self) -> None:
        self.used_area = [0.0] * len(self.resources)

    def advance(self, t: float, active: int, used: Sequence[int]) -> None:
        """Integrates the time-weighted metrics over [last_t, t)."""
        dt = t - self.last_t
        if dt > 0:
            self.active_area += active * dt
            area = self.used_area
            # int * float in Python is float(int) * float, as numpy computed it: the
            # same doubles, bit for bit.
            for i, amount in enumerate(used):
                area[i] += amount * dt
            self.last_t = t
        if active > self.peak_active:
            self.peak_active = active

    def summary(self, duration_s: float, wall_s: float) -> dict[str, Any]:
        utilisation = (
            np.asarray(self.used_area, dtype=np.float64)
            / duration_s
            / np.maximum(self.capacity_total, 1)
        )
        row: dict[str, Any] = {
            "servers_used_mean": self.active_area / duration_s,
            "servers_used_peak": self.peak_active,
        }
        for name, share in zip(self.resources, utilisation, strict=True):
            row[f"utilisation_{name}"] = float(share)
        row.update(
            requests=self.requests,
            warm_requests=self.warm_requests,
            cold_starts=len(self.cold_start_s),
            cold_start_p50_s=_percentile(self.cold_start_s, 50),
            cold_start_p99_s=_percentile(self.cold_start_s, 99),
            gang_starts=len(self.gang_cold_start_s),
            gang_cold_start_p50_s=_percentile(self.gang_cold_start_s, 50),
            gang_cold_start_p99_s=_percentile(self.gang_cold_start_s, 99),
            waited_requests=len(self.wait_s),
            bytes_downloaded=self.bytes_downloaded,
            request_p50_s=_percentile(self.request_s, 50),
            request_p99_s=_percentile(self.request_s, 99),
            sla_violations=int(np.count_nonzero(np.asarray(self.request_s) > self.sla_s)),
            rejected=sum(self.rejected.values()),
            rejected_reasons=dict(self.rejected),
            decision_p50_ns=_percentile(self.decision_ns, 50),
            decision_p99_ns=_percentile(self.decision_ns, 99),
            placements=self.placements,
            wall_s=wall_s,
        )
        return row
