"""Quality of the resource optimizer against the heuristics, on unseen seeds and workloads.

Runs the simulator (``fastplace.sim.compare``) with first_fit, the heuristics
similarity and locality, and the RO alone ("ro") and behind the server allocator
("hybrid"), both with the shipped model unless --model is given, on workload seeds
and workloads not used in training (training uses synthetic workload seeds >= 1000,
validation 900-999), and writes a markdown report with the numbers, the goal check and
the command.

Goal (issue 5): >= 5% fewer mean active servers or >= 20% fewer cold-start bytes than
first_fit, and never worse than first_fit by more than 2% on either.

    PYTHONPATH=src python3 bench/optimizer_quality.py --out build/optimizer-quality.md
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_goal import MEETS, NOT_ENOUGH, WORSE, goal

GIB = 1 << 30
BASELINE = "first_fit"
_VERDICTS = {
    MEETS: "meets the goal",
    WORSE: "worse than first_fit by > 2%",
    NOT_ENOUGH: "not better enough",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="model file (default: shipped)")
    parser.add_argument("--seeds", default="100,101,102", help="workload/cluster seeds")
    parser.add_argument("--workloads", default="synthetic,azure2019")
    parser.add_argument(
        "--policies",
        default="first_fit,similarity,locality,ro,hybrid,k8s_default,k8s_most_allocated,ray_hybrid",
        help="comma-separated; 'peers' for every peer scheduler (fastplace.sim.peers)",
    )
    parser.add_argument("--duration", type=float, default=600.0, help="simulated seconds")
    parser.add_argument("--servers", type=int, default=150)
    parser.add_argument("--out", type=Path, default=None, help="markdown report to write")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from fastplace.cli.simulate import expand_policies
    from fastplace.optimizer import ResourceOptimizer
    from fastplace.optimizer.policy import ResourceOptimizerPolicy
    from fastplace.sim import SimConfig, compare, load_workload
    from fastplace.sim.policies import Hybrid

    optimizer = (
        ResourceOptimizer.default() if args.model is None else ResourceOptimizer.load(args.model)
    )
    rows: list[dict[str, Any]] = []
    for workload_name in args.workloads.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            workload = load_workload(workload_name, duration_s=args.duration, seed=seed)
            config = SimConfig(servers=args.servers, duration_s=args.duration, seed=seed)
            policies: list[Any] = []
            ro_policy = None
            for name in expand_policies(args.policies):
                if name == "ro":
                    ro_policy = ResourceOptimizerPolicy(optimizer)
                    policies.append(ro_policy)
                elif name == "hybrid":
                    policies.append(Hybrid(optimizer))
                else:
                    policies.append(name)
            started = time.perf_counter()
            results = compare(config, workload, policies)
            print(
                f"{workload_name} seed {seed}: {workload.n_requests:,} requests, "
                f"{time.perf_counter() - started:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            for name, metrics in results.items():
                row = {"workload": workload_name, "seed": seed, "policy": name, **metrics}
                if name == "ro" and ro_policy is not None:
                    row["fallbacks"] = sum(ro_policy.fallbacks.values())
                rows.append(row)
    return rows, optimizer.metadata


def relative(rows: list[dict[str, Any]], key: str) -> dict[tuple[str, int, str], float]:
    """Per (workload, seed, policy): key relative to first_fit on the same run, in %."""
    base = {(r["workload"], r["seed"]): r[key] for r in rows if r["policy"] == BASELINE}
    out = {}
    for r in rows:
        reference = base.get((r["workload"], r["seed"]))
        if reference:
            out[(r["workload"], r["seed"], r["policy"])] = 100.0 * (r[key] / reference - 1.0)
    return out


def verdict(servers: float, bytes_: float) -> str:
    return _VERDICTS[goal(servers, bytes_)]


def training_summary(metadata: dict[str, Any]) -> str:
    """What the model was trained on, from the metadata its file records."""
    config = metadata.get("train_config", {})
    episodes, seed = config.get("episodes"), config.get("seed", 0)
    models = config.get("n_models_range") or [config.get("n_models")] * 2
    rates = config.get("total_rate_range") or [config.get("total_rate")] * 2
    if config.get("scale_workload"):  # TrainConfig.env_config: ranges per 150 servers
        from fastplace.optimizer.train import TrainConfig

        env = TrainConfig(
            servers=config["servers"],
            scale_workload=True,
            **{
                k: tuple(config[k]) for k in ("n_models_range", "total_rate_range") if config.get(k)
            },
        ).env_config()
        models = env.n_models_range or [env.n_models] * 2
        rates = env.total_rate_range or [env.total_rate] * 2
    initial = metadata.get("initial_model")
    tuned = (
        f" It was fine-tuned from a network trained by `{initial.get('training_command')}`."
        if initial
        else ""
    )
    return (
        f"The RO (`{metadata.get('training_command', '?')}`, {metadata.get('date', '?')}) was "
        f"trained on {episodes} episodes of {config.get('duration_s'):g} s on a "
        f"{config.get('servers')}-server cluster, synthetic workloads of {models[0]}-{models[1]} "
        f"models at {rates[0]:g}-{rates[1]:g} requests/s with workload seeds "
        f"{1000 * (seed + 1)}-{1000 * (seed + 1) + episodes - 1}"
        + (
            f", learning from the {config.get('demonstrator')} rule (margin loss weight "
            f"{config.get('demo_weight'):g})"
            if config.get("demo_weight")
            else ""
        )
        + ", and validated on seeds "
        f"{', '.join(str(s) for s in config.get('validation_seeds', []))}: it never saw the "
        "seeds below nor the azure2019 workload." + tuned
    )


def report(
    rows: list[dict[str, Any]], metadata: dict[str, Any], args: argparse.Namespace, wall_s: float
) -> str:
    servers = relative(rows, "servers_used_mean")
    bytes_ = relative(rows, "bytes_downloaded")
    command = "PYTHONPATH=src python3 bench/optimizer_quality.py " + shlex.join(
        sys.argv[1:] if sys.argv[1:] else []
    )
    lines = [
        "# Resource optimizer quality",
        "",
        f"Command: `{command.strip()}` ({wall_s / 60:.1f} min on a shared 2-core machine).",
        "",
        f"Cluster: {args.servers} servers (64 GiB, 40 vCPU), 32 GiB block cache each, "
        f"{args.duration:g} simulated seconds per run, seeds {args.seeds}; the synthetic "
        "workload is the simulator's default (24 models, 60 requests/s). "
        + training_summary(metadata),
        "",
        "Change vs first_fit on the same run (negative is better). Goal: servers <= -5% "
        "or bytes <= -20%, and neither above +2%.",
        "",
        "| workload | seed | policy | mean active servers | vs first_fit | cold-start GiB "
        "| vs first_fit | cold starts | cold start p99 s | rejected | decision p50 us | verdict |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        key = (r["workload"], r["seed"], r["policy"])
        s, b = servers.get(key, 0.0), bytes_.get(key, 0.0)
        judged = "" if r["policy"] == BASELINE else verdict(s, b)
        if r.get("fallbacks"):
            judged += f" ({r['fallbacks']} fallbacks)"
        lines.append(
            f"| {r['workload']} | {r['seed']} | {r['policy']} | {r['servers_used_mean']:.2f} "
            f"| {s:+.1f}% | {r['bytes_downloaded'] / GIB:,.0f} | {b:+.1f}% | {r['cold_starts']:,} "
            f"| {r['cold_start_p99_s']:.2f} | {r['rejected']} | {r['decision_p50_ns'] / 1000:.1f} "
            f"| {judged} |"
        )
    lines += ["", "Mean over the runs of each workload (and over all runs):", ""]
    lines += [
        "| workload | policy | servers vs first_fit | bytes vs first_fit | worst servers "
        "| worst bytes | verdict (mean) | runs meeting the goal |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    policies = [p for p in dict.fromkeys(r["policy"] for r in rows) if p != BASELINE]
    workloads = [*dict.fromkeys(r["workload"] for r in rows), "all"]
    for workload in workloads:
        for policy in policies:
            keys = [
                k for k in servers if k[2] == policy and (workload == "all" or k[0] == workload)
            ]
            if not keys:
                continue
            s_mean = sum(servers[k] for k in keys) / len(keys)
            b_mean = sum(bytes_[k] for k in keys) / len(keys)
            met = sum(verdict(servers[k], bytes_[k]) == "meets the goal" for k in keys)
            lines.append(
                f"| {workload} | {policy} | {s_mean:+.1f}% | {b_mean:+.1f}% "
                f"| {max(servers[k] for k in keys):+.1f}% | {max(bytes_[k] for k in keys):+.1f}% "
                f"| {verdict(s_mean, b_mean)} | {met}/{len(keys)} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    rows, metadata = run(args)
    text = report(rows, metadata, args, time.perf_counter() - started)
    print(text)
    if args.out is not None:
        previous = args.out.read_text() if args.out.exists() else ""
        marker = "\n## Discussion"
        tail = previous[previous.index(marker) :] if marker in previous else ""
        args.out.write_text(text + tail)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
