"""Reproduce the paper's Fig. 3 on a model trained here: block similarity of two versions.

A small multi-task multi-label (MTML) recommendation model, like the paper's: sparse
embedding tables (users, items, and a few small categorical features), a dense bottom
MLP, a shared tower and three multi-label task heads. Version 1 is trained on "day 1"
of synthetic interaction data; version 2 continues from it on day 2, version 3 on day 3,
as recurrent retraining does. Each version is saved with ``torch.save`` and as
safetensors, and :mod:`fastplace.blocks` measures, from 32 KiB to 1 MiB blocks, which
share of the new version's blocks the old version already holds, with fixed-size blocks
and with content-defined chunks.

The data mimics what makes real recommendation models similar across versions: ids are
handed out in order as users and items appear, a day's traffic comes from a popular
head, recently registered ids and a thin scatter of returning old ids, so most rows of
the tables see no gradient on a given day. A second lineage trains the same model with
dense AdamW (weight decay), which moves every parameter on every step.

    python examples/mtml_similarity.py                     # ~2 minutes on 2 CPU cores
    python examples/mtml_similarity.py --figure docs/fig3_similarity.png \\
        --json docs/fig3_similarity.json

Needs torch and safetensors (``pip install 'fastplace[torch]'``).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from fastplace.blocks import Fingerprints, fingerprint, format_size, parse_sizes, similarity
from fastplace.blocks.plot import plot_similarity

# Table capacities (rows): the feature space is fixed; ids are registered over time.
VOCAB = {"user": 120_000, "item": 60_000, "category": 2_000, "region": 300, "device": 40}
DIM = 48
DENSE_FEATURES = 16
TASKS = {"click": 1, "engage": 4, "topic": 8}  # task -> labels (multi-label heads)


class MTML(nn.Module):
    """Embeddings + bottom MLP -> shared tower -> one multi-label head per task."""

    def __init__(self, *, sparse: bool) -> None:
        super().__init__()
        self.embeddings = nn.ModuleDict(
            {name: nn.Embedding(rows, DIM, sparse=sparse) for name, rows in VOCAB.items()}
        )
        self.bottom = nn.Sequential(nn.Linear(DENSE_FEATURES, 64), nn.ReLU(), nn.Linear(64, DIM))
        width = DIM * (len(VOCAB) + 1)
        self.shared = nn.Sequential(
            nn.Linear(width, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU()
        )
        self.heads = nn.ModuleDict(
            {
                task: nn.Sequential(nn.Linear(128, 32), nn.ReLU(), nn.Linear(32, labels))
                for task, labels in TASKS.items()
            }
        )

    def forward(self, ids: dict[str, torch.Tensor], dense: torch.Tensor) -> dict[str, torch.Tensor]:
        features = [self.embeddings[name](ids[name]) for name in VOCAB]
        features.append(self.bottom(dense))
        shared = self.shared(torch.cat(features, dim=1))
        return {task: head(shared) for task, head in self.heads.items()}


@dataclass
class Day:
    ids: dict[str, torch.Tensor]
    dense: torch.Tensor
    labels: dict[str, torch.Tensor]


def registered(name: str, day: int) -> int:
    """Ids handed out by the end of ``day`` (users and items grow; small tables are full)."""
    rows = VOCAB[name]
    if name in ("user", "item"):
        return min(rows, rows * (2 + day) // 5)  # day 1: 60 %, day 2: 80 %, day 3: 100 %
    return rows


def draw_ids(name: str, day: int, n: int, rng: np.random.Generator, comeback: float) -> np.ndarray:
    """A popular head, recently registered ids, and a thin scatter of returning old ids."""
    live = registered(name, day)
    if name not in ("user", "item"):
        return rng.zipf(1.3, n) % live
    head = max(1, VOCAB[name] // 40)
    recent = VOCAB[name] // 6
    source = rng.choice(3, size=n, p=[0.55, 0.45 - comeback, comeback])
    ids = np.where(
        source == 0,
        rng.zipf(1.2, n) % head,
        np.where(source == 1, live - 1 - rng.integers(0, recent, n), rng.integers(0, live, n)),
    )
    return ids


class Teacher:
    """Hidden ground truth: latent vectors per id and a random readout per label."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.latent = {name: rng.normal(size=(rows, 8)) for name, rows in VOCAB.items()}
        self.dense = rng.normal(size=(DENSE_FEATURES, 8))
        self.readout = {task: rng.normal(size=(8, labels)) for task, labels in TASKS.items()}

    def labels(self, ids: dict[str, np.ndarray], dense: np.ndarray) -> dict[str, np.ndarray]:
        z = dense @ self.dense + sum(self.latent[name][ids[name]] for name in VOCAB)
        z = np.tanh(z / 3.0)
        return {task: (z @ w > 0.3).astype(np.float32) for task, w in self.readout.items()}


