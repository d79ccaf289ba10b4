"""Every file fastplace writes is atomic and durable (fastplace._atomic): concurrent
writers to one path (threads and processes) never fail, a reader sees a whole old or
new file, each write fsyncs the file before the rename and the folder after it, and a
crashed writer's temporary is ignored by readers and cleaned by the next write."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from child_process import child_env
from fastplace import BlockIndex, Cluster
from fastplace import _atomic as atomic
from fastplace.allocator import FeedbackRecord
from run_threads import run_threads

SRC = Path(__file__).resolve().parents[1] / "src" / "fastplace"


@dataclass(frozen=True)
class Writer:
    """A fastplace writer: ``save(path, k)`` writes variant ``k``; ``read(path)`` reads
    the file back as a key that names the variant it holds."""

    name: str
    save: Callable[[Path, int], None]
    read: Callable[[Path], Hashable]
    key: Callable[[int], Hashable]


_CLUSTER_SNAPSHOTS: dict[int, bytes] = {}


def _cluster(k: int) -> Cluster:
    """Cluster k, the same bytes every time: each new Cluster draws its own id key, so
    the k-th one is built once and every later call restores it."""
    if k not in _CLUSTER_SNAPSHOTS:
        cluster = Cluster([[100 + k, 50], [64, 64]])
        cluster.place(0, [k, 1])
        _CLUSTER_SNAPSHOTS[k] = cluster.snapshot()
    return Cluster.restore(_CLUSTER_SNAPSHOTS[k])


def _block_index(k: int) -> BlockIndex:
    index = BlockIndex(2, 1000 + k)
    index.fetch(0, index.intern([k + 1], [10]))
    return index


def _feedback(k: int) -> list[FeedbackRecord]:
    return [FeedbackRecord((k, 1), k, -1, "greedy", "ok", 0, np.array([k], np.int64))]


def _fingerprint(k: int):  # type: ignore[no-untyped-def]
    from fastplace.blocks import fingerprint

    return fingerprint(bytes([k]) * 3000, block_size=1024)


def _writers() -> list[Writer]:
    from fastplace.optimizer.retrain import load_feedback, save_feedback
    from fastplace.sim.report import write_json

    writers = [
        Writer(
            "Cluster.save",
            lambda p, k: _cluster(k).save(p),
            lambda p: Cluster.load(p).snapshot(),
            lambda k: _cluster(k).snapshot(),
        ),
        Writer(
            "BlockIndex.save",
            lambda p, k: _block_index(k).save(p),
            lambda p: BlockIndex.load(p).snapshot(),
            lambda k: _block_index(k).snapshot(),
        ),
        Writer(
            "save_feedback",
            lambda p, k: save_feedback(_feedback(k), p),
            lambda p: load_feedback(p)[0].greedy_server,
            lambda k: k,
        ),
        Writer(
            "sim.report.write_json",
            lambda p, k: write_json({"p": {"m": k}}, p),
            lambda p: json.loads(p.read_text())["policies"]["p"]["m"],
            lambda k: k,
        ),
        Writer(
            "write_atomic",
            lambda p, k: atomic.write_atomic(p, str(k) * 5000),
            lambda p: p.read_text(),
            lambda k: str(k) * 5000,
        ),
    ]
    try:
        from fastplace.blocks import Fingerprints
    except ImportError:
        return writers
    writers.append(
        Writer(
            "Fingerprints.save",
            lambda p, k: _fingerprint(k).save(p),
            lambda p: tuple(Fingerprints.load(p).hashes.tolist()),
            lambda k: tuple(_fingerprint(k).hashes.tolist()),
        )
    )
    return writers


WRITERS = {w.name: w for w in _writers()}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if atomic.is_temporary(p.name))


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_threads_saving_to_one_path_never_fail_and_readers_see_whole_files(
    name: str, tmp_path: Path
) -> None:
    writer = WRITERS[name]
    path = tmp_path / "out.bin"
    n_writers, rounds = 4, 25
    writer.save(path, 0)
    valid = {writer.key(k) for k in range(n_writers + 1)}
    seen: set[Hashable] = set()
    done = threading.Event()

    def save(k: int) -> Callable[[], None]:
        def body() -> None:
            for _ in range(rounds):
                writer.save(path, k)

        return body

    def read() -> None:
        while not done.is_set():
            key = writer.read(path)
            assert key in valid, f"{name}: a reader saw a file no writer wrote"
            seen.add(key)

    errors: list[BaseException] = []

    def guarded_reader() -> None:
        try:
            read()
        except BaseException as error:
            errors.append(error)

    reader = threading.Thread(target=guarded_reader)
    reader.start()
    try:
        run_threads([save(k) for k in range(1, n_writers + 1)])
    finally:
        done.set()
        reader.join(120)
    if errors:
        raise errors[0]
    assert writer.read(path) in {writer.key(k) for k in range(1, n_writers + 1)}
    assert leftovers(tmp_path) == []


def test_processes_saving_to_one_path_never_fail(tmp_path: Path) -> None:
    path = tmp_path / "cluster.snap"
    n_processes, rounds = 4, 40
    valid = {_cluster(k).snapshot() for k in range(n_processes + 1)}
    _cluster(0).save(path)
    code = (
        "import sys\n"
        "from fastplace import Cluster\n"
        "data, rounds, path = bytes.fromhex(sys.argv[1]), int(sys.argv[2]), sys.argv[3]\n"
        "cluster = Cluster.restore(data)\n"
        "for _ in range(rounds):\n"
        "    cluster.save(path)\n"
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code, _cluster(k).snapshot().hex(), str(rounds), str(path)],
            env=child_env(),
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(1, n_processes + 1)
    ]
    reads = 0
    while any(child.poll() is None for child in children):
        assert Cluster.load(path).snapshot() in valid  # never torn, never missing
        reads += 1
    failures = []
    for child in children:
        _, err = child.communicate()
        if child.returncode != 0:
            failures.append(err)
    assert failures == []
    assert reads > 0
    assert Cluster.load(path).snapshot() in valid - {_cluster(0).snapshot()}
    assert leftovers(tmp_path) == []


# ---- durability: fsync of the file before the rename, of the folder after it ---------


@dataclass
class Journal:
    """What the writes did, in order: ("fsync", path, is_dir) and ("replace", src, dst)."""

    events: list[tuple[str, str, object]]

    def check_durable(self, target: Path) -> None:
        """The write that made ``target`` fsynced its file, renamed it, fsynced the folder."""
        renames = [
            i for i, e in enumerate(self.events) if e[0] == "replace" and e[2] == str(target)
        ]
        assert renames, f"{target} was not renamed into place: {self.events}"
        at = renames[-1]
        source = self.events[at][1]
        assert ("fsync", source, False) in self.events[:at], f"{target}: data not fsynced"
        assert ("fsync", str(target.parent), True) in self.events[at:], "folder not fsynced"


@pytest.fixture
def journal(monkeypatch: pytest.MonkeyPatch) -> Journal:
    record = Journal([])
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        record.events.append(("fsync", path, stat.S_ISDIR(os.fstat(fd).st_mode)))
        real_fsync(fd)

    def replace(
        src: str | os.PathLike[str],
        dst: str | os.PathLike[str],
        *,
        src_dir_fd: int | None = None,
        dst_dir_fd: int | None = None,
    ) -> None:
        def where(name: str | os.PathLike[str], folder: int | None) -> str:
            if folder is None:
                return os.fspath(name)
            return os.path.join(os.readlink(f"/proc/self/fd/{folder}"), os.fspath(name))

        record.events.append(("replace", where(src, src_dir_fd), where(dst, dst_dir_fd)))
        real_replace(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return record


pytestmark_linux = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="names fds through /proc"
)


@pytestmark_linux
@pytest.mark.parametrize("name", sorted(WRITERS))
def test_each_write_fsyncs_the_file_then_the_folder(
    name: str, tmp_path: Path, journal: Journal
) -> None:
    target = tmp_path.resolve() / "out.bin"
    WRITERS[name].save(target, 3)
    journal.check_durable(target)


@pytestmark_linux
def test_model_store_blocks_and_manifests_are_durable(tmp_path: Path, journal: Journal) -> None:
    from fastplace.engines.ray.model_store import ModelStore, NodeCache

    store = ModelStore(tmp_path / "store", block_size=1024)
    manifest = store.put("m", 1, [{"w": np.arange(600, dtype=np.float32)}], memory_mb=1)
    part = manifest.partitions[0]
    journal.check_durable(store.root / "FORMAT")
    journal.check_durable(store.root / "models" / "m" / "v1.json")
    for address in part.hashes:
        journal.check_durable(store.blocks.path(address))
    # A node cache's blocks are renamed into place (atomic) but not fsynced: every read
    # checks them against their address, so a block a crash tore is fetched again.
    cache = NodeCache(tmp_path / "cache")
    cache.fetch(store, part.distinct_blocks())
    for address in part.hashes:
        target = str(cache.files.path(address))
        (source,) = [e[1] for e in journal.events if e[0] == "replace" and e[2] == target]
        assert atomic.is_temporary(str(source))


@pytestmark_linux
def test_optimizer_files_are_durable(tmp_path: Path, journal: Journal) -> None:
    torch = pytest.importorskip("torch")
    from fastplace.optimizer import N_FEATURES
    from fastplace.optimizer.model import save_model
    from fastplace.optimizer.network import ScoreNet
    from fastplace.optimizer.train import TrainConfig, _checkpoint

    net = ScoreNet(N_FEATURES, (4,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated
        save_model(net, tmp_path / "m.pt", {}, arrays_path=tmp_path / "m.npz")
    optimiser = torch.optim.Adam(net.parameters())
    _checkpoint(tmp_path / "c.pt", net, net, optimiser, TrainConfig(), 1, 2)
    for name in ("m.pt", "m.npz", "c.pt"):
        journal.check_durable(tmp_path.resolve() / name)


@pytestmark_linux
def test_plots_are_durable(tmp_path: Path, journal: Journal) -> None:
    pytest.importorskip("matplotlib")
    from fastplace.sim.report import plot

    plot(
        {"a": {"servers_used_mean": 1.0}, "b": {"servers_used_mean": 2.0}}, tmp_path / "p.png", "t"
    )
    journal.check_durable(tmp_path.resolve() / "p.png")


# ---- crashed writers --------------------------------------------------------------------


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    atomic.write_atomic(path, "old")
    with pytest.raises(RuntimeError, match="boom"), atomic.atomic_file(path) as file:
        file.write(b"half of the new")
        raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_stale_temporary_is_ignored_by_readers_and_cleaned_by_the_next_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cluster.snap"
    _cluster(1).save(path)
    # What a writer that died mid-write leaves: a torn temporary, an hour old; and one
    # of a writer still at work (fresh), which must survive.
    stale = tmp_path / ".cluster.snap-0123456789ab-tmp.snap"
    fresh = tmp_path / ".cluster.snap-ba9876543210-tmp.snap"
    for temporary in (stale, fresh):
        temporary.write_bytes(_cluster(2).snapshot()[:40])
    old = time.time() - atomic.STALE_AFTER_S - 60
    os.utime(stale, (old, old))
    assert Cluster.load(path).snapshot() == _cluster(1).snapshot()
    atomic.clean_stale_temporaries(tmp_path, force=True)  # as the next write in a minute
    assert not stale.exists() and fresh.exists()
    _cluster(3).save(path)
    assert Cluster.load(path).snapshot() == _cluster(3).snapshot()
    assert fresh.exists()


def test_the_first_write_into_a_folder_cleans_it(tmp_path: Path) -> None:
    stale = tmp_path / ".x.json-0123456789ab-tmp.json"
    stale.write_text("{")
    old = time.time() - atomic.STALE_AFTER_S - 1
    os.utime(stale, (old, old))
    atomic.write_atomic(tmp_path / "x.json", "{}")
    assert leftovers(tmp_path) == []


def test_node_cache_listing_skips_temporaries(tmp_path: Path) -> None:
    from fastplace.engines.ray.model_store import ModelStore, NodeCache

    store = ModelStore(tmp_path / "store", block_size=1024)
    part = store.put("m", 1, [{"w": np.zeros(10, np.float32)}], memory_mb=1).partitions[0]
    cache = NodeCache(tmp_path / "cache")
    cache.fetch(store, part.distinct_blocks())
    address = part.hashes[0]
    folder = cache.files.path(address).parent
    (folder / f".{address}-0123456789ab-tmp").write_bytes(b"torn")
    assert cache.held() == {address}


def test_writing_over_a_directory_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(OSError, match="Is a directory"):
        atomic.write_atomic(tmp_path / "d", "x")
    assert (tmp_path / "d").is_dir() and leftovers(tmp_path) == []


# ---- every writer goes through fastplace._atomic ----------------------------------------

RAW_WRITE = re.compile(
    r"open\([^)]*['\"][wax]b?\+?['\"]|\.write_text\(|\.write_bytes\(|os\.replace\(|"
    r"os\.rename\(|shutil\.move\(|tempfile\.(mkstemp|NamedTemporaryFile)|\.to_csv\(|np\.save\(|np\.savez\(\s*[\w.]*path"
)


def test_no_module_writes_a_file_around_the_atomic_helper() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{number}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "_atomic.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if RAW_WRITE.search(line) and not line.lstrip().startswith("#")
    ]
    assert offenders == []
