"""The native (C++) scorer: equal to the TorchScript model on the shipped weights, on
random and on real feature batches; shape errors; NaN propagation; thread safety."""

from __future__ import annotations

import importlib.util
import itertools
import threading

import numpy as np
import pytest

from fastplace import Cluster
from fastplace._core import MlpScorerCore
from fastplace.block_index import BlockIndex
from fastplace.optimizer import N_FEATURES, decision
from fastplace.optimizer.native import NativeScorer, default_arrays_path

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(
    not HAS_TORCH, reason="torch is not installed: no TorchScript reference to compare with"
)


def reference(features: np.ndarray, path: str | None = None) -> np.ndarray:
    """The npz network in numpy, float64 (the formula of ScoreNet.forward)."""
    arrays = np.load(path or default_arrays_path())
    x = (features.astype(np.float64) - arrays["mean"]) / arrays["std"]
    layers = sum(1 for name in arrays.files if name.startswith("weight_"))
    for i in range(layers):
        x = x @ arrays[f"weight_{i}"].T.astype(np.float64) + arrays[f"bias_{i}"]
        if i < layers - 1:
            x = np.maximum(x, 0)
    return x[:, 0]


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5 * scale)


@pytest.fixture(scope="module")
def native() -> NativeScorer:
    return NativeScorer.from_npz()


