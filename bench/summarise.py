"""Turns a pytest-benchmark JSON file into the markdown tables of bench/RESULTS.md.

Usage: python3 bench/summarise.py build/bench-cluster.json

Per-call time = the benchmark's median / extra_info["calls"]. Within a group, the
entry marked extra_info["baseline"] is the reference: speed-ups are baseline time /
entry time, both from the same run.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from typing import Any


def per_call_ns(bench: dict[str, Any]) -> float:
    calls = bench.get("extra_info", {}).get("calls", 1)
    return float(bench["stats"]["median"]) * 1e9 / calls


def summarise(data: dict[str, Any]) -> str:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for bench in data["benchmarks"]:
        groups[bench["group"] or bench["name"]].append(bench)
    lines = []
    machine = data.get("machine_info", {})
    lines.append(
        f"Machine: {machine.get('cpu', {}).get('brand_raw', '?')}, "
        f"Python {machine.get('python_version', '?')}, {data.get('datetime', '')[:19]}"
    )
    for group, benches in groups.items():
        baseline = next((b for b in benches if b.get("extra_info", {}).get("baseline")), None)
        lines += ["", f"**{group}**", ""]
        lines.append("| benchmark | median per call | per second | vs baseline |")
        lines.append("|---|---:|---:|---:|")
        for bench in benches:
            ns = per_call_ns(bench)
            ratio = f"{per_call_ns(baseline) / ns:.1f}x" if baseline is not None else "-"
            name = bench["name"].split("::")[-1]
            lines.append(f"| {name} | {ns:,.0f} ns | {1e9 / ns:,.0f} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as file:
        print(summarise(json.load(file)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
