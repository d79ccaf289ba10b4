"""fastplace simulate: table, metrics.json, metrics.png, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fastplace.cli import main


def test_simulate_writes_metrics_for_every_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [
            "simulate",
            "--policies",
            "first_fit,similarity,random",
            "--servers",
            "40",
            "--duration",
            "60",
            "--out",
            str(tmp_path),
        ]
    )
    assert status == 0
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert list(data["policies"]) == ["first_fit", "similarity", "random"]
    for metrics in data["policies"].values():
        for key in (
            "servers_used_mean",
            "utilisation_memory_mb",
            "cold_starts",
            "cold_start_p50_s",
            "cold_start_p99_s",
            "bytes_downloaded",
            "request_p50_s",
            "request_p99_s",
            "sla_violations",
            "rejected",
            "decision_p50_ns",
            "decision_p99_ns",
        ):
            assert key in metrics
        assert metrics["requests"] > 0
    assert (tmp_path / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    captured = capsys.readouterr()
    assert "first_fit" in captured.out and "similarity" in captured.out
    assert captured.err.splitlines()[-2:] == [
        f"wrote {tmp_path / 'metrics.json'}",
        f"wrote {tmp_path / 'metrics.png'}",
    ]


def test_simulate_azure2019_excerpt(tmp_path: Path) -> None:
    assert (
        main(
            [
                "simulate",
                "--workload",
                "azure2019",
                "--policies",
                "first_fit",
                "--servers",
                "20",
                "--duration",
                "120",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data["workload"] == "azure2019"
    assert data["policies"]["first_fit"]["requests"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policies", "first_fit,bogus"], "bogus"),
        (["--policies", "nope"], "choose from first_fit, best_fit, dot_product, l2_norm,"),
        (["--duration", "0"], "--duration"),
        (["--duration", "inf"], "argument --duration: 'inf' is not a finite number"),
        (["--workload", "/nonexistent/trace"], "no such trace file"),
        (
            ["--workload", "azure2109"],
            "--workload = 'azure2109' is not one of synthetic, azure2019, nor a trace",
        ),
    ],
)
def test_simulate_errors_are_one_clear_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "--out", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_malformed_trace_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "t_inv.csv").write_text("HashFunction,HashApp,HashOwner,minute_1\nf,a,o,3\n")
    (tmp_path / "t_mem.csv").write_text("HashApp,AverageAllocatedMb_pct99\na,12x\n")
    (tmp_path / "t_run.csv").write_text("x\n")
    assert main(["simulate", "--workload", str(tmp_path / "t"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "t_mem.csv:2" in err and "12x" in err


def test_unwritable_out_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["simulate", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fastplace simulate: error: --out {blocker / 'sub'}: Not a directory"]


def test_simulate_policies_peers_and_all_expand(tmp_path: Path) -> None:
    from fastplace.cli.simulate import DEFAULT_POLICIES, expand_policies
    from fastplace.sim import POLICIES
    from fastplace.sim.peers import PEERS

    assert expand_policies("first_fit,peers") == ["first_fit", *PEERS]
    assert expand_policies("all,first_fit") == list(POLICIES)
    assert not set(PEERS) & set(expand_policies(DEFAULT_POLICIES))  # the default stays short
    argv = ["simulate", "--policies", "first_fit,peers", "--servers", "20", "--duration", "20"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert list(data["policies"]) == ["first_fit", *PEERS]
