"""fastplace.metrics: the allocator's stats scraped in Prometheus's text format."""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt
import pytest

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from fastplace import Cluster, ServerAllocator  # noqa: E402
from fastplace.allocator import REASONS, RO_LATENCY_BOUNDS_NS  # noqa: E402
from fastplace.metrics import AllocatorCollector, register_allocator_metrics  # noqa: E402

Scores = npt.NDArray[np.float32]


class SlowLast:
    """Picks the last candidate after 2 ms: every RO step lands above the 1 ms bucket."""

    def scores(self, features: Scores) -> Scores:
        time.sleep(0.002)
        return np.arange(features.shape[0], dtype=np.float32)


def scrape(registry: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} from the registry's text exposition."""
    text = prometheus_client.generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_scraped_values_equal_the_stats() -> None:
    cluster = Cluster(np.tile([8192, 4000], (4, 1)))
    allocator = ServerAllocator(cluster, SlowLast(), budget_us=1e9)
    for _ in range(3):
        allocator.allocate([1024, 500])
    allocator.allocate([10**6, 1])  # no_fit
    allocator.swap_optimizer(SlowLast())
    registry = prometheus_client.CollectorRegistry()
    register_allocator_metrics(allocator, registry, labels={"cluster": "east"})
    got = scrape(registry)
    east = (("cluster", "east"),)

    def value(name: str, **labels: str) -> float:
        return got[(name, tuple(sorted((*east, *labels.items()))))]

    assert value("fastplace_allocator_decisions_total", source="ro") == 3
    assert value("fastplace_allocator_decisions_total", source="greedy") == 1
    assert value("fastplace_allocator_greedy_decisions_total", reason="no_fit") == 1
    for reason in REASONS:
        if reason and reason != "no_fit":
            assert value("fastplace_allocator_greedy_decisions_total", reason=reason) == 0
    assert value("fastplace_allocator_fallbacks_total") == 0
    assert value("fastplace_allocator_model_swaps_total") == 1
    assert value("fastplace_allocator_retrain_errors_total") == 0
    assert value("fastplace_allocator_ro_backend", backend="python") == 1
    assert value("fastplace_allocator_ro_backend", backend="native") == 0
    stats = allocator.stats()
    assert value("fastplace_allocator_ro_latency_seconds_count") == 3
    assert value("fastplace_allocator_ro_latency_seconds_sum") == pytest.approx(
        stats.ro_latency_sum_ns / 1e9
    )
    assert value("fastplace_allocator_ro_latency_seconds_sum") >= 0.006
    buckets = [
        value("fastplace_allocator_ro_latency_seconds_bucket", le=le)
        for le in [repr(b / 1e9) for b in RO_LATENCY_BOUNDS_NS] + ["+Inf"]
    ]
    assert buckets == stats.ro_latency_cumulative
    assert value("fastplace_allocator_ro_latency_seconds_bucket", le="0.001") == 0
    assert buckets[-1] == 3


def test_the_collector_reads_the_stats_at_scrape_time() -> None:
    allocator = ServerAllocator(Cluster([[8192, 4000]]), False)
    registry = prometheus_client.CollectorRegistry()
    register_allocator_metrics(allocator, registry, prefix="edge")
    key = ("edge_allocator_decisions_total", (("source", "greedy"),))
    assert scrape(registry)[key] == 0
    allocator.allocate([64, 10])
    allocator.allocate([64, 10])
    assert scrape(registry)[key] == 2
    assert scrape(registry)[("edge_allocator_ro_backend", (("backend", "none"),))] == 1


def test_several_allocators_in_one_registry() -> None:
    a = ServerAllocator(Cluster([[8192, 4000]]), False)
    b = ServerAllocator(Cluster([[8192, 4000]]), False)
    b.allocate([64, 10])
    registry = prometheus_client.CollectorRegistry()
    collector = register_allocator_metrics({"a": a, "b": b}, registry)
    got = scrape(registry)
    name = "fastplace_allocator_decisions_total"
    assert got[(name, (("allocator", "a"), ("source", "greedy")))] == 0
    assert got[(name, (("allocator", "b"), ("source", "greedy")))] == 1
    with pytest.raises(ValueError, match="Duplicated"):
        register_allocator_metrics(a, registry)  # same names: needs its own prefix
    registry.unregister(collector)
    register_allocator_metrics(a, registry)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"prefix": "9lives"}, ValueError, "prefix = '9lives'"),
        ({"prefix": "has space"}, ValueError, "prefix"),
        ({"labels": {"reason": "x"}}, ValueError, "'reason' is a label this collector sets"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, object], error: type, message: str) -> None:
    allocator = ServerAllocator(Cluster([[8192, 4000]]), False)
    with pytest.raises(error, match=message):
        AllocatorCollector(allocator, **kwargs)  # type: ignore[arg-type]


def test_not_an_allocator() -> None:
    with pytest.raises(TypeError, match="ServerAllocator or a mapping"):
        AllocatorCollector(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="names no allocator"):
        AllocatorCollector({})
