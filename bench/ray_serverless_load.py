"""Load through the serverless front end on the loopback Ray cluster, warm gangs.

A script that writes a table (not pytest-benchmark: one run is a cluster start, a
warm-up and an open-loop stream per rate, seconds each). Starts a local cluster of
``--nodes`` nodes, stores the tiny 3-partition MTML model, warms ``--gangs`` gangs
(``--target`` requests each at once), then for each rate of ``--rates`` submits
requests open-loop (one every 1/rate s, from one thread, as clients would) for
``--seconds`` and reports what the front end sustained: requests answered per second,
the p50/p99 the front end adds (``route_s + queue_s``: locks, routing, bookkeeping and
waiting for a pool thread), the end-to-end latency and the Ray call (``compute_s``).

    PYTHONPATH=src python bench/ray_serverless_load.py                  # 100,200,300/s
    PYTHONPATH=src python bench/ray_serverless_load.py --rates 200 --seconds 20
    PYTHONPATH=src python bench/ray_serverless_load.py --markdown build/load.md

Needs ``fastplace[ray]`` and torch (the model's initial weights).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import Future, wait
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from fastplace.engines.ray.deployment import Deployer
from fastplace.engines.ray.local_cluster import start_local_cluster
from fastplace.engines.ray.model_store import ModelStore
from fastplace.engines.ray.partitioned_model import (
    MTMLConfig,
    make_batch,
    split_weights,
    torch_model,
)
from fastplace.engines.ray.serverless import Answer, Serverless


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def store_model(root: Path) -> ModelStore:
    import torch

    config = MTMLConfig.tiny()
    torch.manual_seed(0)
    weights = {k: v.detach().numpy().copy() for k, v in torch_model(config).state_dict().items()}
    store = ModelStore(root, block_size=4096)
    store.put("mtml", 1, split_weights(weights, config, 3), memory_mb=512, config=config.to_dict())
    return store


def actor_cpu_s(front: Serverless) -> tuple[float, float]:
    """CPU seconds used so far by the gangs' partition-0 actors and by their peers."""
    import ray

    head = peers = 0.0
    for gang in front.gangs("mtml"):
        assert gang.deployment is not None
        for part in gang.deployment.partitions:
            used = ray.get(part.actor.__ray_call__.remote(lambda _self: time.process_time()))
            if part.index == 0:
                head += used
            else:
                peers += used
    return head, peers


def stream(front: Serverless, batch: Any, rate: float, seconds: float) -> dict[str, float]:
    """Open loop at ``rate`` requests/s for ``seconds``; the figures of that stream,
    CPU per request included (this process, partition-0 actors, their peers)."""
    before = len(front.stats().records)
    cpu_head, cpu_peers = actor_cpu_s(front)
    cpu_driver = time.process_time()
    futures: list[Future[Answer]] = []
    period = 1.0 / rate
    began = time.perf_counter()
    n = int(rate * seconds)
    behind = 0
    for i in range(n):
        delay = began + i * period - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        elif delay < -0.05:
            behind += 1  # the submitting thread itself fell behind the schedule
        futures.append(front.submit("mtml", batch))
    submitted_s = time.perf_counter() - began
    wait(futures)
    done_s = time.perf_counter() - began
    cpu_driver = time.process_time() - cpu_driver
    head, peers = actor_cpu_s(front)
    lost = sum(f.exception() is not None for f in futures)
    records = front.stats().records[before:]
    added = [r.route_s + r.queue_s for r in records]
    return {
        "rate": rate,
        "requests": n,
        "lost": lost,
        "offered_per_s": n / submitted_s,
        "answered_per_s": (n - lost) / done_s,
        "added_p50_us": pct(added, 50) * 1e6,
        "added_p99_us": pct(added, 99) * 1e6,
        "route_p50_us": pct([r.route_s for r in records], 50) * 1e6,
        "queue_p50_us": pct([r.queue_s for r in records], 50) * 1e6,
        "compute_p50_ms": pct([r.compute_s for r in records], 50) * 1e3,
        "latency_p50_ms": pct([r.latency_s for r in records], 50) * 1e3,
        "latency_p99_ms": pct([r.latency_s for r in records], 99) * 1e3,
        "late_submits": behind,
        "cpu_driver_ms": cpu_driver / n * 1e3,
        "cpu_head_ms": (head - cpu_head) / n * 1e3,
        "cpu_peers_ms": (peers - cpu_peers) / n * 1e3,
    }


