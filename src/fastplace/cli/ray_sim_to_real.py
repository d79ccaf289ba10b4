"""``fastplace ray-replay --simulate``: each real replay simulated and compared."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["print_and_write", "simulate_replays"]


def simulate_replays(
    args: argparse.Namespace,
    workload: Any,
    policies: list[str],
    rows: list[dict[str, Any]],
    nodes: list[Any],
    workdir: Path,
) -> dict[str, Any]:
    """Simulates every replay of ``rows`` (the store is under ``workdir``) and compares:
    :func:`fastplace.engines.ray.sim_to_real.compare`, plus the simulated rows and the
    settings measured from each real run."""
    from fastplace.cli.output import note
    from fastplace.engines.ray.demo import parse_policy
    from fastplace.engines.ray.model_store import ModelStore
    from fastplace.engines.ray.sim_to_real import compare, simulate_replay

    store = ModelStore(workdir / "store")
    whole = workload.span_s if workload.span_s is not None else float(workload.arrival_s[-1])
    span = min(args.duration, whole) if args.duration else whole
    sims = []

    def policy(spec: str) -> Callable[[], Any]:
        return lambda: parse_policy(spec)

    for spec, real in zip(policies, rows, strict=True):
        note(f"simulating the replay with {spec}")
        sims.append(
            simulate_replay(
                workload,
                store,
                policy(spec),
                real,
                nodes,
                compression=args.compression,
                span_s=span,
                keep_alive_s=args.keep_alive,
                max_gangs=args.max_gangs,
                concurrency_target=args.concurrency,
                seed=args.seed,
            )
        )
    report = compare(policies, rows, sims)
    report["time_base"] = "real seconds (the log's times divided by --compression)"
    report["simulated"] = dict(zip(policies, sims, strict=True))
    return report


def print_and_write(report: dict[str, Any], args: argparse.Namespace) -> None:
    """Prints the comparison and writes it to ``--out/sim-to-real.md``."""
    from fastplace._atomic import write_atomic
    from fastplace.cli import CommandError
    from fastplace.cli.output import wrote
    from fastplace.engines.ray.sim_to_real import markdown

    title = (
        f"Sim-to-real: ray-replay vs fastplace.sim, {args.compression:g}x compression, "
        f"{args.nodes} nodes, latencies in real seconds"
    )
    text = markdown(report, title)
    print(text, end="")
    path = args.out / "sim-to-real.md"
    try:
        write_atomic(path, text)
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror}") from None
    wrote(path)
