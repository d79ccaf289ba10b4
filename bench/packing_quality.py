"""Packing quality of every policy on the Panigrahy et al. instances (d = 3, 5, 10).

For each policy and instance: bins used, over OPT (where the paper's exact solver
found it) and over the paper's lower bound, next to the best results of the paper's
heuristic families (Mommessin, Erlebach, Shakhlevich, "Classification and evaluation
of the algorithms for vector bin packing"). Every packing is checked for feasibility.

    python3 bench/packing_quality.py                     # all 1,620 instances
    python3 bench/packing_quality.py --step 10           # every 10th, a quick look
    python3 bench/packing_quality.py --markdown build/packing.md  # merged into RESULTS.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import packing_data
from fastplace.packing import POLICIES, pack, read_vbp, verify_packing

DIMS = (3, 5, 10)
CLASSES = tuple(range(1, 10))
PAPER = {
    "paper best_overall": lambda ref: ref.best_overall,
    "paper best item-centric": lambda ref: ref.best_item_centric,
    "paper best bin-centric": lambda ref: ref.best_bin_centric,
    "paper best MB-Pairing": lambda ref: ref.best_pairing,
    "paper best MB-WFD": lambda ref: ref.best_wfd,
}


def mean(values: Sequence[float]) -> str:
    return f"{statistics.fmean(values):.4f}" if values else "—"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--step", type=int, default=1, help="use every STEP-th instance")
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = parser.parse_args(argv)
    if not packing_data.available():
        print(f"skipped: {packing_data.MISSING_REASON}", file=sys.stderr)
        return 1
    policies = [name for name in args.policies.split(",") if name]
    refs = packing_data.references()
    paths = list(packing_data.instance_paths().items())[:: args.step]

    wall_start = time.perf_counter()
    bins: dict[str, dict[str, int]] = defaultdict(dict)  # policy -> instance -> bins
    seconds: dict[str, float] = defaultdict(float)
    for count, (name, path) in enumerate(paths, start=1):
        instance = read_vbp(path)
        for policy in policies:
            start = time.process_time()  # CPU time: the machine may be shared
            assignment = pack(instance.capacity, instance.items, policy, seed=args.seed)
            seconds[policy] += time.process_time() - start
            bins[policy][name] = verify_packing(instance.capacity, instance.items, assignment)
        if count % 100 == 0:
            print(f"{count}/{len(paths)} instances", file=sys.stderr)
    wall = time.perf_counter() - wall_start
    for label, value in PAPER.items():
        bins[label] = {name: value(refs[name]) for name, _ in paths}

    names = [name for name, _ in paths]
    by_group: dict[tuple[int, int], list[str]] = defaultdict(list)
    for name in names:
        kind, _, dims, _ = packing_data.parse_name(name)
        by_group[(dims, kind)].append(name)

    def ratios(row: str, subset: Sequence[str], over: str) -> list[float]:
        out = []
        for name in subset:
            ref = refs[name]
            denominator = ref.opt if over == "opt" else ref.lb
            if denominator:
                out.append(bins[row][name] / denominator)
        return out

    rows = policies + list(PAPER)
    command = "python3 bench/packing_quality.py" + "".join(
        f" {flag} {value}"
        for flag, value, default in (("--step", args.step, 1), ("--seed", args.seed, 0))
        if value != default
    )
    known = [name for name in names if refs[name].opt]
    lines = [
        "# Packing quality on the Panigrahy instances",
        "",
        f"Command: `{command}` ({len(names)} instances, {len(known)} with known OPT).",
        "",
        "Bins used / OPT, averaged over the instances with known OPT (classes 4 and 5 have "
        "none), per dimension d. `paper ...` rows are the best result of each heuristic "
        "family in Mommessin, Erlebach and Shakhlevich (2025), from "
        "`Panigrahy_summary_known.csv`. `= OPT`: share of those instances solved "
        "optimally. `all / LB`: over all instances, against the paper's lower bound. "
        "`CPU ms`: mean CPU time per instance of `pack`, including input checks and "
        f"the final feasibility check. The whole run took {wall / 60:.1f} min of wall time.",
        "",
    ]
    summary = []
    for row in rows:
        cells = [row, mean(ratios(row, known, "opt"))]
        cells += [mean(ratios(row, [n for n in known if f"_{d}_" in n], "opt")) for d in DIMS]
        hits = [bins[row][name] == refs[name].opt for name in known]
        cells.append(f"{100 * statistics.fmean(hits):.1f}%" if hits else "—")
        cells.append(mean(ratios(row, names, "lb")))
        cells.append(f"{1000 * seconds[row] / len(names):.1f}" if row in seconds else "—")
        summary.append(cells)
    lines += table(
        [
            "policy",
            "all / OPT",
            "d=3 / OPT",
            "d=5 / OPT",
            "d=10 / OPT",
            "= OPT",
            "all / LB",
            "CPU ms",
        ],
        summary,
    )
    for over, title in (("opt", "bins / OPT"), ("lb", "bins / LB (the paper's lower bound)")):
        for dims in DIMS:
            lines += ["", f"## d = {dims}: {title}, per class", ""]
            header = ["policy"] + [f"class {k}" for k in CLASSES]
            body = [
                [row] + [mean(ratios(row, by_group[(dims, k)], over)) for k in CLASSES]
                for row in rows
            ]
            lines += table(header, body)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
