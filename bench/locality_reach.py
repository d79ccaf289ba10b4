"""Why locality's gains shrink with the cluster, and the rule without its window.

``holders``: at every cold start of a ``locality`` run, where the version's blocks are
relative to locality's window (docs/optimizer.md, "At scale", first table).
``rules``: first_fit, locality and ``reach`` variants (any active server at least
``min_load`` full, within the first ``share`` of the active feasible servers but at
least 12) on selection seeds (second table).
``probe``: a network's decisions against the ``reach`` rule's on one run: what kind of
server it picks (first fit's, busy, nearly empty, idle; caching the version's blocks
or not) and where it disagrees with the rule ("Why the 150-server network costs
servers at scale").

    PYTHONPATH=src python3 bench/locality_reach.py holders --servers 1500
    PYTHONPATH=src python3 bench/locality_reach.py probe --servers 1500 --seeds 1 \
        --model out/stage1/model.pt
    PYTHONPATH=src python3 bench/locality_reach.py rules --servers 1500 \
        --workload azure2019 --seeds 1,2 --reach 1.0:0.2,0.5:0.2,0.25:0.2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fastplace.sim import SimConfig, compare, simulate
from fastplace.sim.policies import LocalityFit, PlacementContext, Policy
from optimizer_scale import make_workload

WINDOW = 12


class HolderProbe(LocalityFit):
    """The locality policy, recording where the blocks of each decision are."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[float, ...]] = []

    def choose(self, context: PlacementContext, request: Any, blocks: Any) -> int:
        feasible = context.cluster.feasible(request)
        chosen = super().choose(context, request, blocks)
        if feasible.shape[0] == 0:
            return chosen
        cached = np.asarray(context.blocks.cached_bytes_on(feasible, blocks), dtype=np.float64)
        free, capacity, counts = context.cluster.server_rows(feasible)
        active = counts > 0
        busy = free[:, 0] <= 0.8 * capacity[:, 0]
        holds = (cached > 0) & active
        best = int(np.argmax(np.where(active, cached, -1.0)))
        in_window = (holds & busy)[:WINDOW]
        self.rows.append(
            (
                float(active.sum()),
                float(holds.sum()),
                float(holds[:WINDOW].sum()),
                float(in_window.any()),
                float(best),
                float(cached[best] if active.any() else 0.0),
                float(cached[:WINDOW][in_window].max() if in_window.any() else 0.0),
                float(chosen == int(feasible[0])),
            )
        )
        return chosen


