"""Workloads: DI models (partitions, sizes, versions) and their request arrivals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from fastplace._checks import integer
from fastplace.resources import DEFAULT_RESOURCES, as_amount, as_request, cpu_for_memory

__all__ = ["DIModel", "Partition", "Workload", "synthetic_workload"]

MIB = 1 << 20

#: Container memory sizes (MB) of the built-in synthetic models (Lambda-like steps).
DEFAULT_MEMORY_MB = (512, 1024, 1536, 2048, 3008, 4096, 6144, 8192, 10240)


@dataclass(frozen=True)
class Partition:
    """One partition of a DI model: its container's resources and its model file."""

    memory_mb: int
    cpu_millis: int
    file_bytes: int

    def __post_init__(self) -> None:
        # The container request is checked as Cluster.place would check it, so that a
        # model the simulator accepts is one the cluster can book (and vice versa).
        memory, cpu = as_request(
            [self.memory_mb, self.cpu_millis],
            DEFAULT_RESOURCES,
            name="Partition request [memory_mb, cpu_millis]",
        )
        object.__setattr__(self, "memory_mb", memory)
        object.__setattr__(self, "cpu_millis", cpu)
        object.__setattr__(
            self, "file_bytes", integer(self.file_bytes, "Partition.file_bytes", minimum=1)
        )

    @classmethod
    def of_memory(cls, memory_mb: int, *, weight_share: float = 0.5) -> Partition:
        """A partition whose weights take ``weight_share`` of its container memory."""
        memory = as_amount(memory_mb, "memory_mb")
        if not 0.0 <= weight_share <= 1.0:
            raise ValueError(f"weight_share = {weight_share!r} must be in [0, 1]")
        return cls(
            memory_mb=memory,
            cpu_millis=cpu_for_memory(memory),
            file_bytes=max(MIB, int(memory * MIB * weight_share)),
        )

    @property
    def request(self) -> list[int]:
        """The container request, ``[memory_mb, cpu_millis]``."""
        return [self.memory_mb, self.cpu_millis]


@dataclass(frozen=True)
class DIModel:
    """A distributed-inference model: partition 0 fans out to the others."""

    name: str
    partitions: tuple[Partition, ...]
    #: A new version is deployed every this many seconds (0: never).
    rollout_interval_s: float = 0.0
    #: First rollout time (staggers models' rollouts).
    rollout_offset_s: float = 0.0
    #: Share of the file's blocks that change from one version to the next.
    changed_fraction: float = 0.2

    def __post_init__(self) -> None:
        if not self.partitions:
            raise ValueError(f"model {self.name!r} has no partitions")
        if not 0.0 <= self.changed_fraction <= 1.0:
            raise ValueError(
                f"model {self.name!r}: changed_fraction = {self.changed_fraction} must be in [0, 1]"
            )
        if self.rollout_interval_s < 0:
            raise ValueError(
                f"model {self.name!r}: rollout_interval_s = {self.rollout_interval_s} must be >= 0"
            )


@dataclass(frozen=True)
class Workload:
    """Models and a time-sorted stream of requests to them."""

    name: str
    models: tuple[DIModel, ...]
    #: Request arrival times (s, sorted), the model each request is for, and how
    #: long partition 0 takes to answer once every partition is ready (s).
    arrival_s: npt.NDArray[np.float64]
    arrival_model: npt.NDArray[np.int32]
    service_s: npt.NDArray[np.float64]
    #: During a rollout, requests move from the old to the new version linearly
    #: over this window (both versions serve side by side).
    switch_window_s: float = 10.0
    #: Rollouts the workload names itself (a request log's version column), on top of
    #: the models' schedules: at ``rollout_s[i]`` (sorted) model ``rollout_model[i]``
    #: gets its next version. A model with such rollouts has no schedule.
    rollout_s: npt.NDArray[np.float64] = field(
        default_factory=lambda: np.zeros(0, dtype=np.float64)
    )
    rollout_model: npt.NDArray[np.int32] = field(
        default_factory=lambda: np.zeros(0, dtype=np.int32)
    )
    #: How long the workload lasts, s (a request log: from its first request to the end
    #: of its last), what to simulate when nobody says; None for generated workloads,
    #: which last as long as they were asked to.
    span_s: float | None = None

    def __post_init__(self) -> None:
        n = self.arrival_s.shape[0]
        if self.arrival_model.shape != (n,) or self.service_s.shape != (n,):
            raise ValueError("arrival_s, arrival_model and service_s must have the same length")
        if n and (np.diff(self.arrival_s) < 0).any():
            raise ValueError("arrival_s must be sorted")
        if n and (self.arrival_model.min() < 0 or self.arrival_model.max() >= len(self.models)):
            raise ValueError("arrival_model names a model that does not exist")
        k = self.rollout_s.shape[0]
        if self.rollout_s.shape != (k,) or self.rollout_model.shape != (k,):
            raise ValueError("rollout_s and rollout_model must be 1-D and of the same length")
        if k and (np.diff(self.rollout_s) < 0).any():
            raise ValueError("rollout_s must be sorted")
        if k and (self.rollout_model.min() < 0 or self.rollout_model.max() >= len(self.models)):
            raise ValueError("rollout_model names a model that does not exist")
        for m in np.unique(self.rollout_model).tolist():
            # Two sources of versions for one model would interleave unpredictably.
            if self.models[m].rollout_interval_s > 0:
                raise ValueError(
                    f"model {self.models[m].name!r} has rollouts of its own and "
                    f"rollout_interval_s = {self.models[m].rollout_interval_s}"
                )
        if self.span_s is not None and not (np.isfinite(self.span_s) and self.span_s > 0):
            raise ValueError(f"span_s = {self.span_s!r} must be a finite number > 0")

    @property
    def n_requests(self) -> int:
        """Number of requests in the stream."""
        return int(self.arrival_s.shape[0])


