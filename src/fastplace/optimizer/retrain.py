"""Retraining the resource optimizer from the allocator's feedback log.

The allocator records every decision (``ServerAllocator.feedback``): the request, the
greedy and RO servers, which one was used and why, the candidates and their features.
A log says what the cluster is asked to place, not what each placement cost later (a
container's server time and downloads are known only when it ends, outside the
allocator), so the RO is not fitted to the log directly. Instead the log sets the
training distribution: :class:`FeedbackTrainer` reads the request mix it shows
(container memory sizes and their frequencies), fine-tunes the current network in the
simulator on workloads with that mix, starting from its weights and normalisation, and
validates old and new network on the same held-out seeds. The new model is returned
(and then swapped in by ``ServerAllocator.retrain``) only when it validates strictly
better; otherwise the allocator keeps the model it has.

Use it with ``allocator.start_retraining(FeedbackTrainer(...), every_s=...)`` for
periodic retraining in a background thread, or offline: ``save_feedback`` writes a
log to a file and ``fastplace train --feedback FILE`` retrains from it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fastplace._atomic import atomic_file
from fastplace._checks import integer
from fastplace.allocator import FeedbackRecord

if TYPE_CHECKING:
    from fastplace.optimizer.model import ResourceOptimizer
    from fastplace.optimizer.train import EpisodeStats, TrainConfig

__all__ = [
    "FeedbackTrainer",
    "RetrainRound",
    "fine_tune_config",
    "load_feedback",
    "request_mix",
    "save_feedback",
]

#: Fine-tuning settings applied over the base model's own training settings: a few
#: short episodes, little exploration (the network is already trained), a smaller step.
FINE_TUNE: dict[str, Any] = {
    "episodes": 4,
    "epsilon_start": 0.2,
    "epsilon_end": 0.05,
    "epsilon_steps": 2_000,
    "learn_start": 256,
    "lr": 3e-4,
    "validate_every": 2,
    "validation_duration_s": 300.0,
    "checkpoint_every": 1_000,
}

_FEEDBACK_FORMAT = "fastplace-feedback"
_FEEDBACK_VERSION = 1


def request_mix(records: Sequence[FeedbackRecord]) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Distinct container memory sizes (MB) in ``records`` and the share of each."""
    if not records:
        raise ValueError("no feedback records: nothing to learn a request mix from")
    memory = np.array([record.request[0] for record in records], dtype=np.int64)
    sizes, counts = np.unique(memory, return_counts=True)
    if sizes[0] <= 0:
        raise ValueError(f"feedback request memory = {int(sizes[0])} must be > 0")
    shares = counts / counts.sum()
    return tuple(int(s) for s in sizes), tuple(float(x) for x in shares)


def fine_tune_config(base_metadata: dict[str, Any], **overrides: Any) -> TrainConfig:
    """The training settings recorded in a model's metadata (reward weights, network,
    cluster), with :data:`FINE_TUNE` and then ``overrides`` applied."""
    from fastplace.optimizer.train import TrainConfig

    known = {f.name: f for f in dataclasses.fields(TrainConfig)}
    recorded = base_metadata.get("train_config") or {}
    settings: dict[str, Any] = {}
    for name, value in recorded.items():
        if name in known and name != "command":
            # JSON turned the tuple settings (hidden, ranges, seeds) into lists.
            settings[name] = tuple(value) if isinstance(value, list) else value
    settings.update(FINE_TUNE)
    settings.update(overrides)
    return TrainConfig(**settings)


@dataclass(frozen=True)
class RetrainRound:
    """One call of a :class:`FeedbackTrainer`: what it learned from and what it did."""

    round: int
    records: int
    accepted: bool
    reason: str  # "accepted", "too_few_records", "not_better"
    memory_mb: tuple[int, ...] = ()
    memory_weights: tuple[float, ...] = ()
    #: Mean validation return of the network before and of the best one after.
    initial_return: float = float("nan")
    best_return: float = float("nan")
    model_path: str = ""
    wall_s: float = 0.0


