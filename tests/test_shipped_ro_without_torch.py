"""The shipped RO without torch: its native twin (default.npz), tied to default.pt by
a weights digest, decides exactly as the TorchScript model does."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest

from fastplace import Cluster, ServerAllocator
from fastplace.optimizer.digest import DIGEST_KEY, weights_digest
from fastplace.optimizer.model import OptimizerLoadError
from fastplace.optimizer.native import NativeScorer, default_arrays_path
from ro_stream import decisions, run_without_torch


def test_without_torch_the_allocator_uses_the_twin_and_decides_as_with_torch() -> None:
    pytest.importorskip("torch")
    without = run_without_torch("import json, ro_stream\nprint(json.dumps(ro_stream.decisions()))")
    assert not without["torch_imported"]
    assert without["optimizer"] == "NativeScorer" and without["native"]
    with_torch = decisions()
    assert with_torch["optimizer"] == "ResourceOptimizer" and with_torch["native"]
    assert without["decisions"] == with_torch["decisions"]
    sources = [d[1] for d in without["decisions"]]
    assert sources.count("ro") > len(sources) // 2  # the RO decides, not a greedy fallback
    assert without["stats"]["by_source"] == with_torch["stats"]["by_source"]
    assert without["stats"]["by_reason"] == with_torch["stats"]["by_reason"]


def test_without_torch_the_sim_hybrid_and_ro_policies_match_torch() -> None:
    pytest.importorskip("torch")
    code = (
        "import json\n"
        "from fastplace.sim import SimConfig, compare, synthetic_workload\n"
        "config = SimConfig(servers=30, duration_s=40)\n"
        "workload = synthetic_workload(duration_s=40, n_models=4, total_rate=10)\n"
        "results = compare(config, workload, ['hybrid', 'ro', 'first_fit'])\n"
        "print(json.dumps(results, default=float))\n"
    )
    without = run_without_torch(code)
    from fastplace.sim import SimConfig, compare, synthetic_workload

    config = SimConfig(servers=30, duration_s=40)
    workload = synthetic_workload(duration_s=40, n_models=4, total_rate=10)
    with_torch = json.loads(
        json.dumps(compare(config, workload, ["hybrid", "ro", "first_fit"]), default=float)
    )
    timing = {"wall_s", "decision_p50_ns", "decision_p99_ns"}
    for policy in ("hybrid", "ro"):
        got = {k: v for k, v in without[policy].items() if k not in timing}
        expected = {k: v for k, v in with_torch[policy].items() if k not in timing}
        assert got == expected, policy
    # The RO is really in use: it does not just reproduce first fit.
    assert without["hybrid"]["bytes_downloaded"] != without["first_fit"]["bytes_downloaded"]


def test_importing_fastplace_and_allocating_without_torch_never_imports_it() -> None:
    code = (
        "import json, sys, fastplace\n"
        "from fastplace.sim.policies import make_policy\n"
        "allocator = fastplace.ServerAllocator(fastplace.Cluster([[65536, 40000]] * 4))\n"
        "decision = allocator.allocate([3008, 1700])\n"
        "make_policy('ro')\n"
        "backend = allocator.stats().ro_backend\n"
        "print(json.dumps([decision.source, backend, 'torch' in sys.modules]))\n"
    )
    assert run_without_torch(code) == ["ro", "native", False]


# ---- the digest: recorded at export, checked at load --------------------------------


def test_the_shipped_files_record_one_digest_that_matches_both() -> None:
    twin = NativeScorer.from_npz()
    arrays = np.load(default_arrays_path())
    recorded = json.loads(str(arrays["metadata"]))[DIGEST_KEY]
    assert twin.digest == recorded
    assert weights_digest({n: arrays[n] for n in arrays.files if n != "metadata"}) == recorded
    pytest.importorskip("torch")
    from fastplace.optimizer.model import ResourceOptimizer

    model = ResourceOptimizer.default()
    assert model.metadata[DIGEST_KEY] == recorded
    assert weights_digest(model.network().arrays()) == recorded
    assert NativeScorer.from_torchscript(model).digest == recorded


def test_the_digest_sees_every_value_name_and_shape() -> None:
    base = {"mean": np.zeros(3), "std": np.ones(3), "weight_0": np.eye(3), "bias_0": np.zeros(3)}
    digest = weights_digest(base)
    assert digest == weights_digest({k: v.astype(np.float32) for k, v in base.items()})
    assert digest == weights_digest(dict(reversed(base.items())))  # order of the mapping
    changed = dict(base, weight_0=np.eye(3) * (1 + 2**-20))
    assert weights_digest(changed) != digest
    assert weights_digest(dict(base, weight_0=np.eye(3).reshape(1, 9))) != digest
    assert weights_digest({("w" if k == "mean" else k): v for k, v in base.items()}) != digest


def rewrite_npz(source: str, target: Path, **changes: np.ndarray) -> Path:
    """A copy of the .npz at ``source`` with some arrays replaced (metadata kept)."""
    with np.load(source) as arrays:
        content = {name: arrays[name] for name in arrays.files}
    content.update(changes)
    np.savez(target, **content)
    return target


def test_a_twin_whose_weights_do_not_match_its_digest_is_refused(tmp_path: Path) -> None:
    shipped = default_arrays_path()
    weight = np.load(shipped)["weight_1"].copy()
    weight[3, 4] += 1e-3
    edited = rewrite_npz(shipped, tmp_path / "edited.npz", weight_1=weight)
    with pytest.raises(OptimizerLoadError, match="do not match the digest"):
        NativeScorer.from_npz(edited)
    metadata = json.loads(str(np.load(shipped)["metadata"]))
    del metadata[DIGEST_KEY]
    undigested = rewrite_npz(shipped, tmp_path / "old.npz", metadata=np.array(json.dumps(metadata)))
    with pytest.raises(OptimizerLoadError, match="records no weights_sha256"):
        NativeScorer.from_npz(undigested)


def test_the_allocator_refuses_a_damaged_twin_with_a_warning_and_places_greedily(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shipped = default_arrays_path()
    bias = np.load(shipped)["bias_0"] + 0.5
    edited = rewrite_npz(shipped, tmp_path / "edited.npz", bias_0=bias)
    cluster = Cluster([[65536, 40000]] * 3)
    with caplog.at_level(logging.WARNING, logger="fastplace.allocator"):
        allocator = ServerAllocator(cluster, edited)
    assert allocator.optimizer is None
    assert any("do not match the digest" in r.getMessage() for r in caplog.records)
    decision = allocator.allocate([100, 10])
    assert (decision.source, decision.reason) == ("greedy", "no_ro")
    # The same file, undamaged, is used without torch's help.
    intact = rewrite_npz(shipped, tmp_path / "intact.npz")
    assert ServerAllocator(cluster, intact).allocate([100, 10]).source == "ro"


# ---- with torch: the TorchScript file and its twin must be the same model -------------


def test_a_pair_that_differs_is_refused_and_the_allocator_places_greedily(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("torch")
    from fastplace.optimizer import shipped
    from fastplace.optimizer.model import _JIT_DEPRECATION, save_model
    from fastplace.optimizer.network import ScoreNet
    from fastplace.optimizer.shipped import load_pair

    other_pt, other_npz = tmp_path / "other.pt", tmp_path / "other.npz"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _JIT_DEPRECATION, DeprecationWarning)
        save_model(ScoreNet(17), other_pt, {}, arrays_path=other_npz)
    shipped_pt = Path(default_arrays_path()).with_suffix(".pt")
    assert type(load_pair(other_pt, other_npz)).__name__ == "ResourceOptimizer"
    with pytest.raises(OptimizerLoadError, match="are not the same model"):
        load_pair(shipped_pt, other_npz)
    with pytest.raises(OptimizerLoadError, match="are not the same model"):
        load_pair(other_pt, default_arrays_path())

    monkeypatch.setattr(shipped, "shipped_optimizer", lambda: load_pair(shipped_pt, other_npz))
    with caplog.at_level(logging.WARNING, logger="fastplace.allocator"):
        allocator = ServerAllocator(Cluster([[65536, 40000]] * 3))
    assert allocator.optimizer is None
    assert any("are not the same model" in r.getMessage() for r in caplog.records)
    assert allocator.allocate([100, 10]).reason == "no_ro"


def test_a_torchscript_file_whose_weights_do_not_match_its_digest_is_refused(
    tmp_path: Path,
) -> None:
    torch = pytest.importorskip("torch")
    from fastplace.optimizer.model import (
        _JIT_DEPRECATION,
        METADATA_NAME,
        ResourceOptimizer,
        save_model,
    )
    from fastplace.optimizer.network import ScoreNet

    path = tmp_path / "model.pt"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _JIT_DEPRECATION, DeprecationWarning)
        record = save_model(ScoreNet(17), path, {"seed": 1})
        assert ResourceOptimizer.load(path).metadata[DIGEST_KEY] == record[DIGEST_KEY]
        # Other weights under the first file's record: what an edit or damage looks like.
        extra = {METADATA_NAME: json.dumps(record)}
        torch.jit.save(torch.jit.script(ScoreNet(17)), str(path), _extra_files=extra)
        with pytest.raises(OptimizerLoadError, match="do not match the digest"):
            ResourceOptimizer.load(path)


def test_reexport_keeps_the_weights_and_is_deterministic(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from fastplace.optimizer.model import _JIT_DEPRECATION, reexport_model

    shipped_npz = default_arrays_path()
    shipped_pt = Path(shipped_npz).with_suffix(".pt")
    outputs = []
    for name in ("a", "b"):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _JIT_DEPRECATION, DeprecationWarning)
            reexport_model(
                shipped_pt, tmp_path / f"{name}.pt", arrays_path=tmp_path / f"{name}.npz"
            )
        outputs.append(
            ((tmp_path / f"{name}.pt").read_bytes(), (tmp_path / f"{name}.npz").read_bytes())
        )
    assert outputs[0] == outputs[1]
    with np.load(shipped_npz) as before, np.load(tmp_path / "a.npz") as after:
        assert before.files == after.files
        for name in before.files:
            if name == "metadata":
                old, new = json.loads(str(before[name])), json.loads(str(after[name]))
                old.pop("torch_version"), new.pop("torch_version")
                assert old == new
            else:
                np.testing.assert_array_equal(before[name], after[name])
    assert NativeScorer.from_npz(tmp_path / "a.npz").digest == NativeScorer.from_npz().digest