COLUMNS = (
    ("rate", "offered /s", "{:.0f}"),
    ("answered_per_s", "answered /s", "{:.0f}"),
    ("lost", "lost", "{:d}"),
    ("added_p50_us", "added p50 µs", "{:.0f}"),
    ("added_p99_us", "added p99 µs", "{:.0f}"),
    ("route_p50_us", "route p50 µs", "{:.0f}"),
    ("queue_p50_us", "queue p50 µs", "{:.0f}"),
    ("compute_p50_ms", "Ray call p50 ms", "{:.1f}"),
    ("latency_p50_ms", "request p50 ms", "{:.1f}"),
    ("latency_p99_ms", "request p99 ms", "{:.1f}"),
    ("cpu_driver_ms", "CPU ms/req driver", "{:.2f}"),
    ("cpu_head_ms", "CPU ms/req partition 0", "{:.2f}"),
    ("cpu_peers_ms", "CPU ms/req peers", "{:.2f}"),
)


def table(rows: list[dict[str, float]], title: str) -> str:
    lines = [title, "", "| " + " | ".join(label for _, label, _ in COLUMNS) + " |"]
    lines.append("|" + "---:|" * len(COLUMNS))
    for row in rows:
        cells = [form.format(int(row[k]) if form == "{:d}" else row[k]) for k, _, form in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,200,300", help="requests/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="per rate (10)")
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--gangs", type=int, default=2, help="warm gangs (2)")
    parser.add_argument("--target", type=int, default=8, help="requests per gang at once (8)")
    parser.add_argument("--workers", type=int, default=32, help="front end threads (32)")
    parser.add_argument("--batch", type=int, default=16, help="rows per request (16)")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",") if r.strip()]

    cluster = start_local_cluster(args.nodes, memory_mb=8192, cpu_millis=16000)
    try:
        with tempfile.TemporaryDirectory(prefix="fastplace-load-") as work:
            store = store_model(Path(work) / "store")
            deployer = Deployer(store, Path(work) / "cache", max_concurrency=args.target)
            front = Serverless(
                deployer,
                {"mtml": 1},
                concurrency_target=args.target,
                max_gangs=args.gangs,
                keep_alive_s=3600,
                workers=args.workers,
            )
            batch = make_batch(MTMLConfig.tiny(), args.batch, np.random.default_rng(0))
            try:
                # Warm-up: enough requests at once to start every gang, then a short
                # stream so that Ray's connections and caches are warm too.
                warm = [front.submit("mtml", batch) for _ in range(args.gangs * args.target + 1)]
                wait(warm)
                stream(front, batch, 50.0, 2.0)
                assert len(front.gangs("mtml")) == args.gangs, front.gangs("mtml")
                rows = [stream(front, batch, rate, args.seconds) for rate in rates]
                cold_starts = front.stats().cold_starts
            finally:
                front.close()
                deployer.shutdown()
    finally:
        cluster.shutdown()
    load = os.getloadavg()
    title = (
        f"Serverless front end, warm: {args.gangs} gangs x target {args.target}, "
        f"{args.nodes} nodes, {args.workers} threads, batch {args.batch}, "
        f"{args.seconds:g} s per rate; cold starts {cold_starts} (warm-up only); "
        f"load average after: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )
    text = table(rows, title)
    print(text)
    late = [int(r["late_submits"]) for r in rows]
    if any(late):
        print(f"submits behind schedule by > 50 ms, per rate: {late}")
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.markdown.with_name(f".{args.markdown.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