def holders(servers: int, workload_name: str, seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workload = make_workload(workload_name, servers, 600.0, seed, Path(tmp))
    probe = HolderProbe()
    simulate(SimConfig(servers=servers, duration_s=600.0, seed=seed), workload, probe)
    act, held, held12, eligible, best, best_bytes, window_bytes, kept = np.array(probe.rows).T
    some = best_bytes > 0
    print(f"{servers} servers, {workload_name}, seed {seed}: {len(probe.rows):,} decisions")
    print(f"  active feasible servers (mean)                  {act.mean():.0f}")
    print(f"  active servers caching any block (mean)         {held.mean():.1f}")
    print(f"  decisions with no active holder                 {np.mean(held == 0):.0%}")
    print(f"  holders among the first {WINDOW} feasible (mean)      {held12.mean():.2f}")
    print(f"  decisions with an eligible holder in the window {eligible.mean():.0%}")
    print(f"  best-caching active server beyond the window    {np.mean(best[some] >= WINDOW):.0%}")
    share = window_bytes[some] / best_bytes[some]
    print(f"  bytes on the window's best / on the best active {share.mean():.2f}")
    print(f"  locality keeps first fit's server               {kept.mean():.0%}")


class Reach(Policy):
    """Locality with a window of a share of the active feasible servers (at least 12)."""

    def __init__(self, share: float, min_load: float) -> None:
        self.share, self.min_load = share, min_load
        self.name = f"reach {share:g} of active, load >= {min_load:g}"

    def choose(self, context: PlacementContext, request: Any, blocks: Any) -> int:
        feasible = context.cluster.feasible(request)
        if feasible.shape[0] == 0:
            return -1
        free, capacity, counts = context.cluster.server_rows(feasible)
        active = counts > 0
        window = max(WINDOW, int(np.ceil(self.share * int(active.sum()))))
        rank = np.cumsum(active) - 1  # position among the active feasible servers
        busy = free[:, 0] <= (1.0 - self.min_load) * capacity[:, 0]
        eligible = active & busy & (rank < window)
        eligible[0] = True  # first fit's server
        candidates = np.flatnonzero(eligible)
        cached = np.asarray(context.blocks.cached_bytes_on(feasible[candidates], blocks))
        best = int(np.argmax(cached))
        return int(feasible[candidates[best]] if cached[best] > 0 else feasible[0])


class DecisionProbe(Policy):
    """Places with a network over the Python reference features, counting its picks
    by kind and where they differ from ``demonstrator.reach``."""

    name = "probe"

    def __init__(self, optimizer: Any) -> None:
        from fastplace.optimizer.features import FEATURE_NAMES

        self.optimizer = optimizer
        self.column = {n: i for i, n in enumerate(FEATURE_NAMES)}
        self.counts: Counter[str] = Counter()

    def kind(self, row: Any) -> str:
        c = self.column
        if row[c["is_first_fit"]] > 0.5:
            where = "first fit's"
        elif row[c["active"]] < 0.5:
            where = "idle"
        elif row[c["free_memory_before"]] > 1.0 - 0.2:  # the rule's min_load
            where = "nearly empty"
        else:
            where = "busy"
        return f"{where}, {'caching' if row[c['cached_share']] > 0 else 'no cache'}"

    def choose(self, context: PlacementContext, request: Any, blocks: Any) -> int:
        from fastplace.optimizer.demonstrator import reach
        from fastplace.optimizer.features import decision

        servers, features = decision(context.cluster, context.blocks, request, blocks)
        if servers.shape[0] == 0:
            return -1
        pick = int(np.argmax(np.asarray(self.optimizer.scores(features))))
        rule = reach(features)
        self.counts["decisions"] += 1
        self.counts[f"picks {self.kind(features[pick])}"] += 1
        if pick != rule:
            clipped = features[rule][self.column["first_fit_rank"]] >= 1.0
            self.counts[
                f"differs: picks {self.kind(features[pick])}; the rule {self.kind(features[rule])}"
                + (" past the 64th feasible" if clipped else "")
            ] += 1
        return int(servers[pick])


def probe(servers: int, workload_name: str, seed: int, model: Path | None) -> None:
    from fastplace.optimizer import ResourceOptimizer

    optimizer = ResourceOptimizer.default() if model is None else ResourceOptimizer.load(model)
    with tempfile.TemporaryDirectory() as tmp:
        workload = make_workload(workload_name, servers, 600.0, seed, Path(tmp))
    policy = DecisionProbe(optimizer)
    config = SimConfig(servers=servers, duration_s=600.0, seed=seed)
    results = compare(config, workload, ["first_fit", policy])
    base, row = results["first_fit"], results["probe"]
    servers_change = 100 * (row["servers_used_mean"] / base["servers_used_mean"] - 1)
    bytes_change = 100 * (row["bytes_downloaded"] / base["bytes_downloaded"] - 1)
    print(
        f"{servers} {workload_name} seed {seed}: servers {servers_change:+.2f}%, "
        f"bytes {bytes_change:+.2f}% vs first fit"
    )
    total = policy.counts["decisions"]
    for key, count in sorted(policy.counts.items()):
        print(f"  {key}: {count:,} ({count / total:.1%})")


def rules(servers: int, workload_name: str, seeds: list[int], variants: list[str]) -> None:
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            workload = make_workload(workload_name, servers, 600.0, seed, Path(tmp))
        policies: list[Any] = ["first_fit", "locality"] + [
            Reach(float(v.split(":")[0]), float(v.split(":")[1])) for v in variants
        ]
        config = SimConfig(servers=servers, duration_s=600.0, seed=seed)
        results = compare(config, workload, policies)
        base = results["first_fit"]
        for name, row in results.items():
            servers_change = 100 * (row["servers_used_mean"] / base["servers_used_mean"] - 1)
            bytes_change = 100 * (row["bytes_downloaded"] / base["bytes_downloaded"] - 1)
            print(
                f"{servers} {workload_name} seed {seed} {name}: servers {servers_change:+.2f}%, "
                f"bytes {bytes_change:+.2f}%, cold start p50 {row['cold_start_p50_s']:.2f} s",
                flush=True,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("holders", "rules", "probe"))
    parser.add_argument("--servers", type=int, default=1500)
    parser.add_argument("--workload", default="synthetic")
    parser.add_argument("--seeds", default="1,2", help="rules: seeds (holders: the first)")
    parser.add_argument("--reach", default="1.0:0.2,0.5:0.2,0.25:0.2", help="SHARE:MIN_LOAD,...")
    parser.add_argument("--model", type=Path, default=None, help="probe: model (default: shipped)")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.what == "holders":
        holders(args.servers, args.workload, seeds[0])
    elif args.what == "probe":
        probe(args.servers, args.workload, seeds[0], args.model)
    else:
        rules(args.servers, args.workload, seeds, args.reach.split(","))
    return 0


if __name__ == "__main__":
    sys.exit(main())
