"""Simulation settings: the cluster, its caches and network, container lifetimes."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from fastplace._checks import integer
from fastplace.resources import as_amount
from fastplace.synthetic import SERVER_CPU_MILLIS, SERVER_MEMORY_MB

__all__ = ["SimConfig"]

GIB = 1 << 30


@dataclass(frozen=True)
class SimConfig:
    """Everything about a simulated cluster except the workload.

    Times are seconds, sizes bytes (memory in MB, CPU in millicores, like requests).
    """

    servers: int = 150
    server_memory_mb: int = SERVER_MEMORY_MB
    server_cpu_millis: int = SERVER_CPU_MILLIS
    #: Mix half-, full- and double-size servers (sizes drawn with ``seed``).
    heterogeneous: bool = False
    #: Model files are fetched and cached in blocks of this size, bytes.
    block_bytes: int = 4 << 20
    #: Block cache per server (LRU), bytes.
    cache_bytes: int = 32 * GIB
    #: Download bandwidth from the model store to one server, bytes per second.
    bandwidth_bytes_per_s: float = 1.0 * GIB
    #: Container boot time on top of the download, seconds.
    boot_s: float = 0.25
    #: How long an idle container stays warm before it is reclaimed.
    keep_alive_s: float = 30.0
    #: Cap on the container sets (gangs) of a model's current version; a request that
    #: finds every one busy at the cap waits for one to finish, as the Ray front end's
    #: ``max_gangs`` does. 0: no cap (each request without an idle set starts one).
    max_gangs: int = 0
    #: A request whose cold start fits nowhere (nothing idle to reclaim) waits until
    #: containers are released, as the Ray front end does, instead of being rejected.
    #: Requests still waiting when the simulation ends count as rejected.
    wait_for_room: bool = False
    #: Simulated time, seconds.
    duration_s: float = 600.0
    #: A request slower than this is an SLA violation.
    sla_s: float = 2.0
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Counts and sizes are integers (never bools or floats); the server capacities
        # are amounts as Cluster takes them (whole floats too), stored as ints.
        checked = {
            "servers": integer(self.servers, "SimConfig.servers", minimum=1),
            "server_memory_mb": as_amount(self.server_memory_mb, "SimConfig.server_memory_mb"),
            "server_cpu_millis": as_amount(self.server_cpu_millis, "SimConfig.server_cpu_millis"),
            "block_bytes": integer(self.block_bytes, "SimConfig.block_bytes", minimum=1),
            "cache_bytes": integer(self.cache_bytes, "SimConfig.cache_bytes", minimum=0),
            "max_gangs": integer(self.max_gangs, "SimConfig.max_gangs", minimum=0),
            "seed": integer(self.seed, "SimConfig.seed", minimum=0),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)
        for name in ("server_memory_mb", "server_cpu_millis"):
            if getattr(self, name) == 0:
                raise ValueError(f"SimConfig.{name} = 0 must be > 0")
        if not isinstance(self.wait_for_room, bool):
            raise TypeError(f"SimConfig.wait_for_room = {self.wait_for_room!r} must be a bool")
        for name in ("bandwidth_bytes_per_s", "duration_s", "sla_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not value > 0:
                raise ValueError(f"SimConfig.{name} = {value!r} must be > 0")
        if not math.isfinite(self.duration_s):
            raise ValueError(f"SimConfig.duration_s = {self.duration_s!r} must be finite")
        for name in ("boot_s", "keep_alive_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not value >= 0:
                raise ValueError(f"SimConfig.{name} = {value!r} must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (as metrics.json records them)."""
        return asdict(self)
