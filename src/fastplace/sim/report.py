"""Side-by-side results: the rows of a table, metrics.json and a PNG chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastplace._atomic import atomic_path, write_atomic

__all__ = ["TABLE_METRICS", "plot", "table_rows", "write_json"]

#: (key, heading, format) of the columns shown on the terminal.
TABLE_METRICS: tuple[tuple[str, str, str], ...] = (
    ("servers_used_mean", "servers (mean)", "{:.1f}"),
    ("utilisation_memory_mb", "mem util", "{:.1%}"),
    ("utilisation_cpu_millis", "cpu util", "{:.1%}"),
    ("cold_starts", "cold starts", "{:,}"),
    ("cold_start_p50_s", "cold p50 s", "{:.3f}"),
    ("cold_start_p99_s", "cold p99 s", "{:.3f}"),
    ("bytes_downloaded", "GiB fetched", "gib"),
    ("request_p50_s", "req p50 s", "{:.3f}"),
    ("request_p99_s", "req p99 s", "{:.3f}"),
    ("sla_violations", "SLA viol.", "{:,}"),
    ("rejected", "rejected", "{:,}"),
    ("decision_p50_ns", "decide p50 ns", "{:,.0f}"),
    ("decision_p99_ns", "decide p99 ns", "{:,.0f}"),
)


def _format(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    if spec == "gib":
        return f"{value / 2**30:,.1f}"
    return spec.format(value)


def table_rows(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    """One row per metric of TABLE_METRICS: its heading, then its value for each policy
    (the order of ``results``), formatted; ``-`` where a policy has no value."""
    return [
        [heading, *(_format(m.get(key), spec) for m in results.values())]
        for key, heading, spec in TABLE_METRICS
    ]


def write_json(results: dict[str, dict[str, Any]], path: Path, **context: Any) -> None:
    """``{"policies": {name: {metric: value}}, ...context}``."""
    payload = {"policies": results, **context}
    write_atomic(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")


def plot(results: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    """Bar charts of the headline metrics, one panel each, policies side by side.

    Needs matplotlib (extra ``fastplace[cli]``): MissingExtra saying so otherwise.
    """
    from fastplace._plotting import pyplot

    plt = pyplot()

    panels = (
        ("servers_used_mean", "mean active servers"),
        ("bytes_downloaded", "GiB downloaded at cold start"),
        ("cold_start_p50_s", "cold start p50 (s)"),
        ("request_p99_s", "request latency p99 (s)"),
    )
    names = list(results)
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6))
    for axis, (key, label) in zip(axes, panels, strict=True):
        values = [results[n].get(key, 0.0) for n in names]
        if key == "bytes_downloaded":
            values = [v / 2**30 for v in values]
        axis.bar(names, values, color="#4c72b0")
        axis.set_title(label, fontsize=10)
        axis.tick_params(axis="x", rotation=45, labelsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=120)
    finally:
        plt.close(figure)