@pytest.fixture(params=["picked", "generic"])
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The SIMD kernel of the scorers a test builds: the one picked for this CPU, or the
    portable one (FASTPLACE_SCORER_GENERIC=1), which an x86 machine never picks
    otherwise. The kernel is chosen when a scorer is built."""
    if request.param == "generic":
        monkeypatch.setenv("FASTPLACE_SCORER_GENERIC", "1")
    return str(request.param)


def built(scorer: NativeScorer, kernel: str) -> NativeScorer:
    if kernel == "generic":
        assert scorer.kernel == "generic"
    return scorer


@pytest.fixture(scope="module")
def torchscript():  # type: ignore[no-untyped-def]
    if not HAS_TORCH:
        pytest.skip("torch is not installed: no TorchScript reference to compare with")
    from fastplace.optimizer import ResourceOptimizer

    return ResourceOptimizer.default()


def small_cluster() -> tuple[Cluster, BlockIndex, np.ndarray]:
    cluster = Cluster([[4096, 4000]] * 6 + [[8192, 16000]] * 4)
    blocks = BlockIndex(10, 1 << 20)
    ids = np.asarray(blocks.intern([1, 2, 3], [100, 100, 100]), dtype=np.int64)
    blocks.fetch(4, ids)
    blocks.fetch(7, ids[:1])
    cluster.place(2, [1024, 578])
    cluster.place(8, [4096, 8000])
    return cluster, blocks, ids


@needs_torch
@pytest.mark.parametrize("k", [1, 7, 16, 64, 65, 1000])
def test_equals_torchscript_on_random_batches(native, torchscript, k: int) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(k)
    features = rng.uniform(-0.5, 1.5, (k, N_FEATURES)).astype(np.float32)
    expected = torchscript.scores(features)
    actual = native.scores(features)
    assert actual.dtype == np.float32 and actual.shape == (k,)
    assert_close(actual, expected)
    assert_close(actual, reference(features))


@needs_torch
def test_equals_torchscript_on_real_features(native, torchscript) -> None:  # type: ignore[no-untyped-def]
    cluster, blocks, ids = small_cluster()
    for request in ([512, 289], [2048, 1000], [100, 100], [4096, 4000]):
        servers, features = decision(cluster, blocks, request, ids)
        assert servers.shape[0] > 0
        assert_close(native.scores(features), torchscript.scores(features))


def test_equals_numpy_reference_without_torch(kernel: str) -> None:
    native = built(NativeScorer.from_npz(), kernel)
    for k in (1, 7, 64, 65):
        features = np.random.default_rng(k).uniform(0, 1, (k, N_FEATURES)).astype(np.float32)
        assert_close(native.scores(features), reference(features))
        assert_close(native.decision_scores(features), reference(features))


def test_rows_are_independent(native: NativeScorer) -> None:
    features = np.random.default_rng(6).uniform(0, 1, (65, N_FEATURES)).astype(np.float32)
    whole = native.scores(features)
    one_by_one = np.concatenate([native.scores(features[i : i + 1]) for i in range(65)])
    np.testing.assert_array_equal(whole, one_by_one)
    np.testing.assert_array_equal(native.scores(features[::-1])[::-1], whole)


def test_empty_batch_and_non_contiguous_input(native: NativeScorer) -> None:
    assert native.scores(np.zeros((0, N_FEATURES), dtype=np.float32)).shape == (0,)
    wide = np.random.default_rng(7).uniform(0, 1, (8, 2 * N_FEATURES))
    view = wide[:, ::2]  # float64, strided
    assert_close(native.scores(view), reference(np.ascontiguousarray(view, dtype=np.float32)))


@pytest.mark.parametrize(
    "shape", [(N_FEATURES,), (3, N_FEATURES + 1), (3, N_FEATURES - 1), (2, 3, N_FEATURES)]
)
def test_bad_shapes_raise_value_error(native: NativeScorer, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="features must have shape"):
        native.scores(np.zeros(shape, dtype=np.float32))


def test_core_rejects_bad_shapes_with_value_error(native: NativeScorer) -> None:
    core = native._core
    with pytest.raises(ValueError, match="columns, the model takes 17"):
        core.score(np.zeros((2, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="features must have shape"):
        core.score(np.zeros(5, dtype=np.float32))


def test_constructor_names_the_layer_and_sizes() -> None:
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 3)).astype(np.float32)
    good = ([w0, rng.normal(size=(1, 4))], [np.zeros(4), np.zeros(1)], np.zeros(3), np.ones(3))
    NativeScorer(*good)
    with pytest.raises(ValueError, match=r"layer 1 weight has 5 values, expected \(1, 4\)"):
        NativeScorer([w0, np.zeros((1, 5))], good[1], good[2], good[3])
    with pytest.raises(ValueError, match="layer 0 bias has 3 values, expected 4"):
        NativeScorer(good[0], [np.zeros(3), np.zeros(1)], good[2], good[3])
    with pytest.raises(ValueError, match="layer 1 has 2 outputs, expected 1"):
        NativeScorer([w0, np.zeros((2, 4))], [np.zeros(4), np.zeros(2)], good[2], good[3])
    with pytest.raises(ValueError, match="mean has 2 values and std 3, expected 3"):
        NativeScorer(good[0], good[1], np.zeros(2), good[3])
    with pytest.raises(ValueError, match="2 weight matrices but 1 bias vectors"):
        NativeScorer(good[0], [np.zeros(4)], good[2], good[3])
    with pytest.raises(ValueError, match="at least one layer"):
        MlpScorerCore([], [], np.zeros(3, np.float32), np.ones(3, np.float32))


def test_small_std_counts_as_one_as_in_scorenet() -> None:
    w = np.ones((1, 2), dtype=np.float32)
    scorer = NativeScorer([w], [np.zeros(1)], [0.0, 0.0], [1e-4, 0.5])
    assert scorer.scores(np.array([[3.0, 1.0]], dtype=np.float32)).tolist() == [5.0]


def test_nan_features_propagate_as_nan(native: NativeScorer) -> None:
    features = np.random.default_rng(8).uniform(0, 1, (20, N_FEATURES)).astype(np.float32)
    features[3, 0] = np.nan
    features[17, N_FEATURES - 1] = np.nan
    scores = native.scores(features)
    assert np.isnan(scores[[3, 17]]).all()
    assert np.isfinite(np.delete(scores, [3, 17])).all()


def test_nan_weights_propagate_as_nan() -> None:
    w0 = np.ones((2, 2), dtype=np.float32)
    scorer = NativeScorer([w0, np.ones((1, 2))], [np.zeros(2), [np.nan]], np.zeros(2), np.ones(2))
    assert np.isnan(scorer.scores(np.ones((5, 2), dtype=np.float32))).all()


def test_concurrent_calls_agree(native: NativeScorer) -> None:
    features = np.random.default_rng(9).uniform(0, 1, (5000, N_FEATURES)).astype(np.float32)
    expected = native.scores(features)
    results: list[np.ndarray] = []

    def work() -> None:
        results.append(native.scores(features))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    for result in results:
        np.testing.assert_array_equal(result, expected)


def test_not_an_arrays_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x.npz"
    np.savez(path, mean=np.zeros(3))
    with pytest.raises(ValueError, match="not a plain-array scorer"):
        NativeScorer.from_npz(path)


def test_serves_as_the_allocator_optimizer(native: NativeScorer) -> None:
    from fastplace import ServerAllocator

    cluster, blocks, ids = small_cluster()
    allocator = ServerAllocator(cluster, native, budget_us=1e6, blocks=blocks)
    result = allocator.allocate([512, 289], ids)
    assert result.source == "ro"
    assert result.server >= 0


def decision_rows(n_servers: int, seed: int) -> list[np.ndarray]:
    """Feature rows of three real decisions: a churned cluster with cached blocks."""
    rng = np.random.default_rng(seed)
    cluster = Cluster([[16384, 8000]] * n_servers)
    blocks = BlockIndex(n_servers, 1 << 30)
    ids = np.asarray(blocks.intern(np.arange(1, 41), [1 << 20] * 40), dtype=np.int64)
    for server in rng.choice(n_servers, size=n_servers // 3, replace=False):
        blocks.fetch(int(server), ids[: int(rng.integers(1, 41))])
        for _ in range(int(rng.integers(0, 4))):
            cluster.place(int(server), [int(rng.integers(256, 4096)), int(rng.integers(100, 2000))])
    return [decision(cluster, blocks, [int(m), int(m) // 2], ids)[1] for m in (512, 2048, 6144)]


@pytest.mark.parametrize("n_servers", [5, 64, 300])
def test_decision_path_equals_the_dense_path(kernel: str, n_servers: int) -> None:
    """The decision path (global columns folded once, zero units skipped) scores real
    decision rows, random rows, rows whose global columns differ, and NaN rows as the
    dense path does, up to float32 rounding."""
    native = built(NativeScorer.from_npz(), kernel)
    decisions = decision_rows(n_servers, seed=n_servers)
    real = np.concatenate(decisions)  # three decisions: their global columns differ
    rng = np.random.default_rng(n_servers)
    random_rows = rng.uniform(-0.5, 1.5, (70, N_FEATURES)).astype(np.float32)
    shared = random_rows.copy()
    shared[:, -4:] = random_rows[0, -4:]  # one decision's cluster-wide columns
    partly = shared.copy()
    partly[5, -3] += 0.25  # only the last two columns stay shared
    for rows in (*decisions, real, random_rows, shared, partly, real[:1], real[:0]):
        assert_close(native.decision_scores(rows), native.scores(rows))
    with_nan = real.copy()
    with_nan[0, 3] = np.nan
    got = native.decision_scores(with_nan)
    assert np.isnan(got[0]) and np.isfinite(got[1:]).all()
    with pytest.raises(ValueError, match="shape"):
        native.decision_scores(np.zeros((3, N_FEATURES + 1), dtype=np.float32))
    with pytest.raises(ValueError, match="shared_tail = 18 exceeds"):
        native.core.score_decision(real, 18)
    with pytest.raises(TypeError, match="shared_tail must be an integer, got bool"):
        native.core.score_decision(real, True)
    with pytest.raises(ValueError, match="shared_tail = -1 must be >= 0"):
        native.core.score_decision(real, -1)


def block_constant_rows(k: int, seed: int) -> np.ndarray:
    """Decision-like rows: some columns equal within each block of 16 rows (or within
    the whole batch), others varying, the last N_GLOBAL_FEATURES shared by every row."""
    rng = np.random.default_rng(seed)
    rows = rng.uniform(-0.5, 1.5, (k, N_FEATURES)).astype(np.float32)
    for start in range(0, k, 16):
        block = slice(start, start + 16)
        for column in rng.choice(N_FEATURES - 4, size=int(rng.integers(0, 13)), replace=False):
            rows[block, column] = rows[start, column]
    rows[:, 1] = 0.0  # constant on every row
    rows[:, -4:] = rows[0, -4:]
    return rows


def mlp_reference(
    rows: np.ndarray, weights: list[np.ndarray], biases: list[np.ndarray]
) -> np.ndarray:
    """float64 forward pass with mean 0 and std 1."""
    x = rows.astype(np.float64)
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        x = x @ w.T.astype(np.float64) + b
        if i < len(weights) - 1:
            x = np.maximum(x, 0)
    return x[:, 0]


@pytest.mark.parametrize("k", [1, 15, 16, 17, 33, 64, 65])
def test_decision_path_folds_block_constant_columns(kernel: str, k: int) -> None:
    """Columns equal on every row of a 16-row block go into that block's layer-0 bias on
    the decision path: the scores stay those of the dense path and of the float64
    reference, on whole and partial blocks, and a NaN in such a column stays its row's."""
    native = built(NativeScorer.from_npz(), kernel)
    rows = block_constant_rows(k, seed=k)
    assert_close(native.decision_scores(rows), reference(rows))
    assert_close(native.decision_scores(rows), native.scores(rows))
    identical = np.repeat(rows[:1], k, axis=0)  # every column constant: layer 0 is its bias
    assert_close(native.decision_scores(identical), reference(identical))
    with_nan = rows.copy()
    with_nan[0, 1] = np.nan  # the first row of an otherwise constant column
    if k > 1:
        with_nan[k - 1, 2] = np.nan  # and a later row of another
    got = native.decision_scores(with_nan)
    expected = native.scores(with_nan)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    assert np.isnan(got[0]) and np.isnan(got[k - 1])
    assert_close(got[~np.isnan(expected)], expected[~np.isnan(expected)])