class FeedbackTrainer:
    """A trainer for ``ServerAllocator.retrain``/``start_retraining``: records in, a
    better ResourceOptimizer (or None) out. See the module doc for what it does.

    ``base`` is the model to start from (None: the shipped one); after an accepted
    round, the next round starts from the new model. Each round writes its model,
    curve and log to ``out/round-NNNN``. ``overrides`` change the fine-tuning settings
    (any :class:`fastplace.optimizer.train.TrainConfig` field).
    """

    def __init__(
        self,
        base: str | os.PathLike[str] | None = None,
        out: str | os.PathLike[str] = "out/retrain",
        *,
        min_records: int = 1_000,
        progress: Callable[[EpisodeStats], None] | None = None,
        **overrides: Any,
    ) -> None:
        from fastplace.optimizer.model import ResourceOptimizer

        min_records = integer(min_records, "min_records", minimum=1)
        self.current = ResourceOptimizer.default() if base is None else ResourceOptimizer.load(base)
        self.out = Path(out)
        self.min_records = min_records
        self.progress = progress
        self.overrides = overrides
        fine_tune_config(self.current.metadata, **overrides)  # bad overrides fail here
        self.rounds: list[RetrainRound] = []
        self._lock = threading.Lock()  # one round at a time

    def __call__(self, records: list[FeedbackRecord]) -> ResourceOptimizer | None:
        with self._lock:
            return self._round(records)

    def _round(self, records: list[FeedbackRecord]) -> ResourceOptimizer | None:
        from fastplace.optimizer.model import ResourceOptimizer
        from fastplace.optimizer.train import train

        started = time.perf_counter()
        number = len(self.rounds)
        if len(records) < self.min_records:
            self.rounds.append(RetrainRound(number, len(records), False, "too_few_records"))
            return None
        memory_mb, memory_weights = request_mix(records)
        base = self.current
        config = fine_tune_config(
            base.metadata,
            **{
                "seed": number,
                "memory_mb": memory_mb,
                "memory_weights": memory_weights,
                **self.overrides,
                "command": (
                    f"fastplace.optimizer.retrain.FeedbackTrainer round {number}: "
                    f"fine-tuned {base.path} on the request mix of {len(records)} decisions"
                ),
            },
        )
        result = train(
            config, self.out / f"round-{number:04d}", self.progress, initial=base.network()
        )
        accepted = result.best_episode >= 0
        self.rounds.append(
            RetrainRound(
                round=number,
                records=len(records),
                accepted=accepted,
                reason="accepted" if accepted else "not_better",
                memory_mb=memory_mb,
                memory_weights=memory_weights,
                initial_return=float(result.baselines.get("initial", float("nan"))),
                best_return=result.best_validation_return,
                model_path=str(result.model_path),
                wall_s=time.perf_counter() - started,
            )
        )
        if not accepted:
            return None
        self.current = ResourceOptimizer.load(result.model_path)
        return self.current


# ---- the log on disk ------------------------------------------------------------------


def save_feedback(records: Sequence[FeedbackRecord], path: str | os.PathLike[str]) -> None:
    """Writes ``records`` to ``path`` (numpy .npz), atomically and durably
    (:mod:`fastplace._atomic`)."""
    n = len(records)
    widths = {len(r.request) for r in records}
    if len(widths) > 1:
        raise ValueError(f"feedback records mix requests of {sorted(widths)} resources")
    width = widths.pop() if widths else 0
    candidates = [np.asarray(r.candidates, dtype=np.int64).reshape(-1) for r in records]
    features = [
        np.zeros((0, 0), dtype=np.float32) if r.features is None else np.asarray(r.features)
        for r in records
    ]
    n_features = max((f.shape[1] for f in features if f.size), default=0)
    header = {"format": _FEEDBACK_FORMAT, "version": _FEEDBACK_VERSION, "records": n}
    arrays: dict[str, Any] = {
        "header": np.array(json.dumps(header)),
        "request": np.array([r.request for r in records], dtype=np.int64).reshape(n, width),
        "greedy_server": np.array([r.greedy_server for r in records], dtype=np.int64),
        "ro_server": np.array([r.ro_server for r in records], dtype=np.int64),
        "source": np.array([r.source for r in records], dtype=np.str_),
        "reason": np.array([r.reason for r in records], dtype=np.str_),
        "ro_latency_ns": np.array([r.ro_latency_ns for r in records], dtype=np.int64),
        "candidate_counts": np.array([c.shape[0] for c in candidates], dtype=np.int64),
        "candidates": np.concatenate(candidates) if n else np.zeros(0, dtype=np.int64),
        "has_features": np.array([r.features is not None for r in records], dtype=bool),
        "feature_counts": np.array([f.shape[0] for f in features], dtype=np.int64),
        "features": (
            np.concatenate([f.reshape(-1, n_features) for f in features if f.size])
            if n_features
            else np.zeros((0, 0), dtype=np.float32)
        ).astype(np.float32),
    }
    with atomic_file(path) as file:
        np.savez(file, **arrays)


def load_feedback(path: str | os.PathLike[str]) -> list[FeedbackRecord]:
    """The records ``save_feedback`` wrote; ValueError naming the file if it is not one."""
    where = os.fspath(path)
    try:
        with np.load(where, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, KeyError, EOFError) as error:
        raise ValueError(f"{where}: not a fastplace feedback file ({error})") from None
    if header.get("format") != _FEEDBACK_FORMAT or header.get("version") != _FEEDBACK_VERSION:
        raise ValueError(f"{where}: not a fastplace feedback file of version {_FEEDBACK_VERSION}")
    n = int(header["records"])
    counts, feature_counts = arrays["candidate_counts"], arrays["feature_counts"]
    if counts.shape != (n,) or feature_counts.shape != (n,) or arrays["request"].shape[0] != n:
        raise ValueError(f"{where}: damaged feedback file (record counts disagree)")
    starts = np.concatenate(([0], np.cumsum(counts)))
    feature_starts = np.concatenate(([0], np.cumsum(feature_counts)))
    records = []
    for i in range(n):
        features = None
        if arrays["has_features"][i]:
            features = arrays["features"][feature_starts[i] : feature_starts[i + 1]].copy()
        records.append(
            FeedbackRecord(
                request=tuple(int(x) for x in arrays["request"][i]),
                greedy_server=int(arrays["greedy_server"][i]),
                ro_server=int(arrays["ro_server"][i]),
                source=str(arrays["source"][i]),
                reason=str(arrays["reason"][i]),
                ro_latency_ns=int(arrays["ro_latency_ns"][i]),
                candidates=arrays["candidates"][starts[i] : starts[i + 1]].copy(),
                features=features,
            )
        )
    return records
