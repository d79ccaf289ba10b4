"""Stateful test: random valid and invalid operations on the core and the reference model,
with the whole state compared and validate() called after every step."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from fastplace import Cluster
from reference.cluster_model import ReferenceCluster, Twin, boundary_amounts

POLICY = st.sampled_from(["first_fit", "best_fit"])
# Capacities mix zeros, small values (ties) and a large one whose level thresholds are
# spread out; requests mix small values with amounts at those thresholds.
CAPACITY_VALUE = st.sampled_from([0, 1, 3, 8, 10, 20, 64, 100, 1000, 4096])
EDGES = sorted(set(boundary_amounts(4096, 4097)) | set(range(25)))
AMOUNT = st.one_of(st.integers(0, 24), st.sampled_from(EDGES))
ROW = st.lists(AMOUNT, min_size=8, max_size=8)
CAPACITY_ROW = st.lists(CAPACITY_VALUE, min_size=8, max_size=8)


class ClusterMachine(RuleBasedStateMachine):
    @initialize(
        n=st.sampled_from([1, 2, 3, 63, 64, 65, 127, 128, 129]),
        dims=st.integers(1, 8),
        rows=st.lists(CAPACITY_ROW, min_size=1, max_size=8),
    )
    def start(self, n, dims, rows):
        self.dims = dims
        capacity = [rows[s % len(rows)][:dims] for s in range(n)]
        names = [f"r{d}" for d in range(dims)]
        self.twin = Twin(Cluster(capacity, names), ReferenceCluster(capacity, names))
        self.released: list[int] = []

    def request(self, row):
        return row[: self.dims]

    def server(self, index: int) -> int:
        return index % self.twin.model.n_servers

    # ---- valid operations ------------------------------------------------------------

    @rule(row=ROW, policy=POLICY)
    def place_with(self, row, policy):
        self.twin.place_with(self.request(row), policy)
        self.twin.check_queries(self.request(row))

    @rule(index=st.integers(0, 200), row=ROW)
    def place(self, index, row):
        # fits or not: Twin.place expects ValueError (and no change) when it does not
        self.twin.place(self.server(index), self.request(row))

    @rule(index=st.integers(0, 200))
    def place_exact_free(self, index):
        """Books exactly what a server has left, emptying it in every dimension."""
        server = self.server(index)
        self.twin.place(server, list(self.twin.model.free[server]))

    @precondition(lambda self: self.twin.ids)
    @rule(index=st.integers(0, 10**6))
    def release(self, index):
        container = sorted(self.twin.ids, key=self.twin.ids.__getitem__)[index % len(self.twin.ids)]
        assert self.twin.release(container)
        self.released.append(container)

    @rule(rows=st.lists(ROW, max_size=5), policy=POLICY)
    def place_gang(self, rows, policy):
        self.twin.place_gang([self.request(row) for row in rows], policy)

    @rule(index=st.integers(0, 200))
    def cordon(self, index):
        self.twin.cordon(self.server(index))

    @rule(index=st.integers(0, 200))
    def uncordon(self, index):
        self.twin.uncordon(self.server(index))

    @rule(rows=st.lists(CAPACITY_ROW, max_size=3))
    def add_servers(self, rows):
        matrix = np.array([row[: self.dims] for row in rows], dtype=np.int64)
        self.twin.add_servers(matrix.reshape(len(rows), self.dims))

    @rule(use_pickle=st.booleans())
    def snapshot_restore(self, use_pickle):
        data = self.twin.core.snapshot()
        restored = pickle.loads(pickle.dumps(self.twin.core)) if use_pickle else None
        if restored is None:
            restored = Cluster.restore(data)
        assert restored.snapshot() == data
        self.twin.core = restored

    # ---- invalid operations: each must raise and leave the snapshot unchanged ----------

    def refused(self, error, call, *args):
        before = self.twin.core.snapshot()
        with pytest.raises(error):
            call(*args)
        assert self.twin.core.snapshot() == before

    @precondition(lambda self: self.released)
    @rule(index=st.integers(0, 10**6))
    def double_release(self, index):
        self.refused(KeyError, self.twin.core.release, self.released[index % len(self.released)])

    @rule(index=st.integers(0, 200), dim=st.integers(0, 7), extra=st.integers(1, 5))
    def place_over_capacity(self, index, dim, extra):
        server = self.server(index)
        request = list(self.twin.model.free[server])
        request[dim % self.dims] += extra
        self.refused(ValueError, self.twin.core.place, server, request)

    @rule(rows=st.lists(ROW, max_size=3), position=st.integers(0, 3), policy=POLICY)
    def gang_that_cannot_fit(self, rows, position, policy):
        too_big = [max(row[d] for row in self.twin.model.capacity) + 1 for d in range(self.dims)]
        gang = [self.request(row) for row in rows]
        gang.insert(position % (len(gang) + 1), too_big)
        self.refused(ValueError, self.twin.core.place_gang, gang, policy)

    @rule(
        bad=st.sampled_from(["negative", "nan", "inf", "half", "short", "long", "bool", "text"]),
        method=st.sampled_from(
            ["first_fit", "best_fit", "feasible", "place", "place_with", "gang"]
        ),
    )
    def bad_request(self, bad, method):
        request = [1] * self.dims
        error = ValueError
        if bad == "negative":
            request[-1] = -1
        elif bad == "nan":
            request[0] = math.nan
        elif bad == "inf":
            request[0] = math.inf
        elif bad == "half":
            request[-1] = 0.5
        elif bad == "short":
            request = request[:-1]
        elif bad == "long":
            request = [*request, 1]
        elif bad == "bool":
            request[0], error = True, TypeError
        else:
            request, error = "x" * self.dims, TypeError
        core = self.twin.core
        calls = {
            "first_fit": lambda: core.first_fit(request),
            "best_fit": lambda: core.best_fit(request),
            "feasible": lambda: core.feasible(request),
            "place": lambda: core.place(0, request),
            "place_with": lambda: core.place_with(request, "first_fit"),
            "gang": lambda: core.place_gang([[0] * self.dims, request]),
        }
        self.refused(error, calls[method])

    @rule(container=st.integers(-(2**40), 2**40))
    def release_unknown(self, container):
        if container not in self.twin.ids:
            self.refused(KeyError, self.twin.core.release, container)

    @rule(index=st.sampled_from([-1, -2, 0]))
    def server_out_of_range(self, index):
        server = index if index < 0 else self.twin.model.n_servers
        self.refused(ValueError, self.twin.core.place, server, [0] * self.dims)
        self.refused(ValueError, self.twin.core.cordon, server)

    @rule(policy=st.sampled_from(["", "worst_fit", "FIRST_FIT"]))
    def bad_policy(self, policy):
        self.refused(ValueError, self.twin.core.place_with, [0] * self.dims, policy)
        self.refused(ValueError, self.twin.core.place_gang, [[0] * self.dims], policy)

    # ---- after every step -------------------------------------------------------------

    @invariant()
    def same_state(self):
        self.twin.check_state()  # includes validate()
        for value in (0, 1, 10, 1024):
            self.twin.check_queries([value] * self.dims)


ClusterMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40)
test_cluster_state_machine = ClusterMachine.TestCase