WIDTHS = [
    (N_FEATURES, 32, 32, 1),
    (N_FEATURES, 40, 33, 1),
    (N_FEATURES, 130, 8, 1),
    (N_FEATURES, 5, 1),
    (N_FEATURES, 12, 20, 7, 1),
]


@pytest.mark.parametrize("sizes", WIDTHS)
@pytest.mark.parametrize("units", ["mixed", "all off", "all on"])
def test_decision_path_on_other_widths(kernel: str, sizes: tuple[int, ...], units: str) -> None:
    """The decision path's bookkeeping (non-zero units as bits, 32 per mask word; scratch
    on the heap past 128 units) on layer widths that are not 32, with hidden units that
    are zero on some rows, on every row, or on none."""
    rng = np.random.default_rng(len(sizes) * 1000 + sizes[1])
    weights = [rng.normal(0, 0.5, (o, i)).astype(np.float32) for i, o in itertools.pairwise(sizes)]
    shift = {"mixed": 0.0, "all off": -100.0, "all on": 100.0}[units]
    biases = [rng.normal(shift, 0.1, o).astype(np.float32) for o in sizes[1:]]
    biases[-1][:] = 0.25
    scorer = built(NativeScorer(weights, biases, np.zeros(N_FEATURES), np.ones(N_FEATURES)), kernel)
    for k in (1, 15, 16, 17, 64, 65):
        rows = block_constant_rows(k, seed=k)
        expected = mlp_reference(rows, weights, biases)
        assert_close(scorer.decision_scores(rows), expected)
        assert_close(scorer.scores(rows), expected)


