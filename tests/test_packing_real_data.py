"""On the Panigrahy instances (../shared/data): the 3% goal, the bounds, the reader."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

import packing_data
from fastplace.packing import POLICIES, pack, read_vbp, strong_lower_bound, verify_packing

pytestmark = pytest.mark.skipif(not packing_data.available(), reason=packing_data.MISSING_REASON)


def sample(sizes: tuple[int, ...]) -> list[str]:
    """One instance with known OPT per (class, d, n) for n in ``sizes``, index rotating."""
    refs = packing_data.references()
    chosen: dict[tuple[int, int, int], str] = {}
    for name in sorted(refs):
        kind, n, dims, index = packing_data.parse_name(name)
        if refs[name].opt and n in sizes and index == (kind + dims + n) % 10:
            chosen[(kind, dims, n)] = name
    return sorted(chosen.values())


def test_best_is_within_three_percent_of_opt_on_average() -> None:
    paths = packing_data.instance_paths()
    refs = packing_data.references()
    names = sample(sizes=(40, 120, 250))
    assert len(names) >= 40
    best, portfolio = [], []
    for name in names:
        instance = read_vbp(paths[name])
        opt = refs[name].opt
        assert opt is not None
        for policy, ratios in (("best", best), ("portfolio", portfolio)):
            assignment = pack(instance.capacity, instance.items, policy)
            bins = verify_packing(instance.capacity, instance.items, assignment)
            assert bins >= opt, (name, policy)  # fewer than OPT would be a bug
            ratios.append(bins / opt)
    assert statistics.fmean(best) <= 1.03, statistics.fmean(best)
    # The tabu search has to earn its keep over the greedy portfolio it starts from.
    assert statistics.fmean(best) < statistics.fmean(portfolio)


@pytest.mark.parametrize("policy", list(POLICIES))
def test_every_policy_packs_real_instances(policy: str) -> None:
    paths = packing_data.instance_paths()
    for name in ("class2_60_10_3", "class7_120_5_1", "class9_40_3_2"):
        instance = read_vbp(paths[name])
        assignment = pack(instance.capacity, instance.items, policy)
        bins = verify_packing(instance.capacity, instance.items, assignment)
        opt = packing_data.references()[name].opt
        assert opt is not None and bins >= opt


def test_every_file_reads_and_the_strong_bound_never_exceeds_opt() -> None:
    paths = packing_data.instance_paths()
    refs = packing_data.references()
    assert len(paths) == len(refs) == 1620
    for name, path in paths.items():
        instance = read_vbp(path)
        kind, n, dims, _ = packing_data.parse_name(name)
        assert instance.dims == dims
        assert instance.n_items == n + (kind == 9)  # class 9: n + 1 items upstream
        assert (instance.items <= instance.capacity).all()
        opt = refs[name].opt
        if opt is not None and name.endswith(("_0", "_5")):
            assert strong_lower_bound(instance.capacity, instance.items) <= opt, name


def test_tarball_is_extracted_outside_the_source_tree() -> None:
    paths = packing_data.instance_paths()
    directory = next(iter(paths.values())).parent
    assert directory == packing_data.CACHE_DIR
    assert np.all([p.suffix == ".vbp" for p in paths.values()])
