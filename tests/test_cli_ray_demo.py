"""``fastplace ray-demo``'s table: the "vs first" column when there is nothing to compare."""

from __future__ import annotations

from typing import Any

import pytest

from fastplace.cli.ray_demo import _print


def row(policy: str, each: list[int]) -> dict[str, Any]:
    return {"policy": policy, "rollout_bytes": sum(each), "rollout_bytes_each": each}


def ratios(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    lines = capsys.readouterr().out.splitlines()[3:]  # title, header, rule
    return {line.split()[0]: line.split(None, 2)[2] for line in lines}


def test_one_version_has_no_rollout_to_compare(capsys: pytest.CaptureFixture[str]) -> None:
    _print({"policies": [row("first_fit", []), row("similarity", [])]}, plan_only=True)
    assert ratios(capsys) == {
        "first_fit": "n/a (one version: no rollout)",
        "similarity": "n/a (one version: no rollout)",
    }


def test_ratios_against_the_first_policy(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [row("first_fit", [2 << 20, 2 << 20]), row("similarity", [1 << 20, 0])]
    _print({"policies": rows}, plan_only=True)
    assert ratios(capsys) == {"first_fit": "1.00x", "similarity": "0.25x"}
    _print({"policies": [row("first_fit", [0]), row("similarity", [1 << 20])]}, plan_only=True)
    assert ratios(capsys) == {
        "first_fit": "n/a (first fetched 0 B)",
        "similarity": "n/a (first fetched 0 B)",
    }