def make_day(day: int, n: int, teacher: Teacher, seed: int, comeback: float) -> Day:
    rng = np.random.default_rng([seed, day])
    ids = {name: draw_ids(name, day, n, rng, comeback) for name in VOCAB}
    dense = rng.normal(size=(n, DENSE_FEATURES)).astype(np.float32)
    labels = teacher.labels(ids, dense)
    return Day(
        ids={name: torch.from_numpy(values.astype(np.int64)) for name, values in ids.items()},
        dense=torch.from_numpy(dense),
        labels={task: torch.from_numpy(values) for task, values in labels.items()},
    )


class Trainer:
    """A model and its optimisers, kept across days as recurrent retraining does."""

    def __init__(self, optimiser: str, seed: int) -> None:
        torch.manual_seed(seed)
        self.optimiser = optimiser
        self.model = MTML(sparse=optimiser == "lazy-adam")
        embeddings = list(self.model.embeddings.parameters())
        dense = [p for name, p in self.model.named_parameters() if not name.startswith("emb")]
        if optimiser == "lazy-adam":
            # SparseAdam updates only the rows that appear in the batch ("lazy" Adam).
            self.optimisers: list[torch.optim.Optimizer] = [
                torch.optim.SparseAdam(embeddings, lr=1e-3),
                torch.optim.Adam(dense, lr=1e-3),
            ]
        elif optimiser == "adamw":
            # Decoupled weight decay shrinks every parameter on every step.
            self.optimisers = [torch.optim.AdamW(self.model.parameters(), lr=1e-3)]
        else:
            raise ValueError(f"optimiser = {optimiser!r} must be 'lazy-adam' or 'adamw'")
        self.loss = nn.BCEWithLogitsLoss()

    def train(self, day: Day, batch: int) -> float:
        self.model.train()
        total = 0.0
        n = day.dense.shape[0]
        for start in range(0, n, batch):
            rows = slice(start, start + batch)
            out = self.model({k: v[rows] for k, v in day.ids.items()}, day.dense[rows])
            loss = sum(self.loss(out[task], day.labels[task][rows]) for task in TASKS)
            assert isinstance(loss, torch.Tensor)
            for optimiser in self.optimisers:
                optimiser.zero_grad()
            loss.backward()
            for optimiser in self.optimisers:
                optimiser.step()
            total += float(loss.detach()) * (min(n, start + batch) - start)
        return total / n

    def save(self, directory: Path, version: int, lineage: list[str]) -> dict[str, Path]:
        state = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
        pt = directory / f"mtml-{self.optimiser}-v{version}.pt"
        st = directory / f"mtml-{self.optimiser}-v{version}.safetensors"
        torch.save(state, pt)
        # Training lineage in the header grows with each version, as real metadata does;
        # it moves every tensor's offset in the file by a few bytes.
        save_file(state, st, metadata={"version": str(version), "trained_on": ",".join(lineage)})
        return {"torch.save": pt, "safetensors": st}


def identical_rows(old: Path, new: Path) -> dict[str, float]:
    """Ground truth: share of each embedding table's rows that are bit-identical."""
    a, b = torch.load(old), torch.load(new)
    shares = {}
    for name in VOCAB:
        key = f"embeddings.{name}.weight"
        shares[name] = float((a[key] == b[key]).all(dim=1).float().mean())
    dense_same = all(torch.equal(a[k], b[k]) for k in a if not k.startswith("embeddings."))
    shares["dense layers identical"] = float(dense_same)
    return shares


def measure(
    files: dict[tuple[str, int], dict[str, Path]],
    pairs: list[tuple[str, int, int]],
    sizes: list[int],
) -> list[dict[str, Any]]:
    cache: dict[tuple[Path, int, bool], Fingerprints] = {}

    def fp(path: Path, size: int, cdc: bool) -> Fingerprints:
        key = (path, size, cdc)
        if key not in cache:
            cache[key] = fingerprint(path, block_size=size, cdc=cdc)
        return cache[key]

    rows = []
    for optimiser, v_old, v_new in pairs:
        for fmt in ("torch.save", "safetensors"):
            old, new = files[optimiser, v_old][fmt], files[optimiser, v_new][fmt]
            for cdc in (False, True):
                for size in sizes:
                    result = similarity(fp(old, size, cdc), fp(new, size, cdc))
                    rows.append(
                        {
                            "optimiser": optimiser,
                            "pair": f"v{v_old}->v{v_new}",
                            "format": fmt,
                            "chunking": "content-defined" if cdc else "fixed",
                            "block_size": size,
                            "similar_blocks": result.similar_blocks,
                            "similar_bytes": result.similar_bytes,
                            "file_bytes": result.total_bytes,
                        }
                    )
    return rows


