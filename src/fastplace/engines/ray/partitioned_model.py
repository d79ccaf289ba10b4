"""The multi-task recommendation (MTML) model, partitioned for distributed inference.

The model is the one of ``examples/mtml_similarity.py`` (the block-similarity issue),
made configurable so that tests can use a tiny one: sparse embedding tables (users,
items and a few small categorical features), a dense bottom MLP, a shared tower and
one multi-label head per task.

Partitioning: every embedding table is cut into ``n`` contiguous row ranges, range
``p`` on partition ``p``; partition 0 also holds the dense part (bottom MLP, shared
tower, heads). Partition 0 receives a batch, asks each partition for the rows it holds
(:meth:`Partition.lookup`, the fan-out), gathers them and runs the dense part.

Training is torch (:class:`MTML`, :func:`train_versions`); serving is numpy only
(:class:`Partition`), so a partition's process never imports torch. The numpy forward
computes the same function as the torch module (tested with ``torch.allclose``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import torch

__all__ = [
    "MTMLConfig",
    "Partition",
    "Weights",
    "forward_partitioned",
    "make_batch",
    "shard_bounds",
    "split_weights",
    "torch_model",
    "train_versions",
]

Weights = dict[str, npt.NDArray[Any]]
Batch = tuple[dict[str, npt.NDArray[np.int64]], npt.NDArray[np.float32]]
_EMBEDDING = "embeddings."


@dataclass(frozen=True)
class MTMLConfig:
    """Table sizes and layer widths (the defaults are the demo's small model)."""

    vocab: Mapping[str, int] = field(
        default_factory=lambda: {
            "user": 40_000,
            "item": 20_000,
            "category": 1_000,
            "region": 200,
            "device": 20,
        }
    )
    dim: int = 32
    dense_features: int = 16
    tasks: Mapping[str, int] = field(default_factory=lambda: {"click": 1, "engage": 4, "topic": 8})
    bottom_hidden: int = 64
    shared_hidden: tuple[int, int] = (128, 64)
    head_hidden: int = 32

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["vocab"] = dict(self.vocab)
        data["tasks"] = dict(self.tasks)
        data["shared_hidden"] = list(self.shared_hidden)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MTMLConfig:
        values = dict(data)
        values["shared_hidden"] = tuple(values["shared_hidden"])
        return cls(**values)

    @classmethod
    def tiny(cls) -> MTMLConfig:
        """A model of ~0.3 MB for tests."""
        return cls(
            vocab={"user": 2_000, "item": 1_200, "category": 100, "region": 20, "device": 5},
            dim=16,
            dense_features=8,
            bottom_hidden=16,
            shared_hidden=(32, 16),
            head_hidden=8,
        )


def torch_model(config: MTMLConfig, *, sparse: bool = False) -> torch.nn.Module:
    """The unpartitioned model as a torch module: ``model(ids, dense) -> {task: logits}``."""
    import torch
    from torch import nn

    class MTML(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = nn.ModuleDict(
                {
                    name: nn.Embedding(rows, config.dim, sparse=sparse)
                    for name, rows in config.vocab.items()
                }
            )
            self.bottom = nn.Sequential(
                nn.Linear(config.dense_features, config.bottom_hidden),
                nn.ReLU(),
                nn.Linear(config.bottom_hidden, config.dim),
            )
            first, second = config.shared_hidden
            self.shared = nn.Sequential(
                nn.Linear(config.dim * (len(config.vocab) + 1), first),
                nn.ReLU(),
                nn.Linear(first, second),
                nn.ReLU(),
            )
            self.heads = nn.ModuleDict(
                {
                    task: nn.Sequential(
                        nn.Linear(second, config.head_hidden),
                        nn.ReLU(),
                        nn.Linear(config.head_hidden, labels),
                    )
                    for task, labels in config.tasks.items()
                }
            )

        def forward(
            self, ids: dict[str, torch.Tensor], dense: torch.Tensor
        ) -> dict[str, torch.Tensor]:
            features = [self.embeddings[name](ids[name]) for name in config.vocab]
            features.append(self.bottom(dense))
            shared = self.shared(torch.cat(features, dim=1))
            return {task: head(shared) for task, head in self.heads.items()}

    return MTML()


def shard_bounds(rows: int, n_partitions: int) -> npt.NDArray[np.int64]:
    """Row ranges of one table: partition ``p`` holds rows ``bounds[p]:bounds[p + 1]``."""
    if n_partitions < 1:
        raise ValueError(f"n_partitions = {n_partitions} must be >= 1")
    return np.linspace(0, rows, n_partitions + 1).round().astype(np.int64)


def split_weights(state: Mapping[str, Any], config: MTMLConfig, n_partitions: int) -> list[Weights]:
    """A model's weights (a torch ``state_dict`` or numpy arrays) cut into partitions.

    Partition ``p`` holds ``embeddings.<table>.weight`` rows of its range; partition 0
    also every dense parameter. Arrays are float32 and C-contiguous.
    """
    arrays = {key: _as_numpy(value) for key, value in state.items()}
    parts: list[Weights] = [{} for _ in range(n_partitions)]
    for name, rows in config.vocab.items():
        table = arrays[f"{_EMBEDDING}{name}.weight"]
        if table.shape != (rows, config.dim):
            raise ValueError(f"table {name} has shape {table.shape}, expected {(rows, config.dim)}")
        bounds = shard_bounds(rows, n_partitions)
        for p in range(n_partitions):
            parts[p][f"{_EMBEDDING}{name}.weight"] = np.ascontiguousarray(
                table[bounds[p] : bounds[p + 1]]
            )
    for key, value in arrays.items():
        if not key.startswith(_EMBEDDING):
            parts[0][key] = np.ascontiguousarray(value)
    return parts


def _as_numpy(value: Any) -> npt.NDArray[np.float32]:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.ascontiguousarray(value, dtype=np.float32)


class Partition:
    """One partition's weights and its part of the forward pass (numpy only)."""

    def __init__(self, weights: Weights, config: MTMLConfig, index: int, n_partitions: int) -> None:
        self.config = config
        self.index = index
        self.n_partitions = n_partitions
        self.weights = weights
        self.bounds = {
            name: shard_bounds(rows, n_partitions) for name, rows in config.vocab.items()
        }
        self.tables = {name: weights[f"{_EMBEDDING}{name}.weight"] for name in config.vocab}

    def lookup(self, local_ids: Mapping[str, npt.NDArray[np.int64]]) -> dict[str, Any]:
        """Rows of this partition's shards; ids are relative to the shard's first row."""
        return {name: self.tables[name][ids] for name, ids in local_ids.items()}

    def route(
        self, ids: Mapping[str, npt.NDArray[np.int64]]
    ) -> tuple[list[dict[str, npt.NDArray[np.int64]]], dict[str, npt.NDArray[np.int64]]]:
        """Splits a batch's ids by owning partition: (per-partition local ids, owners).

        ValueError if an id is outside its table.
        """
        requests: list[dict[str, npt.NDArray[np.int64]]] = [{} for _ in range(self.n_partitions)]
        owners = {}
        for name, rows in self.config.vocab.items():
            column = np.asarray(ids[name], dtype=np.int64)
            if column.size and (column.min() < 0 or column.max() >= rows):
                raise ValueError(f"ids[{name!r}] must lie in [0, {rows})")
            bounds = self.bounds[name]
            owner = np.searchsorted(bounds, column, side="right") - 1
            owners[name] = owner
            for p in range(self.n_partitions):
                mask = owner == p
                if mask.any():
                    requests[p][name] = column[mask] - bounds[p]
        return requests, owners

    def gather(
        self,
        owners: Mapping[str, npt.NDArray[np.int64]],
        answers: Sequence[Mapping[str, npt.NDArray[np.float32]]],
    ) -> dict[str, npt.NDArray[np.float32]]:
        """Each table's rows for the whole batch, from every partition's lookup answer."""
        embedded = {}
        for name, owner in owners.items():
            out = np.empty((owner.shape[0], self.config.dim), dtype=np.float32)
            for p, answer in enumerate(answers):
                if name in answer:
                    out[owner == p] = answer[name]
            embedded[name] = out
        return embedded

    def dense_forward(
        self, embedded: Mapping[str, npt.NDArray[np.float32]], dense: npt.NDArray[np.float32]
    ) -> dict[str, npt.NDArray[np.float32]]:
        """The dense part (partition 0 only): bottom MLP, shared tower, task heads."""
        if self.index != 0:
            raise RuntimeError(f"partition {self.index} holds no dense layers")
        w = self.weights
        bottom = _linear(w, "bottom.2", _relu(_linear(w, "bottom.0", dense)))
        features = [embedded[name] for name in self.config.vocab]
        features.append(bottom)
        x = np.concatenate(features, axis=1)
        shared = _relu(_linear(w, "shared.2", _relu(_linear(w, "shared.0", x))))
        return {
            task: _linear(w, f"heads.{task}.2", _relu(_linear(w, f"heads.{task}.0", shared)))
            for task in self.config.tasks
        }


def _linear(w: Weights, layer: str, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = x @ w[f"{layer}.weight"].T + w[f"{layer}.bias"]
    return out


def _relu(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return np.maximum(x, np.float32(0))


def forward_partitioned(
    partitions: Sequence[Partition],
    ids: Mapping[str, npt.NDArray[np.int64]],
    dense: npt.NDArray[np.float32],
) -> dict[str, npt.NDArray[np.float32]]:
    """The whole forward pass through in-process partitions (what the actors do, minus Ray)."""
    head = partitions[0]
    requests, owners = head.route(ids)
    answers = [part.lookup(request) for part, request in zip(partitions, requests, strict=True)]
    return head.dense_forward(head.gather(owners, answers), np.asarray(dense, np.float32))


def make_batch(config: MTMLConfig, size: int, rng: np.random.Generator) -> Batch:
    """A random request batch: ids for every table and dense features."""
    ids = {name: rng.integers(0, rows, size, dtype=np.int64) for name, rows in config.vocab.items()}
    dense = rng.normal(size=(size, config.dense_features)).astype(np.float32)
    return ids, dense


def _day_ids(
    config: MTMLConfig, day: int, size: int, rng: np.random.Generator
) -> dict[str, npt.NDArray[np.int64]]:
    """A day's traffic, as in the example: a popular head, the ids registered that day,
    and a thin scatter of returning old ids; small tables are hit all over."""
    ids = {}
    for name, rows in config.vocab.items():
        if rows < 1_000:
            ids[name] = rng.integers(0, rows, size, dtype=np.int64)
            continue
        head = max(1, rows // 50)
        fresh = max(1, rows // 20)
        live = min(rows, rows * (3 + day) // 6)  # day 1: 67 %, day 2: 83 %, day 3: 100 %
        kind = rng.choice(3, size=size, p=[0.6, 0.39, 0.01])
        ids[name] = np.where(
            kind == 0,
            rng.zipf(1.3, size) % head,
            np.where(
                kind == 1, live - 1 - rng.integers(0, fresh, size), rng.integers(0, live, size)
            ),
        ).astype(np.int64)
    return ids


def train_versions(
    config: MTMLConfig,
    n_versions: int,
    *,
    steps_per_day: int = 20,
    batch: int = 256,
    seed: int = 0,
) -> list[dict[str, npt.NDArray[np.float32]]]:
    """Recurrent retraining: version ``v`` continues from ``v - 1`` on day ``v``'s traffic.

    Embeddings train with SparseAdam (only rows seen that day change, as in production
    recommendation models), the dense part with Adam. Labels come from a fixed random
    teacher. Returns each version's weights as numpy arrays.
    """
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model: Any = torch_model(config, sparse=True)
    sparse = list(model.embeddings.parameters())
    dense = [p for name, p in model.named_parameters() if not name.startswith(_EMBEDDING)]
    optimisers = [torch.optim.SparseAdam(sparse, lr=1e-2), torch.optim.Adam(dense, lr=1e-3)]
    teacher = {
        task: rng.normal(size=(config.dense_features, labels)).astype(np.float32)
        for task, labels in config.tasks.items()
    }
    loss_fn = torch.nn.BCEWithLogitsLoss()
    versions = []
    for day in range(1, n_versions + 1):
        for _ in range(steps_per_day):
            ids = _day_ids(config, day, batch, rng)
            features = rng.normal(size=(batch, config.dense_features)).astype(np.float32)
            user_bias = (ids[next(iter(config.vocab))] % 7 - 3).astype(np.float32)[:, None]
            out = model(
                {name: torch.from_numpy(v) for name, v in ids.items()}, torch.from_numpy(features)
            )
            loss = sum(
                loss_fn(
                    out[task],
                    torch.from_numpy(((features @ w + user_bias) > 0).astype(np.float32)),
                )
                for task, w in teacher.items()
            )
            for optimiser in optimisers:
                optimiser.zero_grad()
            loss.backward()
            for optimiser in optimisers:
                optimiser.step()
        # Copies: state_dict() tensors share memory with the parameters trained next.
        versions.append({k: _as_numpy(v).copy() for k, v in model.state_dict().items()})
    return versions
