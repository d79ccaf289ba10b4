"""``fastplace place``: chunked replays equal one replay, and long runs report progress."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fastplace.cli.chunked_replay as chunked
import fastplace.cli.output as output
from fastplace.cli import main
from fastplace.cluster import Cluster, ReplayOp
from fastplace.synthetic import churn_stream, synthetic_capacity


@pytest.mark.parametrize("chunk_events", [1, 7, 64, 1_000, 10**9])
@pytest.mark.parametrize("load", [0.85, 1.0])  # at 1.0 placements fail and are released
def test_chunks_give_the_same_decisions_as_one_replay(chunk_events: int, load: float) -> None:
    capacity = synthetic_capacity(40, heterogeneous=True, seed=3)
    stream = churn_stream(capacity, 3_000, load=load, seed=3, op=ReplayOp.PLACE_BEST_FIT)
    # Both from one snapshot: container ids carry a per-cluster key, which a restored
    # copy shares (two Cluster(capacity) would hand out different ids).
    start = Cluster(capacity).snapshot()
    whole = Cluster.restore(start)
    expected = whole.replay(stream.ops, stream.requests, stream.refs)
    if load == 1.0:
        failed = set(np.flatnonzero(expected.servers < 0).tolist())
        released_failed = [
            i
            for i in range(len(stream))
            if stream.ops[i] == ReplayOp.RELEASE_EVENT and int(stream.refs[i]) in failed
        ]
        assert released_failed, "the stream must release placements that failed"

    cluster = Cluster.restore(start)
    seen: list[int] = []
    result = chunked.replay_in_chunks(
        cluster,
        stream.ops,
        stream.requests,
        stream.refs,
        progress=seen.append,
        chunk_events=chunk_events,
    )
    np.testing.assert_array_equal(result.servers, expected.servers)
    np.testing.assert_array_equal(result.containers, expected.containers)
    assert (result.placed, result.unplaced, result.released) == (
        expected.placed,
        expected.unplaced,
        expected.released,
    )
    assert cluster.snapshot() == whole.snapshot()
    assert seen == sorted(seen) and seen[-1] == len(stream)
    assert result.chunks == len(seen) == -(-len(stream) // chunk_events)


def test_a_fast_stream_runs_in_one_call() -> None:
    capacity = synthetic_capacity(50, seed=0)
    stream = churn_stream(capacity, 5_000, seed=0)
    result = chunked.replay_in_chunks(Cluster(capacity), stream.ops, stream.requests, stream.refs)
    assert result.chunks == 1


def test_a_long_run_prints_a_few_progress_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Pretend every stream is slow and long, so that this short one is cut into chunks.
    monkeypatch.setattr(chunked, "MIN_NS_PER_EVENT", 0.0)
    monkeypatch.setattr(chunked, "MIN_SECONDS", 0.0)
    monkeypatch.setattr(chunked, "SECONDS_PER_CHUNK", 0.0)
    monkeypatch.setattr(chunked, "PROBE_EVENTS", 500)
    monkeypatch.setattr(output, "QUIET_SECONDS", 0.0)
    argv = ["place", "--servers", "60", "--requests", "20000", "--policy", "best_fit", "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)  # stdout is still the JSON alone
    assert summary["placements"] + summary["unplaced"] == 20_000
    lines = captured.err.splitlines()
    progress = [line for line in lines if line.startswith("replaying: ")]
    # Dozens of chunks, four lines: at a quarter, half, three quarters and the end.
    assert len(progress) == 4, lines
    assert progress[-1].startswith(f"replaying: {summary['events']:,}/{summary['events']:,} events")
    assert lines[0].startswith("generating the request stream (20,000 placements)")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--load", "0"], "argument --load: '0' must be > 0"),
        (["--load", "nan"], "argument --load: 'nan' is not a finite number"),
        (["--seed", "-1"], "argument --seed: '-1' must be >= 0"),
    ],
)
def test_bad_arguments_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["place", "--servers", "10", "--requests", "10", *argv]) == 2
    expected = f"fastplace place: error: {message} (see fastplace place --help)"
    assert capsys.readouterr().err.strip() == expected
