"""bench/optimizer_scale.py: the workloads grow with the cluster as its doc says, and
its configurations and verdicts are read as documented."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from fastplace.sim.azure2019 import read_trace


def load_bench() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "bench" / "optimizer_scale.py"
    spec = importlib.util.spec_from_file_location("optimizer_scale", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["optimizer_scale"] = module
    spec.loader.exec_module(module)
    return module


bench = load_bench()


def test_synthetic_and_request_log_grow_to_the_per_server_rates(tmp_path: Path) -> None:
    for name in ("synthetic", "requestlog"):
        workload = bench.make_workload(name, 500, 120.0, 3, tmp_path)
        assert len(workload.models) == 80  # 0.16 per server
        rate = workload.n_requests / 120.0
        assert 0.85 * 200 < rate < 1.15 * 200, (name, rate)  # 0.4 requests/s per server
    # The request log is written and read back as a log, without a version column.
    assert (tmp_path / "requests-500-3.csv").read_text().startswith("timestamp,model,duration\n")


def test_azure_trace_is_tiled_per_150_servers(tmp_path: Path) -> None:
    functions = len(read_trace())
    one = bench.make_workload("azure2019", 150, 120.0, 0, tmp_path)
    three = bench.make_workload("azure2019", 450, 120.0, 0, tmp_path)
    assert len(one.models) == functions and len(three.models) == 3 * functions
    # Same per-minute counts per tile: three times the requests, drawn afresh.
    assert three.n_requests == 3 * one.n_requests


def test_configs_and_verdicts() -> None:
    assert bench.parse_config("1500h:100,101") == (1500, True, [100, 101])
    assert bench.parse_config("150:7") == (150, False, [7])
    with pytest.raises(ValueError, match="'x:1' is not SERVERS"):
        bench.parse_config("x:1")
    with pytest.raises(ValueError, match="servers must be >= 1"):
        bench.parse_config("0:1")
    assert bench.verdict(-5.0, 0.0) == "meets" and bench.verdict(1.9, -20.0) == "meets"
    assert bench.verdict(2.1, -60.0) == "worse > 2%" and bench.verdict(-4.9, -19.9) == "not enough"
    assert bench.moonshot(1.0, -30.0) and not bench.moonshot(1.1, -40.0)
    with pytest.raises(SystemExit):
        bench.parse_args(["--policies", "hybrid"])  # first_fit is the baseline