def _memory_mix(
    memory_mb: Sequence[int] | None, memory_weights: Sequence[float] | None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64] | None]:
    """Partition sizes to draw from and their probabilities (None: uniform)."""
    if memory_mb is None:
        if memory_weights is not None:
            raise ValueError("memory_weights given without memory_mb")
        return np.array(DEFAULT_MEMORY_MB, dtype=np.int64), None
    if isinstance(memory_mb, str | bytes) or np.ndim(memory_mb) != 1:
        raise TypeError(f"memory_mb must be a sequence of container sizes, got {memory_mb!r}")
    checked = [as_amount(size, f"memory_mb[{i}]") for i, size in enumerate(memory_mb)]
    if not checked:
        raise ValueError("memory_mb is empty")
    for i, size in enumerate(checked):
        if size <= 0:
            raise ValueError(f"memory_mb[{i}] = {size} must be > 0")
    sizes = np.asarray(checked, dtype=np.int64)
    if memory_weights is None:
        return sizes, None
    weights = np.asarray(memory_weights, dtype=np.float64).reshape(-1)
    if weights.shape != sizes.shape:
        raise ValueError(
            f"memory_weights has {weights.shape[0]} values for {sizes.shape[0]} memory_mb sizes"
        )
    for i, weight in enumerate(weights.tolist()):
        if not (weight >= 0 and np.isfinite(weight)):
            raise ValueError(f"memory_weights[{i}] = {weight} must be finite and >= 0")
    if weights.sum() <= 0:
        raise ValueError("memory_weights sum to 0")
    return sizes, weights / weights.sum()


def poisson_arrivals(
    rates: npt.NDArray[np.float64], duration_s: float, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int32]]:
    """Merged Poisson arrivals of several models over ``duration_s``."""
    counts = rng.poisson(rates * duration_s)
    times = rng.uniform(0.0, duration_s, size=int(counts.sum()))
    models = np.repeat(np.arange(len(rates), dtype=np.int32), counts)
    order = np.argsort(times, kind="stable")
    return times[order], models[order]


def synthetic_workload(
    *,
    duration_s: float = 600.0,
    n_models: int = 24,
    total_rate: float = 60.0,
    rollout_interval_s: float = 120.0,
    changed_fraction: float = 0.2,
    seed: int = 0,
    memory_mb: Sequence[int] | None = None,
    memory_weights: Sequence[float] | None = None,
) -> Workload:
    """The built-in default: DI models of 2-6 partitions with Lambda-size memory.

    Request rates follow a Zipf-like popularity (a few hot models, a long tail), and
    every model rolls out a new version every ``rollout_interval_s``, staggered.
    Partition memory is drawn uniformly from ``DEFAULT_MEMORY_MB``, or from
    ``memory_mb`` with probabilities proportional to ``memory_weights`` (a request mix
    observed in production, as the RO's retraining uses it).
    """
    n_models = integer(n_models, "n_models", minimum=1)
    seed = integer(seed, "seed", minimum=0)
    sizes, probabilities = _memory_mix(memory_mb, memory_weights)
    rng = np.random.default_rng(seed)
    models = []
    for m in range(n_models):
        n_parts = int(rng.integers(2, 7))
        # p=None keeps the default workloads' random draws (and so their seeds) as they were.
        memory = rng.choice(sizes, size=n_parts, p=probabilities)
        models.append(
            DIModel(
                name=f"model-{m:02d}",
                partitions=tuple(Partition.of_memory(int(x)) for x in memory),
                rollout_interval_s=rollout_interval_s,
                rollout_offset_s=float(rng.uniform(0.2, 1.0) * rollout_interval_s)
                if rollout_interval_s
                else 0.0,
                changed_fraction=changed_fraction,
            )
        )
    popularity = 1.0 / np.arange(1, n_models + 1) ** 0.8
    rates = total_rate * rng.permutation(popularity) / popularity.sum()
    arrival_s, arrival_model = poisson_arrivals(rates, duration_s, rng)
    base_service = rng.uniform(0.05, 0.4, size=n_models)
    return Workload(
        name="synthetic",
        models=tuple(models),
        arrival_s=arrival_s,
        arrival_model=arrival_model,
        service_s=service_times(base_service, arrival_model, rng),
    )


def service_times(
    base_s: npt.NDArray[np.float64],
    arrival_model: npt.NDArray[np.int32],
    rng: np.random.Generator,
) -> npt.NDArray[np.float64]:
    """The simulator's default service times: each model's base time (synthetic
    workloads draw it uniformly in 0.05-0.4 s) times a log-normal(0, 0.3) factor per
    request, as inference times vary with the input."""
    factor = rng.lognormal(0.0, 0.3, size=arrival_model.shape[0])
    return np.asarray(base_s[arrival_model] * factor, dtype=np.float64)
