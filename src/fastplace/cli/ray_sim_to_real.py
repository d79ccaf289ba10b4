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
    from fastplace.engines.ray.sim_to_real import compare, simulate_replay, simulated_policy

    store = ModelStore(workdir / "store")
    whole = workload.span_s if workload.span_s is not None else float(workload.arrival_s[-1])
    span = min(args.duration, whole) if args.duration else whole

    def policy(spec: str) -> Callable[[], Any]:
        return lambda: parse_policy(simulated_policy(spec))

    def simulate(trace_boots: bool) -> list[dict[str, Any]]:
        return [
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
                trace_boots=trace_boots,
            )
            for spec, real in zip(policies, rows, strict=True)
        ]

    note("simulating the replays")
    stand_ins = {spec: simulated_policy(spec) for spec in policies}
    stand_ins = {spec: stand_in for spec, stand_in in stand_ins.items() if stand_in != spec}
    for spec, stand_in in stand_ins.items():
        note(f"{spec} is simulated by {stand_in}, the simulator's model of its rule")
    sims = simulate(trace_boots=True)
    report = compare(policies, rows, sims)
    report["time_base"] = "real seconds (the log's times divided by --compression)"
    report["boots"] = "each gang boots as its real counterpart did (TraceBoots)"
    report["simulated"] = dict(zip(policies, sims, strict=True))
    report["simulated_as"] = stand_ins
    # How much rides on the boot model: every boot the real run's median instead.
    constant = simulate(trace_boots=False)
    report["median_boot"] = compare(policies, rows, constant)
    return report


def print_and_write(report: dict[str, Any], args: argparse.Namespace) -> None:
    """Prints the comparison and writes it to ``--out/sim-to-real.md``."""
    from fastplace._atomic import write_atomic
    from fastplace.cli import CommandError
    from fastplace.cli.output import wrote
    from fastplace.engines.ray.sim_to_real import markdown, markdown_summary

    title = (
        f"Sim-to-real: ray-replay vs fastplace.sim, {args.compression:g}x compression, "
        f"{args.nodes} nodes, latencies in real seconds"
    )
    text = markdown(report, title)
    text += "\n" + markdown_summary(report["median_boot"], "Every boot the median (sensitivity)")
    print(text, end="")
    path = args.out / "sim-to-real.md"
    try:
        write_atomic(path, text)
    except OSError as error:
        raise CommandError(f"cannot write {path}: {error.strerror}") from None
    wrote(path)
