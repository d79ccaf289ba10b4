"""The Panigrahy vector packing instances in ../shared/data, for tests and benchmarks.

The tarball is extracted once into build/vbp-panigrahy (ignored by git), never into
the source tree; the shared folder itself is only read.
"""

from __future__ import annotations

import csv
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT.parent / "shared" / "data" / "vbp-panigrahy"
TARBALL = DATA_DIR / "Panigrahy_instances.tar.gz"
SUMMARY = DATA_DIR / "Panigrahy_summary_known.csv"
CACHE_DIR = ROOT / "build" / "vbp-panigrahy"
MISSING_REASON = (
    f"needs the Panigrahy instances ({TARBALL.name}, {SUMMARY.name}) in {DATA_DIR} "
    "(../shared/data beside the project root), which is absent"
)


@dataclass(frozen=True)
class Reference:
    """The paper's numbers for one instance; ``opt`` is None when unknown."""

    lb: int
    opt: int | None
    best_overall: int
    best_item_centric: int
    best_bin_centric: int
    best_pairing: int
    best_wfd: int


def available() -> bool:
    return TARBALL.is_file() and SUMMARY.is_file()


def instance_paths() -> dict[str, Path]:
    """Instance name -> extracted ``.vbp`` path, extracting the tarball on first use."""
    if not CACHE_DIR.is_dir():
        CACHE_DIR.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="vbp-panigrahy-", dir=CACHE_DIR.parent))
        with tarfile.open(TARBALL) as archive:
            for member in archive.getmembers():
                if member.isfile() and member.name.endswith(".vbp"):
                    source = archive.extractfile(member)
                    assert source is not None
                    (staging / Path(member.name).name).write_bytes(source.read())
        try:
            os.rename(staging, CACHE_DIR)  # atomic: a concurrent run sees all or nothing
        except OSError:
            shutil.rmtree(staging)  # another run got there first
    return {path.stem: path for path in sorted(CACHE_DIR.glob("*.vbp"))}


def references() -> dict[str, Reference]:
    with SUMMARY.open(newline="") as file:
        rows = list(csv.DictReader(file, delimiter="\t"))
    return {
        row["instance_name"]: Reference(
            lb=int(row["LB"]),
            opt=int(row["OPT"]) if int(row["OPT"]) > 0 else None,
            best_overall=int(row["best_overall"]),
            best_item_centric=int(row["best_IC"]),
            best_bin_centric=int(row["best_BC"]),
            best_pairing=int(row["best_MB-Pairing"]),
            best_wfd=int(row["best_MB-WFD"]),
        )
        for row in rows
    }


def parse_name(name: str) -> tuple[int, int, int, int]:
    """``class<k>_<n>_<d>_<i>`` -> (k, n, d, i)."""
    kind, n, d, index = name.split("_")
    return int(kind.removeprefix("class")), int(n), int(d), int(index)
