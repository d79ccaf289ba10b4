"""The training curve stays readable for short runs; training works without matplotlib."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
matplotlib = pytest.importorskip("matplotlib")

from child_process import run_cli_without  # noqa: E402
from fastplace.optimizer.train import EpisodeStats  # noqa: E402
from fastplace.optimizer.training_plot import curve_figure, curve_title  # noqa: E402


def episode(number: int, *, loss: float, validation: float | None) -> EpisodeStats:
    return EpisodeStats(
        episode=number,
        steps=60,
        total_steps=60 * (number + 1),
        episode_return=-12.0 - number,
        epsilon=0.9,
        loss=loss,
        servers_used_mean=5.0,
        bytes_downloaded=0,
        validation_return=validation,
        wall_s=0.1,
    )


def shows_something(axis: Any) -> bool:
    """A panel shows data (a line through two points, or markers) or a note."""
    for line in axis.get_lines():
        if len(line.get_xdata()) >= 2 and line.get_linestyle() != "None":
            return True
        if line.get_marker() not in (None, "None", "", " "):
            return True
    return bool(axis.texts)


def test_title_counts_in_the_singular_for_one() -> None:
    assert curve_title(1, 60, 0) == "DQN resource optimizer: 1 episode, 60 decisions, seed 0"
    assert curve_title(30, 1, 2) == "DQN resource optimizer: 30 episodes, 1 decision, seed 2"


def test_one_episode_draws_points_and_says_why_a_panel_is_empty() -> None:
    history = [episode(0, loss=math.nan, validation=-90.0)]
    title = curve_title(1, 60, 0)
    figure = curve_figure(history, {"first_fit": -100.0}, title, learn_start=1_000)
    try:
        top, middle, bottom = figure.axes
        assert top.get_title() == title
        assert all(shows_something(axis) for axis in figure.axes)
        (dqn,) = [line for line in top.get_lines() if line.get_label() == "DQN (greedy)"]
        assert dqn.get_marker() == "o"  # one point: a line alone would draw nothing
        assert middle.get_lines()[0].get_marker() == "o"
        assert [t.get_text() for t in bottom.texts] == [
            "no gradient step in 60 decisions: learning starts after 1,000"
        ]
        assert list(middle.get_lines()[0].get_xdata()) == [1]  # episodes counted from 1
        figure.canvas.draw()
        ticks = [t.get_text() for t in bottom.get_xticklabels() if t.get_text()]
        assert ticks == ["1"]  # whole episodes only, not 0.945 ... 1.05
    finally:
        matplotlib.pyplot.close(figure)


def test_a_run_without_validation_says_so() -> None:
    history = [episode(i, loss=0.5, validation=None) for i in range(3)]
    figure = curve_figure(history, {}, curve_title(3, 180, 0))
    try:
        top = figure.axes[0]
        assert [t.get_text() for t in top.texts] == ["no validation run (validate_every = 0)"]
        assert all(shows_something(axis) for axis in figure.axes)
    finally:
        matplotlib.pyplot.close(figure)


def test_train_without_matplotlib_writes_the_model_and_says_so_once(tmp_path: Path) -> None:

    argv = ["train", "--episodes", "1", "--max-steps", "40", "--servers", "12"]
    argv += ["--duration", "20", "--out", "run"]
    done = run_cli_without(["matplotlib"], argv, tmp_path)
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if "matplotlib" in line]
    assert notes == [
        "plots need matplotlib: pip install 'fastplace[cli]' (skipped run/training_curve.png)"
    ]
    assert "wrote run/model.pt" in done.stderr
    assert (tmp_path / "run" / "model.pt").exists()
    assert not (tmp_path / "run" / "training_curve.png").exists()
