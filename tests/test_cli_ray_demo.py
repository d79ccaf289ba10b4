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


def test_ray_default_is_refused_with_plan_only(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from fastplace.cli import main

    argv = ["ray-demo", "--plan-only", "--policies", "first_fit,ray_default"]
    assert main([*argv, "--workdir", str(tmp_path / "wd")]) == 2
    assert "--plan-only: ray_default has no plan" in capsys.readouterr().err
    assert not (tmp_path / "wd").exists()  # refused before the store is built


def test_ray_default_has_no_plan_time(capsys: pytest.CaptureFixture[str]) -> None:
    timed = {
        "cold_start_mean_s": 0.3,
        "cold_start_max_s": 0.6,
        "actor_start_p50_s": 1.2,
        "fanout_p50_ms": 2.0,
        "request_p50_ms": 4.0,
        "request_p99_ms": 9.0,
        "index_agrees": True,
    }
    rows = [
        {**row("first_fit", [1 << 20]), **timed, "plan_p50_us": 37.0},
        {**row("ray_default", [1 << 20]), **timed, "plan_p50_us": None},
    ]
    _print({"policies": rows}, plan_only=False)
    lines = capsys.readouterr().out.splitlines()
    assert "  37  " in lines[3] and "by Ray" in lines[4]
