"""DQN training: a short run learns something and writes its files; `fastplace train`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from fastplace.cli import main  # noqa: E402
from fastplace.optimizer import OptimizerLoadError, ResourceOptimizer  # noqa: E402
from fastplace.optimizer.train import REFERENCE_SERVERS, TrainConfig, train  # noqa: E402

SHORT = TrainConfig(
    episodes=3,
    seed=0,
    servers=30,
    duration_s=40.0,
    n_models=5,
    total_rate=20.0,
    n_models_range=None,
    total_rate_range=None,
    rollout_interval_s=15.0,
    learn_start=150,
    epsilon_steps=250,
    train_every=1,
    target_sync=100,
    buffer=2_000,
    validate_every=1,
    validation_seeds=(900,),
    validation_duration_s=40.0,
    checkpoint_every=2,
)


def test_a_short_run_beats_a_random_policy_and_writes_its_files(tmp_path: Path) -> None:
    seen = []
    result = train(SHORT, tmp_path, progress=seen.append)
    assert [s.episode for s in seen] == [0, 1, 2]
    assert 300 <= seen[-1].total_steps <= 2_000  # a few hundred decisions
    # Greedy return on the validation seed (returns are negative costs). Here the
    # trained policy scores -94 (-108 without the demonstrator), first fit -116,
    # random -148; an untrained network -144, which fails the first assertion.
    random_return, first_fit_return = result.baselines["random"], result.baselines["first_fit"]
    assert result.best_validation_return > 0.85 * random_return
    assert result.best_validation_return > 1.05 * first_fit_return

    optimizer = ResourceOptimizer.load(result.model_path)
    assert optimizer.metadata["seed"] == 0
    assert optimizer.metadata["train_config"]["episodes"] == 3
    assert "TrainConfig(" in optimizer.training_command
    assert result.arrays_path.stat().st_size > 0
    assert result.curve_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = json.loads(result.log_path.read_text())
    assert len(log["episodes"]) == 3
    assert [p.name for p in result.checkpoints] == ["episode_0002.pt", "episode_0003.pt"]
    state = torch.load(result.checkpoints[-1], weights_only=True)
    assert state["episode"] == 2 and "net" in state


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="gamma"):
        TrainConfig(gamma=1.0)
    with pytest.raises(ValueError, match="overlap"):
        TrainConfig(seed=0, episodes=10, validation_seeds=(1005,))
    with pytest.raises(ValueError, match="seed"):
        TrainConfig(seed=-1)


def test_fastplace_train_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    argv = ["train", "--episodes", "1", "--max-steps", "60", "--servers", "12"]
    status = main([*argv, "--duration", "20", "--out", str(out)])
    assert status == 0
    assert f"wrote {out / 'training_curve.png'}" in capsys.readouterr().err
    optimizer = ResourceOptimizer.load(out / "model.pt")
    assert optimizer.training_command.startswith("fastplace train --episodes=1")
    assert (out / "training_curve.png").exists() and (out / "model.npz").exists()


def test_fastplace_train_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--duration", "0", "--out", str(tmp_path)]) == 2
    assert "argument --duration: '0' must be > 0" in capsys.readouterr().err
    assert main(["train", "--gamma", "1.5"]) == 2
    assert "argument --gamma: '1.5' must be < 1" in capsys.readouterr().err


def test_a_model_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    result = train(
        TrainConfig(**{**SHORT.to_dict(), "episodes": 1, "max_steps": 40, "validate_every": 0}),
        tmp_path,
    )
    with pytest.raises(OptimizerLoadError):
        ResourceOptimizer.load(result.checkpoints[-1])


def test_margin_loss_pushes_the_demonstrators_candidate_up() -> None:
    from fastplace.optimizer.network import ScoreNet
    from fastplace.optimizer.train import _loss

    torch.manual_seed(0)
    net = ScoreNet(17, (8,))
    features = torch.randn(4, 5, 17)
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[3, 4] = False  # padding never counts as the best alternative
    batch = {
        "features": features,
        "mask": mask,
        "next_features": features,
        "next_mask": torch.zeros(4, 5, dtype=torch.bool),
        "action": torch.tensor([0, 1, 2, 3]),
        "demo": torch.tensor([4, 0, 2, 1]),
        "reward": torch.zeros(4),
        "done": torch.ones(4),
    }
    config = TrainConfig(demo_weight=0.0, demonstrator="locality")
    with torch.no_grad():
        td = _loss(net, net, batch, config)
        with_margin = _loss(net, net, batch, TrainConfig(demo_weight=2.0, demo_margin=0.3))
    q = net(features).detach()
    expected = 0.0
    for row, demo in enumerate([4, 0, 2, 1]):
        others = [q[row, a] + 0.3 for a in range(5) if a != demo and mask[row, a]]
        expected += max([q[row, demo], *others]) - q[row, demo]
    assert float(with_margin - td) == pytest.approx(2.0 * float(expected) / 4, rel=1e-5)
    assert float(with_margin - td) > 0

    # A few steps on the margin loss alone make each demonstrated candidate the argmax.
    optimiser = torch.optim.Adam(net.parameters(), lr=0.05)
    margin_only = TrainConfig(demo_weight=1.0, demo_margin=0.3, lr=0.05)
    for _ in range(300):
        loss = _loss(net, net, batch, margin_only) - _loss(net, net, batch, config)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert net(features).argmax(dim=1).tolist() == [4, 0, 2, 1]


def test_demonstrator_is_checked() -> None:
    with pytest.raises(ValueError, match="demonstrator = 'nope'"):
        TrainConfig(demonstrator="nope")
    with pytest.raises(ValueError, match="demo_weight = -1"):
        TrainConfig(demo_weight=-1)


def test_scale_workload_grows_the_episodes_with_the_cluster() -> None:
    small = TrainConfig().env_config()
    assert (small.n_models_range, small.total_rate_range) == ((8, 120), (5.0, 80.0))
    assert TrainConfig(servers=1500).env_config().n_models_range == (8, 120)  # as given
    big = TrainConfig(servers=10 * REFERENCE_SERVERS, scale_workload=True).env_config()
    assert big.servers == 1500 and big.n_models == 240 and big.total_rate == 600.0
    assert big.n_models_range == (80, 1200) and big.total_rate_range == (50.0, 800.0)
    tiny = TrainConfig(servers=3, scale_workload=True, validate_every=0).env_config()
    assert tiny.n_models_range == (1, 2) and tiny.n_models == 1  # never below one model
    with pytest.raises(TypeError, match="scale_workload = 1 must be a bool"):
        TrainConfig(scale_workload=1)  # type: ignore[arg-type]


def test_fastplace_train_fine_tunes_an_initial_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    argv = ["train", "--episodes", "1", "--max-steps", "60", "--duration", "20"]
    assert main([*argv, "--servers", "12", "--out", str(first)]) == 0
    base = ResourceOptimizer.load(first / "model.pt")
    tuned_argv = [
        *argv,
        "--servers",
        "24",
        "--scale-workload",
        "--initial",
        str(first / "model.pt"),
    ]
    assert main([*tuned_argv, "--out", str(second)]) == 0
    capsys.readouterr()
    tuned = ResourceOptimizer.load(second / "model.pt")
    config = tuned.metadata["train_config"]
    assert config["scale_workload"] is True and config["servers"] == 24
    assert config["epsilon_start"] == 0.2  # fine-tuning starts from a network that knows
    record = tuned.metadata["initial_model"]
    assert record["weights_sha256"] == base.metadata["weights_sha256"]
    assert record["path"] == str(first / "model.pt")
    assert "--initial" in tuned.training_command and "--scale-workload" in tuned.training_command
    # The initial network's normalisation is kept (a new network would learn its own).
    import numpy as np

    assert np.array_equal(tuned.network().mean.numpy(), base.network().mean.numpy())
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    assert main([*argv, "--initial", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "--initial" in capsys.readouterr().err
    assert main([*argv, "--epsilon-start", "0.01", "--out", str(tmp_path / "x")]) == 2
    assert "argument --epsilon-start: '0.01' must be >= 0.05" in capsys.readouterr().err
