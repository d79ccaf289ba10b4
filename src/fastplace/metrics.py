"""Prometheus exposition of a :class:`~fastplace.ServerAllocator`'s stats (extra
``fastplace[metrics]``, which installs ``prometheus_client``).

A control plane mounts the allocator in its own registry; the collector reads
``allocator.stats()`` at scrape time, so decisions pay nothing for it::

    from prometheus_client import CollectorRegistry, generate_latest
    from fastplace.metrics import register_allocator_metrics

    registry = CollectorRegistry()
    register_allocator_metrics(allocator, registry)
    text = generate_latest(registry)

Metrics (``prefix`` defaults to ``fastplace``; every series also carries the
collector's constant labels, and ``allocator="NAME"`` when several allocators are
given as a mapping):

- ``fastplace_allocator_decisions_total{source}`` (counter): decisions whose server came
  from ``ro`` or ``greedy``.
- ``fastplace_allocator_greedy_decisions_total{reason}`` (counter): decisions that used
  the greedy server or booked nothing, by ``Decision.reason`` (every reason, zeros too).
- ``fastplace_allocator_fallbacks_total`` (counter): the RO was consulted but the greedy
  server was used (ro_none, ro_error, ro_nan, ro_invalid, ro_late, raced).
- ``fastplace_allocator_ro_latency_seconds`` (histogram): the RO's step per decision;
  bucket bounds ``RO_LATENCY_BOUNDS_NS`` (1 us ... 10 ms) in seconds.
- ``fastplace_allocator_model_swaps_total`` (counter): models swapped in after
  construction (retraining, ``swap_optimizer``).
- ``fastplace_allocator_retrain_errors_total`` (counter): retraining rounds that raised.
- ``fastplace_allocator_ro_backend{backend}`` (gauge): 1 for where the RO runs now
  (``native``, ``python``, ``none``), 0 for the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

try:
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
except ImportError as error:  # the optional extra is missing
    raise ImportError(
        f"fastplace.metrics needs prometheus_client: pip install 'fastplace[metrics]' ({error})"
    ) from error

from fastplace.allocator import REASONS

if TYPE_CHECKING:
    from fastplace.allocator import AllocatorStats, ServerAllocator

__all__ = ["AllocatorCollector", "register_allocator_metrics"]

_BACKENDS = ("native", "python", "none")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


class AllocatorCollector:
    """A Prometheus collector of one allocator, or of several named ones (a mapping
    name -> allocator, told apart by an ``allocator`` label). ``labels`` are added to
    every series (e.g. ``{"cluster": "east"}``). Register it in any registry; it keeps
    the allocators alive until unregistered."""

    def __init__(
        self,
        allocator: ServerAllocator | Mapping[str, ServerAllocator],
        *,
        prefix: str = "fastplace",
        labels: Mapping[str, str] | None = None,
    ) -> None:
        from fastplace.allocator import ServerAllocator

        if isinstance(allocator, ServerAllocator):
            self._allocators: dict[str, ServerAllocator] = {"": allocator}
        elif isinstance(allocator, Mapping) and all(
            isinstance(a, ServerAllocator) for a in allocator.values()
        ):
            if not allocator:
                raise ValueError("allocator = {} names no allocator")
            self._allocators = {str(name): a for name, a in allocator.items()}
        else:
            raise TypeError(
                "allocator must be a ServerAllocator or a mapping name -> ServerAllocator, "
                f"got {type(allocator).__name__}"
            )
        if not isinstance(prefix, str) or not _METRIC_NAME.fullmatch(prefix):
            raise ValueError(f"prefix = {prefix!r} is not a valid metric name prefix")
        constant = dict(labels or {})
        for name in constant:
            if name in ("allocator", "source", "reason", "backend", "le"):
                raise ValueError(f"labels: {name!r} is a label this collector sets itself")
        self._prefix = f"{prefix}_allocator"
        self._constant = constant

    def describe(self) -> Iterator[Metric]:
        """The metric families (for the registry's duplicate-name check)."""
        return self.collect()

    def collect(self) -> Iterator[Metric]:
        """One family per metric, one series per allocator, from ``stats()`` now."""
        names = list(self._constant)
        if list(self._allocators) != [""]:
            names.append("allocator")
        snapshots = [
            (self._label_values(name), allocator.stats())
            for name, allocator in self._allocators.items()
        ]
        p = self._prefix

        decisions = CounterMetricFamily(
            f"{p}_decisions", "Decisions by whose server was used.", labels=[*names, "source"]
        )
        greedy = CounterMetricFamily(
            f"{p}_greedy_decisions",
            "Decisions that used the greedy server (or booked nothing), by reason.",
            labels=[*names, "reason"],
        )
        fallbacks = CounterMetricFamily(
            f"{p}_fallbacks",
            "Decisions where the RO was consulted but the greedy server was used.",
            labels=names,
        )
        latency = HistogramMetricFamily(
            f"{p}_ro_latency_seconds",
            "Time of the RO's step (candidates, features, scores) per decision.",
            labels=names,
        )
        swaps = CounterMetricFamily(
            f"{p}_model_swaps", "Models swapped in after construction.", labels=names
        )
        retrain_errors = CounterMetricFamily(
            f"{p}_retrain_errors", "Retraining rounds that raised.", labels=names
        )
        backend = GaugeMetricFamily(
            f"{p}_ro_backend",
            "1 for where the RO runs now (native core, python, none), else 0.",
            labels=[*names, "backend"],
        )
        for values, stats in snapshots:
            for source, count in stats.by_source.items():
                decisions.add_metric([*values, source], count)
            for reason in REASONS:
                if reason:
                    greedy.add_metric([*values, reason], stats.by_reason.get(reason, 0))
            fallbacks.add_metric(values, stats.fallbacks)
            latency.add_metric(values, _buckets(stats), stats.ro_latency_sum_ns / 1e9)
            swaps.add_metric(values, stats.swaps)
            retrain_errors.add_metric(values, stats.retrain_errors)
            for name in _BACKENDS:
                backend.add_metric([*values, name], 1.0 if stats.ro_backend == name else 0.0)
        yield from (decisions, greedy, fallbacks, latency, swaps, retrain_errors, backend)

    def _label_values(self, allocator_name: str) -> list[str]:
        values = list(self._constant.values())
        if list(self._allocators) != [""]:
            values.append(allocator_name)
        return values


def _buckets(stats: AllocatorStats) -> list[tuple[str, float]]:
    """(le in seconds, cumulative count) pairs, +Inf last."""
    bounds = [repr(bound / 1e9) for bound in stats.ro_latency_bounds_ns]
    return list(zip([*bounds, "+Inf"], map(float, stats.ro_latency_cumulative), strict=True))


def register_allocator_metrics(
    allocator: ServerAllocator | Mapping[str, ServerAllocator],
    registry: CollectorRegistry | None = None,
    *,
    prefix: str = "fastplace",
    labels: Mapping[str, str] | None = None,
) -> AllocatorCollector:
    """Registers an :class:`AllocatorCollector` in ``registry`` (None: prometheus_client's
    default ``REGISTRY``) and returns it (``registry.unregister(collector)`` removes it).
    ValueError from the registry if these metric names are registered there already:
    give each allocator its own ``prefix``, or pass them together as a mapping."""
    collector = AllocatorCollector(allocator, prefix=prefix, labels=labels)
    (REGISTRY if registry is None else registry).register(collector)
    return collector
