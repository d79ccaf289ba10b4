"""A slow, obviously correct model of ``fastplace.Cluster`` for differential tests.

Everything is plain lists, dicts and loops over every server: no bitsets, no levels,
no numpy. Each query answers the question straight from its definition.

Container ids are the model's own (0, 1, 2, ... in placement order, never reused);
they differ from the core's ids, so tests keep a core-id -> model-id mapping.

best_fit is defined exactly (``fractions.Fraction``): the feasible server that
minimises ``sum((free[d] - request[d]) / capacity[d] for d with capacity[d] > 0)``,
ties to the lowest index. ``best_fit(..., scores="float")`` is the same choice with
each share and the running sum rounded to IEEE doubles in dimension order, which is
how the native core scores; tests accept either answer, because the two differ only
when two scores are within rounding error of each other (see test_cluster_basics for
the documented exact-tie case).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from fractions import Fraction

DEFAULT_RESOURCES = ("memory_mb", "cpu_millis")
POLICIES = ("first_fit", "best_fit")
LEVELS = 64  # the core buckets free amounts into 64 levels per dimension
MAX_TOTAL = 2**63 - 1  # the limit on amounts: capacities of a resource sum to at most this


def level_thresholds(largest_capacity: int) -> list[int]:
    """The level thresholds the core derives for a dimension from its largest capacity.

    The issue describes 64 linear levels of width ceil(largest / 64); the core now
    spaces them geometrically (four per octave below the largest capacity, each at
    least one above the previous). Tests only use these to aim requests and free
    amounts at level edges, so both families are returned, sorted; the model itself
    never looks at levels.
    """
    step = max(1, -(-largest_capacity // LEVELS))
    linear = [k * step for k in range(LEVELS + 1)]
    geometric = [0]
    for level in range(1, LEVELS):
        octaves_below = (LEVELS - 1 - level) / 4
        amount = math.floor(largest_capacity * 2.0**-octaves_below)
        geometric.append(max(amount, geometric[-1] + 1))
    return sorted(set(linear) | set(geometric))


def boundary_amounts(largest_capacity: int, upper: int) -> list[int]:
    """t - 1, t, t + 1 for every level threshold t, clipped to [0, upper]."""
    out: set[int] = {0, upper}
    for threshold in level_thresholds(largest_capacity):
        for delta in (-1, 0, 1):
            if 0 <= threshold + delta <= upper:
                out.add(threshold + delta)
    return sorted(out)


class ReferenceCluster:
    def __init__(
        self, capacity: Iterable[Iterable[int]], resources: Sequence[str] = DEFAULT_RESOURCES
    ) -> None:
        self.resources = list(resources)
        if not 1 <= len(self.resources) <= 8:
            raise ValueError(f"resources: expected 1 to 8 dimensions, got {len(self.resources)}")
        if len(set(self.resources)) != len(self.resources):
            raise ValueError("resources: duplicate names")
        self.capacity: list[list[int]] = []
        self.free: list[list[int]] = []
        self.cordoned: list[bool] = []
        self.containers: dict[int, tuple[int, tuple[int, ...]]] = {}
        self.next_id = 0
        self.add_servers(capacity)

    # ---- shape -------------------------------------------------------------------

    @property
    def n_servers(self) -> int:
        return len(self.capacity)

    @property
    def n_dims(self) -> int:
        return len(self.resources)

    def copy(self) -> ReferenceCluster:
        return copy.deepcopy(self)

    def _request(self, request: Iterable[int]) -> tuple[int, ...]:
        values = tuple(int(x) for x in request)
        if len(values) != self.n_dims:
            raise ValueError(f"request has {len(values)} values, expected {self.n_dims}")
        for value in values:
            if value < 0:
                raise ValueError(f"request value {value} must be >= 0")
        return values

    def _server(self, server: int) -> int:
        if not 0 <= server < self.n_servers:
            raise ValueError(f"server = {server} is out of range [0, {self.n_servers})")
        return server

    # ---- queries -----------------------------------------------------------------

    def _fits(self, server: int, wanted: tuple[int, ...]) -> bool:
        if self.cordoned[server]:
            return False
        for d in range(self.n_dims):
            if self.free[server][d] < wanted[d]:
                return False
        return True

    def fits(self, server: int, request: Iterable[int]) -> bool:
        return self._fits(self._server(server), self._request(request))

    def feasible(self, request: Iterable[int]) -> list[int]:
        wanted = self._request(request)
        return [s for s in range(self.n_servers) if self._fits(s, wanted)]

    def first_fit(self, request: Iterable[int]) -> int:
        for server in self.feasible(request):
            return server
        return -1

    def score(self, server: int, request: Iterable[int]) -> Fraction:
        """Exact normalised free space left on ``server`` after placing ``request``."""
        wanted = self._request(request)
        total = Fraction(0)
        for d in range(self.n_dims):
            cap = self.capacity[server][d]
            if cap > 0:
                total += Fraction(self.free[server][d] - wanted[d], cap)
        return total

    def float_score(self, server: int, request: Iterable[int]) -> float:
        """``score`` with every share and partial sum rounded to a double, in order."""
        wanted = self._request(request)
        total = 0.0
        for d in range(self.n_dims):
            cap = self.capacity[server][d]
            if cap > 0:
                total += float(self.free[server][d] - wanted[d]) / float(cap)
        return total

    def best_fit(self, request: Iterable[int], scores: str = "exact") -> int:
        wanted = self._request(request)
        score = {"exact": self.score, "float": self.float_score}[scores]
        best = -1
        best_score = None
        for server in self.feasible(wanted):
            value = score(server, wanted)
            if best_score is None or value < best_score:  # strict: ties keep the lower index
                best, best_score = server, value
        return best

    def choose(self, request: Iterable[int], policy: str, scores: str = "exact") -> int:
        if policy == "first_fit":
            return self.first_fit(request)
        if policy == "best_fit":
            return self.best_fit(request, scores)
        raise ValueError(f"policy = {policy!r} is not one of 'first_fit', 'best_fit'")

    def acceptable(self, request: Iterable[int], policy: str) -> set[int]:
        """Servers a correct core may answer: the exact choice, or the double-rounded one."""
        wanted = self._request(request)
        if policy == "first_fit":
            return {self.first_fit(wanted)}
        return {self.best_fit(wanted, "exact"), self.best_fit(wanted, "float")}

    def accepts(self, server: int, request: Iterable[int], policy: str) -> bool:
        """``server in self.acceptable(request, policy)``, trying the cheap answer first."""
        wanted = self._request(request)
        if policy == "first_fit":
            return server == self.first_fit(wanted)
        return server == self.best_fit(wanted, "float") or server == self.best_fit(wanted, "exact")

    def container(self, container: int) -> tuple[int, tuple[int, ...]]:
        if container not in self.containers:
            raise KeyError(f"container {container} is not placed")
        return self.containers[container]

    @property
    def n_containers(self) -> int:
        return len(self.containers)

    def container_counts(self) -> list[int]:
        counts = [0] * self.n_servers
        for server, _amounts in self.containers.values():
            counts[server] += 1
        return counts

    @property
    def n_active_servers(self) -> int:
        return sum(1 for count in self.container_counts() if count > 0)

    def totals(self) -> tuple[list[int], list[int]]:
        """Exact sums of free amounts and of capacities per dimension (Python ints)."""
        free = [sum(row[d] for row in self.free) for d in range(self.n_dims)]
        capacity = [sum(row[d] for row in self.capacity) for d in range(self.n_dims)]
        return free, capacity

    def is_cordoned(self, server: int) -> bool:
        return self.cordoned[self._server(server)]

    # ---- mutations ---------------------------------------------------------------

    def place(self, server: int, request: Iterable[int]) -> int:
        server = self._server(server)
        wanted = self._request(request)
        if not self.fits(server, wanted):
            raise ValueError(f"cannot place {wanted} on server {server}")
        for d in range(self.n_dims):
            self.free[server][d] -= wanted[d]
        container = self.next_id
        self.next_id += 1
        self.containers[container] = (server, wanted)
        return container

    def place_with(
        self, request: Iterable[int], policy: str = "first_fit", scores: str = "exact"
    ) -> tuple[int, int]:
        wanted = self._request(request)
        server = self.choose(wanted, policy, scores)
        if server < 0:
            return (-1, -1)
        return (self.place(server, wanted), server)

    def place_gang(
        self, requests: Iterable[Iterable[int]], policy: str = "first_fit", scores: str = "exact"
    ) -> list[tuple[int, int]]:
        """Places every request in order, or none (ValueError, state unchanged)."""
        rows = [self._request(r) for r in requests]
        if policy not in POLICIES:
            raise ValueError(f"policy = {policy!r} is not one of 'first_fit', 'best_fit'")
        saved = self.copy()
        placed = []
        for i, row in enumerate(rows):
            container, server = self.place_with(row, policy, scores)
            if server < 0:
                self.__dict__.update(saved.__dict__)
                raise ValueError(f"gang does not fit: partition {i} found no server")
            placed.append((container, server))
        return placed

    def release(self, container: int) -> None:
        if container not in self.containers:
            raise KeyError(f"container {container} is not placed")
        server, amounts = self.containers.pop(container)
        for d in range(self.n_dims):
            self.free[server][d] += amounts[d]

    def add_servers(self, capacity: Iterable[Iterable[int]]) -> int:
        rows = [[int(x) for x in row] for row in capacity]
        for row in rows:
            if len(row) != self.n_dims:
                raise ValueError(f"capacity row has {len(row)} values, expected {self.n_dims}")
            for value in row:
                if value < 0:
                    raise ValueError(f"capacity value {value} must be >= 0")
        for d in range(self.n_dims):
            total = sum(row[d] for row in self.capacity) + sum(row[d] for row in rows)
            if total > MAX_TOTAL:
                raise ValueError(
                    f"total capacity of {self.resources[d]} would be {total} > 2^63 - 1"
                )
        first = self.n_servers
        for row in rows:
            self.capacity.append(list(row))
            self.free.append(list(row))
            self.cordoned.append(False)
        return first

    def cordon(self, server: int) -> None:
        self.cordoned[self._server(server)] = True

    def uncordon(self, server: int) -> None:
        self.cordoned[self._server(server)] = False

    def replay(
        self,
        ops: Sequence[int],
        requests: Sequence[Sequence[int]],
        refs: Sequence[int],
        scores: str = "exact",
    ) -> tuple[list[int], list[int], dict[str, int]]:
        """Events one at a time (op codes as fastplace.ReplayOp, ids are the model's).

        Returns the server and container of every event (-1 when none) and the counts
        of placed, unplaced and released events.
        """
        servers: list[int] = []
        containers: list[int] = []
        stats = {"placed": 0, "unplaced": 0, "released": 0}
        for i, op in enumerate(ops):
            if op in (0, 2):
                container, server = self.place_with(
                    requests[i], "first_fit" if op == 0 else "best_fit", scores
                )
                stats["placed" if server >= 0 else "unplaced"] += 1
            elif op in (1, 3):
                container = containers[refs[i]] if op == 1 else refs[i]
                server = -1
                if container >= 0:
                    server = self.containers[container][0]
                    self.release(container)
                    stats["released"] += 1
            else:
                raise ValueError(f"ops[{i}] = {op} is not an event code")
            servers.append(server)
            containers.append(container if server >= 0 else -1)
        return servers, containers, stats


# ---- differential harness ----------------------------------------------------------


class Twin:
    """A core ``Cluster`` and a ``ReferenceCluster`` driven by the same operations.

    Every method applies one operation to both, checks that both agree on its outcome
    (result, or the exception type) and keeps the core-id -> model-id mapping. When
    an operation fails, the core's snapshot must be byte-identical to before.
    Placements by policy follow the core's choice after checking that the model
    accepts it (see ``ReferenceCluster.acceptable``), so that rounding near-ties in
    best_fit cannot make the two drift apart.
    """

    def __init__(self, core, model: ReferenceCluster) -> None:
        self.core = core
        self.model = model
        self.ids: dict[int, int] = {}  # live core container id -> model container id
        # The core derives its level thresholds from the largest capacity per dimension
        # at construction time (add_servers keeps them); tests aim at their edges.
        self.construction_tops = [
            max((row[d] for row in model.capacity), default=0) for d in range(model.n_dims)
        ]

    def _unchanged_after(self, error: type[BaseException], call, *args):
        before = self.core.snapshot()
        try:
            call(*args)
        except error:
            assert self.core.snapshot() == before, f"{call.__name__} failed but changed the state"
            return True
        return False

    def place(self, server: int, request: Sequence[int]) -> int | None:
        if not self.model.fits(server, request):
            failed = self._unchanged_after(ValueError, self.core.place, server, request)
            assert failed, f"core placed {request} on server {server}, which cannot host it"
            return None
        container = self.core.place(server, request)
        assert container not in self.ids, f"core reused live container id {container}"
        self.ids[container] = self.model.place(server, request)
        return container

    def place_with(self, request: Sequence[int], policy: str) -> int | None:
        container, server = self.core.place_with(request, policy)
        if not self.model.accepts(server, request, policy):
            allowed = self.model.acceptable(request, policy)
            raise AssertionError(f"{policy}{tuple(request)} chose {server}, expected {allowed}")
        if server < 0:
            assert container == -1
            return None
        assert container not in self.ids
        self.ids[container] = self.model.place(server, request)
        return container

    def place_gang(self, requests: Sequence[Sequence[int]], policy: str) -> list[int] | None:
        before = self.core.snapshot()
        try:
            placed = self.core.place_gang(requests, policy)
        except ValueError:
            assert self.core.snapshot() == before, "failed gang changed the state"
            modes = ("exact", "float") if policy == "best_fit" else ("exact",)
            for mode in modes:
                trial = self.model.copy()
                try:
                    trial.place_gang(requests, policy, mode)
                except ValueError:
                    return None
            raise AssertionError(f"core refused gang {requests} that the model can place") from None
        assert len(placed) == len(requests)
        out = []
        for (container, server), request in zip(placed, requests, strict=True):
            if not self.model.accepts(server, request, policy):
                allowed = self.model.acceptable(request, policy)
                raise AssertionError(f"gang partition {request} on {server}, expected {allowed}")
            assert container not in self.ids
            self.ids[container] = self.model.place(server, request)
            out.append(container)
        return out

    def release(self, container: int) -> bool:
        if container not in self.ids:
            failed = self._unchanged_after(KeyError, self.core.release, container)
            assert failed, f"core released unknown container {container}"
            return False
        self.core.release(container)
        self.model.release(self.ids.pop(container))
        return True

    def cordon(self, server: int) -> None:
        self.core.cordon(server)
        self.model.cordon(server)

    def uncordon(self, server: int) -> None:
        self.core.uncordon(server)
        self.model.uncordon(server)

    def add_servers(self, capacity: Sequence[Sequence[int]]) -> None:
        first = self.core.add_servers(capacity)
        assert first == self.model.add_servers(capacity)

    def check_state(self) -> None:
        core, model = self.core, self.model
        core.validate()
        assert core.n_servers == model.n_servers
        assert core.free.tolist() == model.free
        assert core.capacity.tolist() == model.capacity
        assert core.container_counts().tolist() == model.container_counts()
        assert core.n_containers == model.n_containers
        assert core.n_active_servers == model.n_active_servers
        assert [core.is_cordoned(s) for s in range(core.n_servers)] == model.cordoned

    def check_containers(self) -> None:
        for container, model_id in self.ids.items():
            server, amounts = self.core.container(container)
            assert (server, tuple(amounts.tolist())) == self.model.container(model_id)

    def check_queries(self, request: Sequence[int], servers: Iterable[int] = ()) -> None:
        core, model = self.core, self.model
        feasible = model.feasible(request)
        got = core.feasible(request)
        assert got.tolist() == feasible, f"feasible{tuple(request)}"
        assert core.first_fit(request) == (feasible[0] if feasible else -1)
        assert core.count_feasible(request) == len(feasible), f"count_feasible{tuple(request)}"
        best = core.best_fit(request)
        if not model.accepts(best, request, "best_fit"):
            allowed = model.acceptable(request, "best_fit")
            raise AssertionError(f"best_fit{tuple(request)} = {best}, expected {allowed}")
        for server in servers:
            assert core.fits(server, request) == model.fits(server, request)
