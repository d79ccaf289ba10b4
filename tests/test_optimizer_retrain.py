"""Retraining the RO from the allocator's feedback log: request mix, the log on disk,
fine-tuning with a validation gate, the swap into a live allocator, the CLI."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fifo_guard import fifo

torch = pytest.importorskip("torch")

from fastplace import Cluster  # noqa: E402
from fastplace.allocator import FeedbackRecord, ServerAllocator  # noqa: E402
from fastplace.cli import main  # noqa: E402
from fastplace.optimizer import ResourceOptimizer  # noqa: E402
from fastplace.optimizer.retrain import (  # noqa: E402
    FINE_TUNE,
    FeedbackTrainer,
    fine_tune_config,
    load_feedback,
    request_mix,
    save_feedback,
)
from fastplace.optimizer.train import TrainConfig  # noqa: E402
from fastplace.sim import synthetic_workload  # noqa: E402

# Small enough to fine-tune in seconds; training settings otherwise come from the
# shipped model's metadata.
TINY: dict[str, Any] = {
    "episodes": 2,
    "servers": 20,
    "duration_s": 30.0,
    "n_models_range": (3, 6),
    "total_rate_range": (5.0, 10.0),
    "validate_every": 1,
    "validation_seeds": (900,),
    "validation_duration_s": 30.0,
    "batch": 16,
}


def _log(n: int, seed: int = 0) -> tuple[ServerAllocator, list[FeedbackRecord]]:
    """An allocator with the shipped RO and the feedback of n decisions (1 or 2 GB)."""
    cluster = Cluster([[16384, 8000]] * 40)
    allocator = ServerAllocator(cluster, budget_us=float("inf"))
    rng = np.random.default_rng(seed)
    for _ in range(n):
        memory = int(rng.choice([1024, 2048], p=[0.25, 0.75]))
        allocator.allocate([memory, memory // 2])
    return allocator, allocator.feedback()


def test_request_mix_counts_the_memory_sizes_of_the_log() -> None:
    _, records = _log(200)
    sizes, shares = request_mix(records)
    memory = [r.request[0] for r in records]
    assert sizes == (1024, 2048)
    assert shares == pytest.approx((memory.count(1024) / 200, memory.count(2048) / 200))
    with pytest.raises(ValueError, match="no feedback records"):
        request_mix([])


def test_workloads_draw_partition_memory_from_the_given_mix() -> None:
    workload = synthetic_workload(
        n_models=200, duration_s=1.0, memory_mb=[1024, 4096], memory_weights=[1, 0], seed=2
    )
    assert {p.memory_mb for m in workload.models for p in m.partitions} == {1024}
    # The default mix draws as before (the seeds of every default workload keep meaning).
    default = synthetic_workload(n_models=5, duration_s=1.0, seed=2)
    same = synthetic_workload(n_models=5, duration_s=1.0, seed=2, memory_mb=None)
    assert default.models == same.models
    with pytest.raises(ValueError, match=r"memory_weights\[1\] = -1.0"):
        synthetic_workload(memory_mb=[1024, 2048], memory_weights=[1, -1])
    with pytest.raises(ValueError, match=r"memory_mb\[0\] = 0 must be > 0"):
        synthetic_workload(memory_mb=[0])
    with pytest.raises(ValueError, match="1 values for 2"):
        synthetic_workload(memory_mb=[1024, 2048], memory_weights=[1])


def test_feedback_log_round_trips_through_a_file(tmp_path: Path) -> None:
    _, records = _log(50)
    records.append(dataclasses.replace(records[0], features=None, source="greedy"))
    records.append(
        dataclasses.replace(records[1], candidates=np.zeros(0, dtype=np.int64), features=None)
    )
    path = tmp_path / "feedback.npz"
    save_feedback(records, path)
    back = load_feedback(path)
    assert len(back) == len(records)
    for mine, theirs in zip(records, back, strict=True):
        assert mine.request == theirs.request
        assert (mine.greedy_server, mine.ro_server) == (theirs.greedy_server, theirs.ro_server)
        assert (mine.source, mine.reason, mine.ro_latency_ns) == (
            theirs.source,
            theirs.reason,
            theirs.ro_latency_ns,
        )
        np.testing.assert_array_equal(mine.candidates, theirs.candidates)
        if mine.features is None:
            assert theirs.features is None
        else:
            assert theirs.features is not None
            np.testing.assert_array_equal(mine.features, theirs.features)


def test_a_damaged_feedback_file_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a feedback log")
    with pytest.raises(ValueError, match=r"broken\.npz: not a fastplace feedback file"):
        load_feedback(path)


def test_fine_tuning_keeps_the_base_models_training_settings() -> None:
    base = ResourceOptimizer.default().metadata
    config = fine_tune_config(base, servers=20)
    recorded = base["train_config"]
    assert config.w_servers == recorded["w_servers"] and config.credit == recorded["credit"]
    assert config.hidden == tuple(recorded["hidden"])
    assert config.episodes == FINE_TUNE["episodes"] and config.servers == 20
    # The cluster the base was tuned on, and its workload grown to it, come along.
    assert config.scale_workload is recorded.get("scale_workload", False)
    kept = fine_tune_config(base)
    assert kept.servers == recorded["servers"] and kept.demonstrator == recorded["demonstrator"]
    assert (
        kept.env_config().n_models_range
        == TrainConfig(**{k: kept.to_dict()[k] for k in ("servers", "scale_workload")})
        .env_config()
        .n_models_range
    )
    old = {**base, "train_config": {k: v for k, v in recorded.items() if k != "scale_workload"}}
    assert fine_tune_config(old).scale_workload is False  # models from before the field
    with pytest.raises(TypeError, match="no_such_setting"):
        fine_tune_config(base, no_such_setting=1)


def test_too_few_records_change_nothing(tmp_path: Path) -> None:
    allocator, _ = _log(20)
    trainer = FeedbackTrainer(out=tmp_path, min_records=100, **TINY)
    before = allocator.optimizer
    assert allocator.retrain(trainer) is False
    assert allocator.optimizer is before
    assert trainer.rounds[-1].reason == "too_few_records"
    assert not list(tmp_path.iterdir())  # nothing trained, nothing written


def test_a_round_that_does_not_validate_better_keeps_the_old_model(tmp_path: Path) -> None:
    # A learning rate of ~0 leaves the network as it was, so it cannot validate strictly
    # better than itself: the gate must refuse it.
    allocator, records = _log(300)
    trainer = FeedbackTrainer(out=tmp_path, min_records=100, lr=1e-30, **TINY)
    before = allocator.optimizer
    assert allocator.retrain(trainer) is False
    assert allocator.optimizer is before
    done = trainer.rounds[-1]
    assert done.reason == "not_better" and not done.accepted
    assert done.best_return == done.initial_return
    assert done.memory_mb == request_mix(records)[0]
    assert allocator.feedback() == []  # the log was consumed


def test_an_accepted_round_is_swapped_into_the_allocator_while_it_decides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fastplace.optimizer.train as training

    allocator, records = _log(300)
    real_train = training.train
    seen: dict[str, Any] = {}

    def train_and_accept(config: Any, out: Any, progress: Any = None, **kwargs: Any) -> Any:
        # The real fine-tuning, with the gate forced open, so the swap is tested
        # whatever the validation says.
        result = real_train(config, out, progress, **kwargs)
        seen["config"] = config
        return dataclasses.replace(result, best_episode=max(result.best_episode, 0))

    monkeypatch.setattr(training, "train", train_and_accept)
    trainer = FeedbackTrainer(out=tmp_path, min_records=100, **TINY)
    for record in records:  # the allocator's log holds these again
        allocator._feedback.append(record)

    stop = threading.Event()
    errors: list[BaseException] = []

    def keep_deciding() -> None:
        try:
            while not stop.is_set():
                decision = allocator.allocate([1024, 512])
                if decision.server >= 0:
                    allocator.release(decision.container)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    worker = threading.Thread(target=keep_deciding)
    worker.start()
    try:
        assert allocator.retrain(trainer) is True
    finally:
        stop.set()
        worker.join()
    assert errors == []
    new = allocator.optimizer
    assert isinstance(new, ResourceOptimizer) and new is trainer.current
    assert new.path == trainer.rounds[-1].model_path
    # The log held the 300 records and whatever the worker decided before retrain took it.
    done = trainer.rounds[-1]
    assert done.records >= len(records) and done.memory_mb == (1024, 2048)
    assert new.metadata["train_config"]["memory_mb"] == [1024, 2048]
    assert "FeedbackTrainer round 0" in new.training_command
    assert seen["config"].memory_weights == done.memory_weights
    assert allocator.allocate([1024, 512]).source == "ro"  # the new model decides


def test_fastplace_train_from_a_feedback_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.npz"
    assert main(["train", "--feedback", str(missing), "--out", str(tmp_path / "o")]) == 2
    assert "missing.npz" in capsys.readouterr().err
    assert main(["train", "--initial", "x.pt", "--out", str(tmp_path / "o")]) == 2
    assert "--initial x.pt" in capsys.readouterr().err  # no such file, named
    _, records = _log(30)
    log = tmp_path / "feedback.npz"
    save_feedback(records, log)
    bad_model = tmp_path / "bad.pt"
    bad_model.write_bytes(b"junk")
    argv = ["train", "--feedback", str(log), "--initial", str(bad_model)]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--initial" in err and "bad.pt" in err


@pytest.mark.parametrize("case", ["vbp", "other_npz", "fifo", "directory"])
def test_a_file_that_is_not_a_feedback_log_is_named_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    path = tmp_path / {"vbp": "small.vbp", "other_npz": "other.npz"}.get(case, "fifo")
    expected = "the .npz file fastplace.optimizer.retrain.save_feedback writes"
    if case == "vbp":
        path.write_text("3\n10 10 10\n2\n3 3 3 3\n7 7 7 3\n")
        message = f"--feedback {path}: not a feedback log: expected {expected}, and this file"
    elif case == "other_npz":
        np.savez(path, weights=np.zeros(3))
        message = "with a 'header' array; this archive holds weights"
    elif case == "fifo":
        message = f"cannot read --feedback {path}: not a regular file"
    else:
        path = tmp_path
        message = f"cannot read --feedback {path}: Is a directory"
    with fifo(tmp_path / "fifo"):  # reading the FIFO would wait for a writer
        assert main(["train", "--feedback", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert "pickled" not in err[0]


def test_the_simulators_hybrid_policy_hands_over_its_feedback_log() -> None:
    from fastplace.sim import SimConfig, simulate
    from fastplace.sim.policies import Hybrid

    policy = Hybrid()
    assert policy.feedback() == []
    workload = synthetic_workload(duration_s=20.0, n_models=4, total_rate=5.0, seed=3)
    metrics = simulate(SimConfig(servers=12, duration_s=20.0, seed=3), workload, policy)
    records = policy.feedback()
    # One record per decision the allocator made: every container placed, none refused.
    assert len(records) == metrics["placements"] > 0
    assert all(isinstance(r, FeedbackRecord) and r.source in ("ro", "greedy") for r in records)
    simulate(SimConfig(servers=12, duration_s=20.0, seed=3), workload, policy)
    assert len(policy.feedback()) == len(records)  # the last run's log, not both
