"""One round of feedback retraining on a request-log workload, and whether it helps.

1. Record: the simulator replays a request log (seed --record-seed) with the hybrid
   scheduler and the shipped RO; its allocator's feedback log is saved.
2. Retrain: one :class:`fastplace.optimizer.retrain.FeedbackTrainer` round on that log
   (fine-tuning the shipped network on the request mix the log shows; the trainer hands
   back a model only if it validates strictly better than the shipped one).
3. Judge: first_fit, hybrid with the shipped RO and hybrid with the retrained RO replay
   the same log on held-back seeds (--eval-seeds: the seed draws the models' partitions
   and memory, the blocks of their versions and the cluster's randomness), and the
   report gives each against first_fit and the two ROs against each other.

Without --log, a log is written first (``examples/make_request_log.py``'s generator: 24
models, 60 requests/s, 600 s; the size of the simulator's default at 150 servers).

    PYTHONPATH=src python3 bench/retrain_round.py --out build/retrain-round
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

BASELINE = "first_fit"
METRICS = (
    ("servers_used_mean", "mean active servers"),
    ("bytes_downloaded", "cold-start bytes"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", type=Path, default=None, help="request log (default: made)")
    parser.add_argument("--servers", type=int, default=150)
    parser.add_argument("--record-seed", type=int, default=0)
    parser.add_argument("--eval-seeds", default="100,101,102")
    parser.add_argument("--episodes", type=int, default=4, help="fine-tuning episodes (4)")
    parser.add_argument("--out", type=Path, default=Path("build/retrain-round"))
    return parser.parse_args(argv)


def make_log(path: Path) -> Path:
    from fastplace.sim import synthetic_workload
    from fastplace.sim.request_log import write_request_log

    workload = synthetic_workload(duration_s=600.0, n_models=24, total_rate=60.0, seed=7)
    write_request_log(workload, path, digits=3)
    return path


def record(log: Path, servers: int, seed: int, out: Path) -> tuple[Path, dict[str, Any]]:
    """The hybrid scheduler's feedback log on one replay of the request log."""
    from fastplace.optimizer.retrain import save_feedback
    from fastplace.sim import SimConfig, load_workload, simulate
    from fastplace.sim.policies import Hybrid

    workload = load_workload(str(log), seed=seed)
    config = SimConfig(servers=servers, duration_s=workload.span_s or 600.0, seed=seed)
    policy = Hybrid()
    metrics = simulate(config, workload, policy)
    records = policy.feedback()
    path = out / "feedback.npz"
    save_feedback(records, path)
    return path, {"records": len(records), "metrics": metrics}


def judge(log: Path, servers: int, seeds: list[int], retrained: Any) -> list[dict[str, Any]]:
    from fastplace.optimizer import ResourceOptimizer
    from fastplace.sim import SimConfig, compare, load_workload
    from fastplace.sim.policies import Hybrid

    shipped = ResourceOptimizer.default()
    rows = []
    for seed in seeds:
        workload = load_workload(str(log), seed=seed)
        config = SimConfig(servers=servers, duration_s=workload.span_s or 600.0, seed=seed)
        started = time.perf_counter()
        results = compare(config, workload, [BASELINE, Hybrid(shipped)])
        entries = [(BASELINE, results[BASELINE]), ("hybrid (shipped RO)", results["hybrid"])]
        if retrained is not None:
            again = compare(config, workload, [Hybrid(retrained)])
            entries.append(("hybrid (retrained RO)", again["hybrid"]))
        print(f"seed {seed}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        rows += [{"seed": seed, "policy": name, **metrics} for name, metrics in entries]
    return rows


def change(value: float, reference: float) -> str:
    return f"{100.0 * (value / reference - 1.0):+.1f}%" if reference else "n/a"


def report(
    args: argparse.Namespace,
    log: Path,
    recorded: dict[str, Any],
    round_: Any,
    rows: list[dict[str, Any]],
    wall_s: float,
) -> str:
    command = "PYTHONPATH=src python3 bench/retrain_round.py " + shlex.join(sys.argv[1:])
    lines = [
        "# One feedback-retraining round on a request-log workload",
        "",
        f"Command: `{command.strip()}` ({wall_s / 60:.1f} min on a shared 2-core machine).",
        "",
        f"Log: `{log}`; cluster: {args.servers} servers. Recorded with hybrid + the shipped "
        f"RO on seed {args.record_seed}: {recorded['records']:,} decisions. Retraining round: "
        f"{round_.reason} (validation return {round_.initial_return:.3f} -> "
        f"{round_.best_return:.3f}, {round_.wall_s / 60:.1f} min, request mix "
        f"{dict(zip(round_.memory_mb, (round(w, 3) for w in round_.memory_weights), strict=True))}"
        ").",
        "",
        "| seed | policy | mean active servers | vs first_fit | cold-start GiB | vs first_fit "
        "| cold start p50 s | cold start p99 s | request p99 s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = {r["seed"]: r for r in rows if r["policy"] == BASELINE}
    for r in rows:
        b = base[r["seed"]]
        lines.append(
            f"| {r['seed']} | {r['policy']} | {r['servers_used_mean']:.2f} | "
            f"{change(r['servers_used_mean'], b['servers_used_mean'])} | "
            f"{r['bytes_downloaded'] / 2**30:,.0f} | "
            f"{change(r['bytes_downloaded'], b['bytes_downloaded'])} | "
            f"{r.get('cold_start_p50_s', float('nan')):.2f} | "
            f"{r.get('cold_start_p99_s', float('nan')):.2f} | "
            f"{r.get('request_p99_s', float('nan')):.2f} |"
        )
    retrained = [r for r in rows if r["policy"] == "hybrid (retrained RO)"]
    if retrained:
        shipped = {r["seed"]: r for r in rows if r["policy"] == "hybrid (shipped RO)"}
        lines += ["", "Retrained against shipped, same seed (negative is better):", ""]
        for r in retrained:
            s = shipped[r["seed"]]
            lines.append(
                f"- seed {r['seed']}: servers "
                f"{change(r['servers_used_mean'], s['servers_used_mean'])}, bytes "
                f"{change(r['bytes_downloaded'], s['bytes_downloaded'])}"
            )
    else:
        lines += ["", "The round handed back no model: the shipped RO stays."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from fastplace._atomic import write_atomic
    from fastplace.optimizer.retrain import FeedbackTrainer, load_feedback

    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log = args.log if args.log is not None else make_log(args.out / "requests.csv")
    feedback, recorded = record(log, args.servers, args.record_seed, args.out)
    print(f"recorded {recorded['records']:,} decisions", file=sys.stderr, flush=True)
    trainer = FeedbackTrainer(out=args.out / "retrain", episodes=args.episodes)
    retrained = trainer(load_feedback(feedback))
    round_ = trainer.rounds[-1]
    print(f"retraining round: {round_.reason}", file=sys.stderr, flush=True)
    seeds = [int(s) for s in args.eval_seeds.split(",")]
    rows = judge(log, args.servers, seeds, retrained)
    text = report(args, log, recorded, round_, rows, time.perf_counter() - started)
    write_atomic(args.out / "report.md", text)
    write_atomic(
        args.out / "rows.json",
        json.dumps({"round": round_.__dict__, "rows": rows}, indent=2, default=str) + "\n",
    )
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