def draw_figure(rows: list[dict[str, Any]], path: Path) -> None:
    """Fig. 3: similar blocks of v2 vs block size, per file format and chunking."""

    def curve(optimiser: str, fmt: str, chunking: str) -> list[tuple[int, float]]:
        return [
            (r["block_size"], r["similar_blocks"])
            for r in rows
            if (r["optimiser"], r["pair"], r["format"], r["chunking"])
            == (optimiser, "v1->v2", fmt, chunking)
        ]

    curves = {
        f"{fmt}, {chunking}": curve("lazy-adam", fmt, chunking)
        for fmt in ("torch.save", "safetensors")
        for chunking in ("fixed", "content-defined")
    }
    curves["AdamW (weight decay), any format or chunking"] = curve("adamw", "torch.save", "fixed")
    plot_similarity(curves, path, title="MTML model, version 1 -> 2: blocks of v2 already in v1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out/mtml"), help="model files go here")
    parser.add_argument("--samples", type=int, default=80_000, help="samples per day")
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument(
        "--comeback", type=float, default=0.004, help="share of traffic from returning old ids"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--block-sizes", default="32K,64K,128K,256K,512K,1M")
    parser.add_argument("--figure", type=Path, help="write the Fig. 3 curve here (.png)")
    parser.add_argument("--json", type=Path, help="write all measurements here")
    args = parser.parse_args()
    sizes = parse_sizes(args.block_sizes, field="--block-sizes")
    torch.set_num_threads(2)
    args.out.mkdir(parents=True, exist_ok=True)
    teacher = Teacher(args.seed)
    days = {d: make_day(d, args.samples, teacher, args.seed, args.comeback) for d in (1, 2, 3)}

    files: dict[tuple[str, int], dict[str, Path]] = {}
    for optimiser, versions in (("lazy-adam", 3), ("adamw", 2)):
        trainer = Trainer(optimiser, args.seed)
        for version in range(1, versions + 1):
            began = time.perf_counter()
            loss = trainer.train(days[version], args.batch)
            lineage = [f"day{d}" for d in range(1, version + 1)]
            files[optimiser, version] = trainer.save(args.out, version, lineage)
            size = files[optimiser, version]["torch.save"].stat().st_size
            print(
                f"{optimiser:9} v{version}: loss {loss:.4f}, {size / 2**20:.1f} MiB, "
                f"{time.perf_counter() - began:.1f} s"
            )

    pairs = [("lazy-adam", 1, 2), ("lazy-adam", 2, 3), ("adamw", 1, 2)]
    truth = {
        f"{o} v{a}->v{b}": identical_rows(files[o, a]["torch.save"], files[o, b]["torch.save"])
        for o, a, b in pairs
    }
    began = time.perf_counter()
    rows = measure(files, pairs, sizes)
    print(f"fingerprinting and comparing: {time.perf_counter() - began:.1f} s")

    for label, shares in truth.items():
        text = ", ".join(f"{k} {100 * v:.0f} %" for k, v in shares.items())
        print(f"identical embedding rows, {label}: {text}")
    header = f"{'optimiser':10}{'pair':9}{'format':13}{'chunking':17}" + "".join(
        f"{format_size(s):>7}" for s in sizes
    )
    print("\nsimilar blocks (% of the new version's blocks present in the old one)")
    print(header)
    for i in range(0, len(rows), len(sizes)):
        group = rows[i : i + len(sizes)]
        first = group[0]
        print(
            f"{first['optimiser']:10}{first['pair']:9}{first['format']:13}{first['chunking']:17}"
            + "".join(f"{100 * r['similar_blocks']:7.1f}" for r in group)
        )

    if args.figure:
        draw_figure(rows, args.figure)
        print(f"figure: {args.figure}")
    if args.json:
        args.json.write_text(json.dumps({"identical_rows": truth, "similarity": rows}, indent=1))
        print(f"numbers: {args.json}")


if __name__ == "__main__":
    main()
