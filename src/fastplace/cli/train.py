"""``fastplace train``: train the resource optimizer (DQN) in the simulator."""

from __future__ import annotations

import argparse
import math
import shlex
from pathlib import Path
from typing import Any

from fastplace.cli.argtypes import integer, number, seed
from fastplace.cli.simulate import MAX_DURATION_S, MAX_SERVERS
from fastplace.optimizer.demonstrator import DEMONSTRATORS

__all__ = ["add_parser", "run"]

# Bounds of the sizes (memory is checked as well, see run).
MAX_EPISODES = 100_000
MAX_K = 1024
MAX_BATCH = 65_536
MAX_BUFFER = 10_000_000
MAX_STEPS = 10**9
MAX_N_STEP = 1000
#: Any finite value >= 0 (a weight, a margin): inf or nan would make every loss nan.
_non_negative = number(0.0, math.inf)
#: A feedback log and a model file are read whole (they hold arrays and weights of
#: kilobytes to megabytes).
MAX_FEEDBACK_BYTES = 1 << 30
MAX_MODEL_BYTES = 1 << 30
#: Exploration at the start of a fine-tuning run (--initial without --feedback), and
#: where exploration decays to (TrainConfig.epsilon_end: the lowest start).
FINE_TUNE_EPSILON = 0.2
EPSILON_END = 0.05
#: torch, the simulator and the network before the replay buffer.
BASE_BYTES = 512 << 20


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train the resource optimizer (DQN) in the simulator",
        description=(
            "Trains the resource optimizer's DQN on placement decisions of a simulated "
            "serverless DI cluster, then writes to --out: model.pt (TorchScript with its "
            "feature schema and this command), model.npz (the same weights as plain "
            "arrays), training_curve.png, training_log.json and checkpoints/. Needs torch."
        ),
    )
    parser.add_argument(
        "--episodes",
        type=integer(1, MAX_EPISODES),
        default=None,
        help=f"episodes, 1 to {MAX_EPISODES:,} (30; with --feedback, 4)",
    )
    parser.add_argument(
        "--feedback",
        type=Path,
        default=None,
        metavar="FILE",
        help="retrain from an allocator feedback log (fastplace.optimizer.retrain."
        "save_feedback): fine-tune --initial on the log's request mix, keeping its own "
        "training settings; the other training options are ignored",
    )
    parser.add_argument(
        "--initial",
        type=Path,
        default=None,
        metavar="MODEL",
        help="fine-tune this model (TorchScript .pt) instead of training a new network: "
        "with --feedback on the log, else with the options given here, say on a larger "
        "--servers with --scale-workload (with --feedback the default is the shipped model)",
    )
    parser.add_argument("--seed", type=seed, default=0, help="seed of everything random, >= 0 (0)")
    parser.add_argument("--out", type=Path, default=Path("out/optimizer"), help="(out/optimizer)")
    parser.add_argument(
        "--k",
        type=integer(1, MAX_K),
        default=64,
        help=f"candidates per decision, 1 to {MAX_K} (64)",
    )
    parser.add_argument(
        "--gamma", type=number(0.0, 1.0, high_open=True), default=0.9, help="discount, [0, 1) (0.9)"
    )
    parser.add_argument(
        "--n-step",
        type=integer(1, MAX_N_STEP),
        default=1,
        help=f"rewards per DQN transition, 1 to {MAX_N_STEP} (1)",
    )
    parser.add_argument(
        "--lr",
        type=number(0.0, math.inf, low_open=True),
        default=1e-3,
        help="Adam learning rate, > 0 (1e-3)",
    )
    parser.add_argument(
        "--batch",
        type=integer(1, MAX_BATCH),
        default=64,
        help=f"batch size, 1 to {MAX_BATCH:,} (64)",
    )
    parser.add_argument(
        "--buffer",
        type=integer(1, MAX_BUFFER),
        default=20_000,
        help=f"replay size, 1 to {MAX_BUFFER:,} (20000)",
    )
    parser.add_argument(
        "--epsilon-start",
        type=number(EPSILON_END, 1.0),
        default=None,
        help="exploration at the start, [0.05, 1] (1; with --initial, 0.2: the network "
        "already knows the task)",
    )
    parser.add_argument(
        "--epsilon-steps",
        type=integer(1, MAX_STEPS),
        default=20_000,
        help="decisions over which exploration decays to 0.05 (20000)",
    )
    parser.add_argument(
        "--credit",
        choices=("server_time", "delta"),
        default="server_time",
        help="how servers are charged: each container's share of its server's active "
        "time (server_time, default) or the change in active servers per decision (delta)",
    )
    parser.add_argument(
        "--w-servers",
        type=_non_negative,
        default=6.0,
        help="reward weight of servers: per server-minute, or per server opened with "
        "--credit delta (6.0)",
    )
    parser.add_argument(
        "--w-bytes",
        type=_non_negative,
        default=0.0625,
        help="reward weight per model file downloaded (0.0625)",
    )
    parser.add_argument(
        "--demonstrator",
        choices=sorted(DEMONSTRATORS),
        default="locality",
        help="the rule the margin loss teaches (locality)",
    )
    parser.add_argument(
        "--demo-weight",
        type=_non_negative,
        default=5.0,
        help="weight of a DQfD-style margin loss towards the demonstrator's choice (5.0; 0: off)",
    )
    parser.add_argument(
        "--demo-margin",
        type=_non_negative,
        default=0.1,
        help="margin of that loss (0.1)",
    )
    parser.add_argument(
        "--servers",
        type=integer(1, MAX_SERVERS),
        default=150,
        help=f"cluster size, 1 to {MAX_SERVERS:,} (150)",
    )
    parser.add_argument(
        "--scale-workload",
        action="store_true",
        help="grow each episode's models and request rate with --servers (they are drawn "
        "for 150 servers: 8-120 models at 5-80 requests/s), so that a large cluster is "
        "as busy as the small one",
    )
    parser.add_argument(
        "--duration",
        type=number(0.0, MAX_DURATION_S, low_open=True),
        default=300.0,
        help=f"simulated seconds per episode, > 0 and <= {MAX_DURATION_S:,.0f} (300)",
    )
    parser.add_argument(
        "--max-steps",
        type=integer(0, MAX_STEPS),
        default=0,
        help="decisions per episode at most (0: no limit)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fastplace.cli import CommandError
    from fastplace.cli.output import can_plot, progress, wrote

    try:
        from fastplace.optimizer.train import TrainConfig, train
    except ImportError as error:
        raise CommandError(f"training needs torch (pip install torch==2.13.0): {error}") from None
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"--out {args.out}: {error.strerror}") from None
    if args.feedback is not None:
        return _retrain(args)
    args.episodes = 30 if args.episodes is None else args.episodes
    if args.epsilon_start is None:
        args.epsilon_start = 1.0 if args.initial is None else FINE_TUNE_EPSILON
    initial, initial_record = _initial(args) if args.initial is not None else (None, None)

    _check_memory(args)
    config = TrainConfig(
        episodes=args.episodes,
        seed=args.seed,
        k=args.k,
        gamma=args.gamma,
        n_step=args.n_step,
        lr=args.lr,
        batch=args.batch,
        buffer=args.buffer,
        epsilon_start=args.epsilon_start,
        epsilon_steps=args.epsilon_steps,
        w_servers=args.w_servers,
        w_bytes=args.w_bytes,
        credit=args.credit,
        demonstrator=args.demonstrator,
        demo_weight=args.demo_weight,
        demo_margin=args.demo_margin,
        servers=args.servers,
        scale_workload=args.scale_workload,
        duration_s=args.duration,
        max_steps=args.max_steps,
        command=_command(args),
    )

    def episodes(done: float, total: float) -> str:
        return f"{done:.0f}/{total:.0f} episodes"

    # Plain output: a line every tenth of the run (episodes take seconds to minutes).
    with progress(episodes, reports=10, transient=False) as add_task:
        task = add_task("training", config.episodes)

        def report(stats: Any) -> None:
            status = (
                f"return/decision {stats.episode_return / max(stats.steps, 1):+.3f}  "
                f"epsilon {stats.epsilon:.2f}"
            )
            if stats.validation_return is not None:
                status += f"  validation {stats.validation_return:+.1f}"
            task.advance(1, status)

        result = train(
            config, args.out, progress=report, initial=initial, initial_record=initial_record
        )
    baselines = ", ".join(f"{k} {v:+.1f}" for k, v in result.baselines.items())
    print(
        f"best validation return {result.best_validation_return:+.1f} "
        f"(episode {result.best_episode + 1}; {baselines}) in {result.wall_s:.0f} s"
    )
    wrote(result.model_path, result.arrays_path)
    if result.curve_path is not None:
        wrote(result.curve_path)
    else:
        can_plot([args.out / "training_curve.png"])  # says the plot needs matplotlib
    wrote(result.log_path, *result.checkpoints)
    return 0


