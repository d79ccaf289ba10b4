"""Stateful test: place/release/gang on a Cluster and intern/fetch/evict on a BlockIndex,
interleaved with saves, snapshots and file reads running in background threads, then
joins, loads and restores. Whatever the interleaving, a loaded or restored state is
exactly one the reference model was in while the save or snapshot ran, no save or read
ever fails, and the machine continues from the loaded state checked against the model.

Each object's history is the list of states it went through, as (snapshot bytes, a copy
of the reference model then). A background save or snapshot runs while the main thread
keeps changing the object, so what it captured must be one of the states between its
start and its join. Saves to one path in one batch race; the file after the batch must
hold a state from one of them.
"""

from __future__ import annotations

import copy
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from fastplace import BlockIndex, Cluster
from reference.block_index_model import ReferenceBlockIndex
from reference.cluster_model import ReferenceCluster, Twin

SUBJECT = st.sampled_from(["cluster", "blocks"])
ROW = st.lists(st.integers(0, 12), min_size=2, max_size=2)
MAX_IN_FLIGHT = 4


@dataclass
class Job:
    """A background thread: what it does, on which subject, and the history index at
    its start (its window of possible states opens there)."""

    kind: str  # "save", "snapshot" or "read"
    subject: str
    thread: threading.Thread
    start: int
    results: list[bytes] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


@dataclass
class Subject:
    """A persisted object, its reference and every state it has been in."""

    cls: type[Cluster] | type[BlockIndex]
    path: Path
    live: Any
    reference: Callable[[], Any]
    """A deep copy of the reference model as it is now."""
    adopt: Callable[[Any, Any], None]
    """Continue from (loaded object, reference copy)."""
    history: list[tuple[bytes, Any]] = field(default_factory=list)
    saved: list[tuple[int, int]] = field(default_factory=list)
    """Windows (first, last history index) of the latest batch of saves to ``path``."""

    def record(self) -> None:
        data = self.live.snapshot()
        if not self.history or self.history[-1][0] != data:
            self.history.append((data, self.reference()))

    def states(self, first: int, last: int) -> dict[bytes, int]:
        """Snapshot -> the latest history index holding it, within [first, last]."""
        return {data: i for i, (data, _) in enumerate(self.history) if first <= i <= last}


def block_size(block_hash: int) -> int:
    return 1 + (block_hash * 37) % 61


class SaveLoadThreadsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # Switch threads every 10 us (not 5 ms): background saves, snapshots and reads
        # then really interleave with the main thread's changes.
        self.switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)
        self.folder = Path(tempfile.mkdtemp(prefix="fastplace-save-load-"))
        self.jobs: list[Job] = []
        self.subjects: dict[str, Subject] = {}

    @initialize(
        n_servers=st.sampled_from([1, 2, 3, 64, 65]),
        capacity=st.integers(0, 40),
        cache=st.integers(0, 200),
    )
    def start(self, n_servers: int, capacity: int, cache: int) -> None:
        rows = [[capacity, capacity + s % 3] for s in range(n_servers)]
        self.twin = Twin(Cluster(rows), ReferenceCluster(rows))
        self.index = BlockIndex(n_servers, cache)
        self.blocks = ReferenceBlockIndex([cache] * n_servers)

        def adopt_cluster(loaded: Cluster, reference: Any) -> None:
            model, ids = reference
            self.twin.core, self.twin.model, self.twin.ids = loaded, model, ids

        def adopt_blocks(loaded: BlockIndex, reference: Any) -> None:
            self.index, self.blocks = loaded, reference

        self.subjects = {
            "cluster": Subject(
                Cluster,
                self.folder / "cluster.snap",
                self.twin.core,
                lambda: (copy.deepcopy(self.twin.model), dict(self.twin.ids)),
                adopt_cluster,
            ),
            "blocks": Subject(
                BlockIndex,
                self.folder / "blocks.snap",
                self.index,
                lambda: copy.deepcopy(self.blocks),
                adopt_blocks,
            ),
        }
        self.record()

    def record(self) -> None:
        self.subjects["cluster"].live = self.twin.core
        self.subjects["blocks"].live = self.index
        for subject in self.subjects.values():
            subject.record()

    # ---- changes, in the main thread --------------------------------------------------

    @rule(row=ROW, policy=st.sampled_from(["first_fit", "best_fit"]))
    def place_with(self, row: list[int], policy: str) -> None:
        self.twin.place_with(row, policy)
        self.record()

    @precondition(lambda self: self.twin.ids)
    @rule(pick=st.integers(0, 10**6))
    def release(self, pick: int) -> None:
        container = sorted(self.twin.ids)[pick % len(self.twin.ids)]
        assert self.twin.release(container)
        self.record()

    @rule(rows=st.lists(ROW, min_size=1, max_size=3))
    def place_gang(self, rows: list[list[int]]) -> None:
        self.twin.place_gang(rows, "first_fit")
        self.record()

    @rule(hashes=st.lists(st.integers(0, 30), min_size=1, max_size=6), server=st.integers(0, 99))
    def fetch_version(self, hashes: list[int], server: int) -> None:
        sizes = [block_size(h) for h in hashes]
        ids = self.index.intern(hashes, sizes)
        assert ids.tolist() == self.blocks.intern(hashes, sizes)
        s = server % self.blocks.n_servers
        assert self.index.fetch(s, ids) == self.blocks.fetch(s, ids.tolist())
        self.record()

    @rule(server=st.integers(0, 99))
    def evict_server(self, server: int) -> None:
        s = server % self.blocks.n_servers
        assert self.index.evict_server(s) == self.blocks.evict_server(s)
        self.record()

    # ---- background threads -------------------------------------------------------------

    def _spawn(self, kind: str, name: str, body: Callable[[Job], None]) -> None:
        subject = self.subjects[name]
        job = Job(kind, name, threading.Thread(), len(subject.history) - 1)

        def run() -> None:
            try:
                body(job)
            except BaseException as error:
                job.errors.append(error)

        job.thread = threading.Thread(target=run, daemon=True)
        self.jobs.append(job)
        job.thread.start()

    @precondition(lambda self: len(self.jobs) < MAX_IN_FLIGHT)
    @rule(name=SUBJECT)
    def save_in_background(self, name: str) -> None:
        subject = self.subjects[name]
        live, path = subject.live, subject.path
        self._spawn("save", name, lambda job: live.save(path))

    @precondition(lambda self: len(self.jobs) < MAX_IN_FLIGHT)
    @rule(name=SUBJECT)
    def snapshot_in_background(self, name: str) -> None:
        live = self.subjects[name].live
        self._spawn("snapshot", name, lambda job: job.results.append(live.snapshot()))

    @precondition(lambda self: len(self.jobs) < MAX_IN_FLIGHT)
    @rule(name=SUBJECT, reads=st.integers(1, 20))
    def read_file_in_background(self, name: str, reads: int) -> None:
        subject = self.subjects[name]

        def read(job: Job) -> None:
            for _ in range(reads):
                if subject.path.exists():  # no file before the first save
                    job.results.append(subject.cls.load(subject.path).snapshot())

        self._spawn("read", name, read)

    # ---- joins, loads and restores --------------------------------------------------------

    @rule(adopt=st.booleans(), data=st.data())
    def join_then_load(self, adopt: bool, data: st.DataObject) -> None:
        """Joins every thread and checks what each one saw; then loads each subject's
        file (and, with ``adopt``, continues from it) or restores a background snapshot."""
        restorable: dict[str, list[tuple[bytes, int]]] = {name: [] for name in self.subjects}
        batch: dict[str, list[tuple[int, int]]] = {name: [] for name in self.subjects}
        for job in self.jobs:
            job.thread.join(60)
            assert not job.thread.is_alive(), f"{job.kind} of {job.subject} hung"
            assert job.errors == [], f"{job.kind} of {job.subject} failed: {job.errors[0]!r}"
            subject = self.subjects[job.subject]
            window = (job.start, len(subject.history) - 1)
            everything = subject.states(0, window[1])
            for result in job.results:
                # a read may see an older save's file; it must be whole, a state it was in
                assert result in (subject.states(*window) if job.kind == "snapshot" else everything)
            if job.kind == "save":
                batch[job.subject].append(window)
            if job.kind == "snapshot":
                restorable[job.subject] += [(r, subject.states(*window)[r]) for r in job.results]
        self.jobs = []
        for name, subject in self.subjects.items():
            if batch[name]:
                subject.saved = batch[name]
            choices = []
            if subject.saved:
                choices.append("load")
            if restorable[name]:
                choices.append("restore")
            if not choices:
                continue
            how = data.draw(st.sampled_from(choices), label=f"{name}: load or restore")
            if how == "load":
                loaded = subject.cls.load(subject.path)
                found: dict[bytes, int] = {}
                for first, last in subject.saved:
                    found.update(subject.states(first, last))
                assert loaded.snapshot() in found, f"{name}: the file holds no saved state"
                index = found[loaded.snapshot()]
            else:
                data_bytes, index = data.draw(st.sampled_from(restorable[name]))
                loaded = subject.cls.restore(data_bytes)
            loaded.validate()
            if adopt:
                subject.adopt(loaded, copy.deepcopy(subject.history[index][1]))
        self.record()

    # ---- after every step -------------------------------------------------------------------

    @invariant()
    def same_as_the_reference(self) -> None:
        if not self.subjects:
            return
        self.twin.check_state()
        self.twin.check_containers()
        index, model = self.index, self.blocks
        index.validate()
        assert index.used_bytes().tolist() == model.used_bytes()
        assert index.block_hashes().tolist() == model.hashes
        for server in range(model.n_servers):
            assert index.server_blocks(server).tolist() == model.server_blocks(server)
        ids = np.arange(model.n_blocks, dtype=np.int32)
        assert index.cached_bytes(ids).tolist() == model.cached_bytes(ids.tolist())

    def teardown(self) -> None:
        for job in self.jobs:
            job.thread.join(60)
        shutil.rmtree(self.folder, ignore_errors=True)
        sys.setswitchinterval(self.switch_interval)


# A few seconds by default: half the loaded profile's examples (ci: 50). A
# profile with more examples (HYPOTHESIS_PROFILE) runs this longer.
SaveLoadThreadsMachine.TestCase.settings = settings(
    max_examples=max(10, settings.default.max_examples // 2),
    stateful_step_count=40,
    deadline=None,
)
test_save_load_with_threads = SaveLoadThreadsMachine.TestCase