@pytest.mark.parametrize(
    "sizes", [(N_FEATURES, 5, 1), (N_FEATURES, 5, 3, 1), (N_FEATURES, 12, 20, 7, 1)]
)
def test_decision_path_with_infinite_features(kernel: str, sizes: tuple[int, ...]) -> None:
    """Infinite features on layer widths that are not a multiple of the vector width: the
    decision path pads units with zero weights (0 * inf is NaN there), which must not
    reach the scores. Column 0's layer-0 weights are all negative and column 1's positive,
    so +inf in column 0 and -inf in column 1 switch every unit off and the scores stay
    finite, as in the dense path."""
    rng = np.random.default_rng(sizes[1])
    weights = [rng.normal(0, 0.5, (o, i)).astype(np.float32) for i, o in itertools.pairwise(sizes)]
    weights[0][:, 0] = -np.abs(weights[0][:, 0]) - 0.1
    weights[0][:, 1] = np.abs(weights[0][:, 1]) + 0.1
    biases = [rng.normal(0, 0.1, o).astype(np.float32) for o in sizes[1:]]
    scorer = built(NativeScorer(weights, biases, np.zeros(N_FEATURES), np.ones(N_FEATURES)), kernel)
    for k in (1, 16, 17, 64):
        rows = block_constant_rows(k, seed=k)
        rows[::3, 0] = np.inf  # varies within blocks
        rows[:, 1] = -np.inf  # equal on every row: folded into the block's bias
        expected = scorer.scores(rows)
        assert np.isfinite(expected).all()
        assert_close(scorer.decision_scores(rows), expected)