def _initial(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The network --initial holds (a trainable copy) and what to record of it."""
    from fastplace.cli import CommandError
    from fastplace.cli.files import regular_file
    from fastplace.optimizer.model import ResourceOptimizer

    regular_file(args.initial, "--initial", max_bytes=MAX_MODEL_BYTES)
    try:
        model = ResourceOptimizer.load(args.initial)
        network = model.network()
    except ValueError as error:  # OptimizerLoadError: not a model, other schema, damaged
        raise CommandError(f"--initial: {error}") from None
    record = {
        "path": str(args.initial),
        "training_command": model.metadata.get("training_command", ""),
        "weights_sha256": model.metadata.get("weights_sha256", ""),
    }
    return network, record


def _check_memory(args: argparse.Namespace) -> None:
    """CommandError with the estimate if the replay buffer would not fit in memory: it
    holds each transition's decision and next decision, k x N_FEATURES float32 each."""
    from fastplace.cli.memory import require_memory
    from fastplace.optimizer.features import N_FEATURES

    per_transition = 2 * args.k * N_FEATURES * 4
    require_memory(
        f"--buffer {args.buffer:,} with --k {args.k}",
        BASE_BYTES + per_transition * args.buffer,
        f"2 x {args.k} x {N_FEATURES} features x 4 B per transition + {BASE_BYTES >> 20} MiB",
    )


def _retrain(args: argparse.Namespace) -> int:
    """One FeedbackTrainer round on a saved feedback log."""
    from fastplace.cli import CommandError
    from fastplace.cli.files import regular_file
    from fastplace.cli.output import can_plot, wrote
    from fastplace.optimizer.model import OptimizerLoadError
    from fastplace.optimizer.retrain import FINE_TUNE, FeedbackTrainer, load_feedback

    _check_feedback_file(args.feedback)
    if args.initial is not None:
        regular_file(args.initial, "--initial", max_bytes=MAX_MODEL_BYTES)
    try:
        records = load_feedback(args.feedback)
    except ValueError as error:
        raise CommandError(f"--feedback: {error}") from None
    if not records:
        raise CommandError(f"--feedback {args.feedback}: the log holds no decisions")
    episodes = FINE_TUNE["episodes"] if args.episodes is None else args.episodes
    try:
        trainer = FeedbackTrainer(
            args.initial, args.out, min_records=1, episodes=episodes, seed=args.seed
        )
    except OptimizerLoadError as error:
        raise CommandError(f"--initial: {error}") from None
    started = trainer.current.path
    trainer(records)
    done = trainer.rounds[-1]
    mix = zip(done.memory_mb, done.memory_weights, strict=True)
    print(f"{done.records} decisions; request mix " + ", ".join(f"{m} MB {w:.0%}" for m, w in mix))
    print(
        f"validation return: {started} {done.initial_return:+.1f}, fine-tuned "
        f"{done.best_return:+.1f} -> {'accepted' if done.accepted else 'kept the initial model'}"
    )
    round_dir = Path(done.model_path).parent
    wrote(*sorted(path for path in round_dir.iterdir() if path.is_file()))
    if not (round_dir / "training_curve.png").exists():
        can_plot([round_dir / "training_curve.png"])  # says the plot needs matplotlib
    return 0


def _check_feedback_file(path: Path) -> None:
    """CommandError unless ``path`` looks like a feedback log (an .npz archive with the
    ``header`` array save_feedback writes): numpy's own error for other files blames
    "pickled data", which says nothing to someone who passed the wrong file."""
    import zipfile

    from fastplace.cli import CommandError
    from fastplace.cli.files import regular_file

    regular_file(path, "--feedback", max_bytes=MAX_FEEDBACK_BYTES)
    expected = "the .npz file fastplace.optimizer.retrain.save_feedback writes"
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        raise CommandError(
            f"--feedback {path}: not a feedback log: expected {expected}, "
            "and this file is not an .npz (zip) archive"
        ) from None
    if "header.npy" not in names:
        arrays = ", ".join(name.removesuffix(".npy") for name in names[:6]) or "none"
        raise CommandError(
            f"--feedback {path}: not a feedback log: expected {expected}, with a 'header' "
            f"array; this archive holds {arrays}"
        )


def _command(args: argparse.Namespace) -> str:
    """The command line that repeats this run, every option spelled out (recorded in the
    model file, so it stays right however the command was started and whatever the
    defaults become)."""
    options = {
        "--episodes": args.episodes,
        "--seed": args.seed,
        "--out": args.out,
        "--k": args.k,
        "--gamma": args.gamma,
        "--n-step": args.n_step,
        "--lr": args.lr,
        "--batch": args.batch,
        "--buffer": args.buffer,
        "--epsilon-start": args.epsilon_start,
        "--epsilon-steps": args.epsilon_steps,
        "--credit": args.credit,
        "--w-servers": args.w_servers,
        "--w-bytes": args.w_bytes,
        "--demonstrator": args.demonstrator,
        "--demo-weight": args.demo_weight,
        "--demo-margin": args.demo_margin,
        "--servers": args.servers,
        "--duration": args.duration,
        "--max-steps": args.max_steps,
    }
    if args.initial is not None:
        options["--initial"] = args.initial
    flags = ["--scale-workload"] if args.scale_workload else []
    words = [f"{k}={v}" for k, v in options.items()]
    return shlex.join(["fastplace", "train", *words, *flags])
