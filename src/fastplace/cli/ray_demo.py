"""``fastplace ray-demo``: DI models on a local Ray cluster, policies side by side."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from fastplace.cli.argtypes import MAX_BLOCK_SIZE, integer, number, seed
from fastplace.cli.files import writable_file

__all__ = ["add_parser", "run"]

DEFAULT_POLICIES = "first_fit,similarity,similarity:1.0"

# Bounds of the flags: a local demo on one machine.
#: Ray nodes are processes of this machine.
MAX_NODES = 64
#: Models are named mtml-a ... mtml-z.
MAX_MODELS = 26
#: Each version is trained (seconds) and stored whole (~8 MB for the small model).
MAX_VERSIONS = 20
MAX_PARTITIONS = 64
#: Memory sizes in MB: 1 PiB.
MAX_MB = 1 << 30
#: Every block is a file of the store and of each node cache: 512 B (a disk sector) at
#: least, or a small model version is tens of thousands of files.
MIN_BLOCK_SIZE = 512
MAX_REQUESTS = 100_000
MAX_BANDWIDTH_MB_S = 1e6


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ray-demo",
        help="serve partitioned models on a local Ray cluster, placed by fastplace",
        description=(
            "Starts a local multi-node Ray cluster (loopback only), trains small "
            "multi-task recommendation models, stores their versions as content-"
            "addressed blocks, and per placement policy deploys version 1 of each model "
            "and rolls it out to the next versions while the old one serves. Prints "
            "bytes fetched by the rollouts, cold-start seconds, plan vs Ray actor start "
            "time and request latency per policy. Needs `pip install 'fastplace[ray]'` "
            "and torch."
        ),
    )
    parser.add_argument(
        "--policies",
        default=DEFAULT_POLICIES,
        help=(
            "comma-separated policies; similarity:X sets its max_load; ray_default: Ray's "
            f"own scheduler places the actors ({DEFAULT_POLICIES})"
        ),
    )
    parser.add_argument(
        "--nodes", type=integer(1, MAX_NODES), default=4, help=f"Ray nodes, 1 to {MAX_NODES} (4)"
    )
    parser.add_argument(
        "--node-memory",
        type=integer(1, MAX_MB),
        default=3072,
        help=f"MB each node offers, 1 to {MAX_MB:,} (3072)",
    )
    parser.add_argument(
        "--models", type=integer(1, MAX_MODELS), default=2, help=f"models, 1 to {MAX_MODELS} (2)"
    )
    parser.add_argument(
        "--versions",
        type=integer(1, MAX_VERSIONS),
        default=3,
        help=f"versions per model, 1 to {MAX_VERSIONS} (3)",
    )
    parser.add_argument(
        "--partitions",
        type=integer(1, MAX_PARTITIONS),
        default=3,
        help=f"partitions per model, 1 to {MAX_PARTITIONS} (3)",
    )
    parser.add_argument(
        "--partition-memory",
        type=integer(1, MAX_MB),
        default=512,
        help=f"MB per partition, 1 to {MAX_MB:,} (512)",
    )
    parser.add_argument(
        "--block-size",
        type=integer(MIN_BLOCK_SIZE, MAX_BLOCK_SIZE),
        default=4096,
        help=f"block size in bytes, {MIN_BLOCK_SIZE} to {MAX_BLOCK_SIZE:,} (4096)",
    )
    parser.add_argument(
        "--bandwidth",
        type=number(0.0, MAX_BANDWIDTH_MB_S, low_open=True),
        default=50.0,
        help="model store throughput in MB/s, standing for remote storage, > 0 and "
        f"<= {MAX_BANDWIDTH_MB_S:,.0f} (50)",
    )
    parser.add_argument(
        "--requests",
        type=integer(1, MAX_REQUESTS),
        default=40,
        help=f"batches per model per step, 1 to {MAX_REQUESTS:,} (40)",
    )
    parser.add_argument(
        "--model",
        choices=("small", "tiny"),
        default="small",
        help="model size: small (~8 MB, 3 partitions of ~2.6 MB) or tiny (~0.2 MB) (small)",
    )
    parser.add_argument("--seed", type=seed, default=0, help="random seed, >= 0 (0)")
    parser.add_argument(
        "--plan-only",
        action="store_true",
        help="no Ray: run the scenario through fastplace alone (bytes = block index)",
    )
    parser.add_argument("--workdir", help="keep the store and caches here (default: a temp dir)")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fastplace.cli import CommandError
    from fastplace.engines.ray.demo import DemoConfig, parse_policy
    from fastplace.engines.ray.partitioned_model import MTMLConfig
    from fastplace.engines.ray.ray_placement import RAY_DEFAULT

    # Each policy once: a repeat would redeploy every model for the same row.
    policies = list(dict.fromkeys(p.strip() for p in args.policies.split(",") if p.strip()))
    if not policies:
        raise CommandError("--policies is empty")
    for spec in policies:
        try:
            parse_policy(spec)
        except ValueError as error:
            raise CommandError(str(error)) from None
    if args.plan_only and RAY_DEFAULT in policies:
        raise CommandError(
            f"--plan-only: {RAY_DEFAULT} has no plan (Ray chooses nodes when actors start); "
            "run it on the cluster, without --plan-only"
        )
    if args.partition_memory * args.partitions > args.node_memory * args.nodes:
        raise CommandError(
            f"a model's partitions do not fit in the cluster: --partitions {args.partitions} "
            f"x --partition-memory {args.partition_memory:,} MB is more than --nodes "
            f"{args.nodes} x --node-memory {args.node_memory:,} MB"
        )
    if args.json:
        writable_file(args.json, "--json")
    config = DemoConfig(
        nodes=args.nodes,
        node_memory_mb=args.node_memory,
        models=args.models,
        versions=args.versions,
        partitions=args.partitions,
        partition_mb=args.partition_memory,
        block_size=args.block_size,
        bandwidth_mb_s=args.bandwidth,
        requests=args.requests,
        seed=args.seed,
        model=MTMLConfig.tiny() if args.model == "tiny" else MTMLConfig(),
    )
    if args.workdir:
        try:
            Path(args.workdir).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CommandError(f"--workdir {args.workdir}: {error.strerror}") from None
        report = _run(config, Path(args.workdir), policies, args.plan_only)
        from fastplace.cli.output import note

        note(f"kept the model store and the node caches under {args.workdir}")
    else:
        with tempfile.TemporaryDirectory(prefix="fastplace-ray-demo-") as workdir:
            report = _run(config, Path(workdir), policies, args.plan_only)
    _print(report, args.plan_only)
    if args.json:
        from fastplace._atomic import write_atomic
        from fastplace.cli.output import wrote

        try:
            write_atomic(args.json, json.dumps(report, indent=2) + "\n")
        except OSError as error:
            raise CommandError(f"cannot write --json {args.json}: {error.strerror}") from None
        wrote(args.json)
    return 0


def _run(config: Any, workdir: Path, policies: list[str], plan_only: bool) -> dict[str, Any]:
    from fastplace.cli import CommandError
    from fastplace.cli.output import note as progress
    from fastplace.engines.ray.model_store import ModelStore, StoreFormatError

    try:  # a --workdir kept from an older fastplace holds a store it no longer reads
        ModelStore(workdir / "store", block_size=config.block_size)
    except StoreFormatError as error:
        raise CommandError(str(error)) from None
    if plan_only:
        from fastplace.engines.ray.demo import build_store
        from fastplace.engines.ray.demo import plan_only as plan

        train_s = build_store(workdir / "store", config, progress)
        store = ModelStore(workdir / "store", block_size=config.block_size)
        try:
            results = [plan(store, spec, config).summary() for spec in policies]
        except ValueError as error:
            raise CommandError(str(error)) from None
        return {"train_s": train_s, "policies": results}

    from fastplace.engines.ray import require_ray

    try:
        require_ray()
        import torch  # noqa: F401  (training the demo's models)
    except ImportError as error:
        raise CommandError(str(error)) from None
    from fastplace.engines.ray.demo import run_demo
    from fastplace.engines.ray.deployment import DeploymentError

    try:
        return run_demo(config, workdir, policies, progress)
    except DeploymentError as error:
        raise CommandError(str(error)) from None


def _print(report: dict[str, Any], plan_only: bool) -> None:
    from fastplace.cli.output import Table, note, print_table

    rows = report["policies"]
    title = "fastplace on Ray: rollouts per policy"
    if plan_only:
        title += " (plan only: bytes from the block index)"
    columns = ["policy", "rollout MiB", "vs first"]  # "first": the first policy listed
    if not plan_only:
        columns += [
            "cold start s mean/max",
            "plan µs p50",
            "Ray actor start s p50",
            "fan-out ms p50",
            "request ms p50/p99",
        ]
    table = Table(title, columns, "l" + "r" * (len(columns) - 1))
    for row in rows:
        cells = [row["policy"], f"{row['rollout_bytes'] / 2**20:.2f}", _versus(row, rows[0])]
        if not plan_only:
            cells += [
                f"{row['cold_start_mean_s']:.2f}/{row['cold_start_max_s']:.2f}",
                "by Ray" if row["plan_p50_us"] is None else f"{row['plan_p50_us']:.0f}",
                f"{row['actor_start_p50_s']:.2f}",
                f"{row['fanout_p50_ms']:.2f}",
                f"{row['request_p50_ms']:.1f}/{row['request_p99_ms']:.1f}",
            ]
        table.add_row(*cells)
    print_table(table)
    if not plan_only and not all(row["index_agrees"] for row in rows):
        note("some cold starts fetched other bytes than the block index expected")


def _versus(row: dict[str, Any], first: dict[str, Any]) -> str:
    """A policy's rollout bytes against the first policy's, or why there is no ratio."""
    if not first["rollout_bytes_each"]:
        return "n/a (one version: no rollout)"
    if first["rollout_bytes"] == 0:
        return "n/a (first fetched 0 B)"
    return f"{row['rollout_bytes'] / first['rollout_bytes']:.2f}x"
