"""OpenWhisk's sharding load balancer as a simulator policy (``openwhisk``).

``core/controller/src/main/scala/org/apache/openwhisk/core/loadBalancer/
ShardingContainerPoolBalancer.scala`` (``publish``, ``schedule``, ``generateHash``,
``pairwiseCoprimeNumbersUntil``; state in ``ShardingContainerPoolBalancerState``):

1. the action's hash is ``abs(namespace.hashCode ^ fullyQualifiedName.hashCode)``
   (Java ``String.hashCode``); managed actions use the first ``ceil(0.9 * n)``
   invokers (``whisk.loadbalancer.managed-fraction: 90%`` in the controller's
   ``reference.conf``);
2. the home invoker is ``hash % invokers``, the step ``stepSizes(hash % len)`` where
   the step sizes are the numbers up to ``invokers`` coprime to it and to each other;
3. from home, invokers are tried ``index = (index + step) % invokers`` until one has
   room (a memory slot), at most ``invokers + 1`` steps; with none, a random healthy
   invoker is overloaded.

Here each DI partition is an action ``guest/<model>/<partition>`` (the default
namespace). Simplifications (docs/peers.md): room is ``cluster.feasible`` (memory and
CPU; OpenWhisk counts memory slots only, and memory binds first on the default
servers); when nothing has room the container is refused (-1: the simulator frees idle
containers and retries) since the simulated cluster cannot be overbooked; one
controller (its shard is the whole invoker); every invoker healthy unless cordoned.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from fastplace.placement_policy import BlockIds, PlacementContext, Policy, Request
from fastplace.sim.peers._common import file_key

__all__ = ["OpenWhisk", "action_hash", "java_string_hash", "pairwise_coprime_numbers_until"]

NAMESPACE = "guest"
MANAGED_FRACTION = 0.9


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode`` (UTF-16 code units, 32-bit wrap-around), signed."""
    value = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        value = (31 * value + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def action_hash(namespace: str, action: str) -> int:
    """``generateHash``: ``abs(namespace.hashCode ^ action.hashCode)``. Scala's ``abs``
    of Int.MinValue stays negative (and OpenWhisk would fail on it); it is taken as
    2^31 here."""
    return abs(java_string_hash(namespace) ^ java_string_hash(action))


@lru_cache(maxsize=64)
def pairwise_coprime_numbers_until(x: int) -> tuple[int, ...]:
    """1..x kept when coprime to x and to every number kept before it."""
    kept: list[int] = []
    for current in range(1, x + 1):
        if math.gcd(current, x) == 1 and all(math.gcd(i, current) == 1 for i in kept):
            kept.append(current)
    return tuple(kept)


class OpenWhisk(Policy):
    """OpenWhisk's ShardingContainerPoolBalancer: the action's home invoker, then steps
    of a hash-chosen size coprime to the invoker count, the first with room. Sources and
    simplifications: this module's docstring and docs/peers.md."""

    name = "openwhisk"

    def choose(self, context: PlacementContext, request: Request, blocks: BlockIds) -> int:
        cluster = context.cluster
        invokers = max(1, math.ceil(cluster.n_servers * MANAGED_FRACTION))
        action = f"{NAMESPACE}/{file_key(context, blocks, len(self.gang))}"
        digest = action_hash(NAMESPACE, action)
        steps = pairwise_coprime_numbers_until(invokers)
        home = digest % invokers
        step = steps[digest % len(steps)]
        room = np.zeros(cluster.n_servers, dtype=np.bool_)
        room[cluster.feasible(request)] = True
        # A step coprime to the count visits every invoker once in `invokers` steps.
        visiting = (home + step * np.arange(invokers, dtype=np.int64)) % invokers
        hits = np.flatnonzero(room[visiting])
        return int(visiting[hits[0]]) if hits.shape[0] else -1
