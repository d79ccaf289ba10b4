"""The hybrid server allocator: the greedy finder and the resource optimizer (RO).

For each container (the paper's steps): (1) a request arrives; (2) the allocator asks
the greedy finder (the core's first fit) and the RO (a DQN scoring up to K candidate
servers) for a server; (3)-(4) it takes the RO's server if that answer is valid (the
server fits and is not cordoned) and arrived within the latency budget, else the
greedy one; (5) it records the outcome, which feeds the RO's retraining.

How "in parallel" is realised: sequentially, greedy first, then the RO under a
deadline. The greedy answer costs ~50 ns; handing work to another thread and back
costs tens of microseconds in CPython (measured in bench/bench_allocator.py), more
than the whole budget, so a second thread would make every decision slower. The
deadline is checked when the RO returns: a late answer is never used (the RO is not
pre-empted mid-inference; its time counts against the decision's latency).

Where the RO runs: the shipped/TorchScript model (and NativeScorer) runs in the core,
one C++ call (``_core.ro_decide``) for candidates, features and scores, ~7 us at
10,000 servers; the allocator exports the model's weights to the native scorer when
the model is set and checks that they score as TorchScript does. Any other optimizer
(an object with ``scores(features)``) gets features.py's rows and scores in Python.
Both paths see the same candidates and features (tests/test_ro_decision.py).

Which RO ``optimizer=None`` means: the model shipped in the wheel
(``fastplace.optimizer.shipped``). With torch installed, its TorchScript file; without
torch, its native twin (``default.npz``), the same weights checked by the same digest,
so decisions are identical either way and torch is needed only for training and for
custom TorchScript models.

Observability: :meth:`ServerAllocator.stats` counts decisions by source and reason,
the RO's latency in a fixed-bucket histogram, model swaps and fallbacks; see
:class:`AllocatorStats`. ``fastplace.metrics`` exposes the same to Prometheus.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from fastplace._checks import integer
from fastplace._native import _core
from fastplace.cluster import Cluster
from fastplace.resources import as_request

if TYPE_CHECKING:
    from fastplace.block_index import BlockIndex

__all__ = [
    "REASONS",
    "RO_LATENCY_BOUNDS_NS",
    "AllocatorStats",
    "Decision",
    "FeedbackRecord",
    "Optimizer",
    "ServerAllocator",
]

logger = logging.getLogger("fastplace.allocator")

BlockIds = npt.NDArray[np.int64]


#: Every ``Decision.reason`` the allocator gives ("" = the RO's server was used), and
#: what it means:
REASONS: dict[str, str] = {
    "": "the RO's server was used (source 'ro')",
    "no_fit": "no server fits the request: nothing booked (server -1)",
    "no_ro": "no RO is configured (optimizer=False, or it could not be loaded)",
    "ro_none": "the RO had no candidate server (the cluster changed under it)",
    "ro_error": "the RO raised, or returned scores of the wrong shape",
    "ro_nan": "the RO scored a candidate NaN or infinite",
    "ro_invalid": "the RO's server no longer fits (changed since the RO read it)",
    "ro_late": "the RO answered after budget_us",
    "raced": "another thread booked the chosen server's room first; first fit booked",
}

#: Upper bounds (ns, inclusive) of the RO latency histogram's buckets; a last bucket
#: (+Inf) takes the rest. Fixed, so scrapes of any two allocators add up.
RO_LATENCY_BOUNDS_NS: tuple[int, ...] = (
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    10_000_000,
)

# Reasons for which an RO was consulted but its server not used.
_FALLBACK_REASONS = ("ro_none", "ro_error", "ro_nan", "ro_invalid", "ro_late", "raced")


class Optimizer(Protocol):
    """What the allocator needs from a resource optimizer."""

    def scores(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """One score per candidate row (higher is better)."""
        ...


@dataclass(frozen=True)
class Decision:
    """Where a container went, who chose it, and how long the choice took."""

    server: int  # -1: nothing fits, nothing booked
    container: int  # -1 when server is -1
    source: str  # "ro" or "greedy"
    latency_ns: int
    #: The RO's candidate (-1 if it had none, failed or was late) and why greedy won.
    ro_server: int = -1
    reason: str = ""


@dataclass(frozen=True)
class FeedbackRecord:
    """One decision as the RO's retraining sees it."""

    request: tuple[int, ...]
    greedy_server: int
    ro_server: int
    source: str
    reason: str
    ro_latency_ns: int
    candidates: npt.NDArray[np.int64] = field(repr=False)
    features: npt.NDArray[np.float32] | None = field(repr=False, default=None)


@dataclass(frozen=True)
class AllocatorStats:
    """A snapshot of what an allocator decided, since it was built: plain ints, strings,
    lists and dicts (``as_dict()`` is JSON-serialisable).

    A *decision* is one ``allocate`` or ``choose`` call that got past request validation.
    """

    #: All decisions (= sum of by_source = sum of by_reason plus by_source["ro"]).
    decisions: int
    #: {"ro": n, "greedy": n}: whose server was used (nothing booked counts as greedy).
    by_source: dict[str, int]
    #: Decisions per non-empty ``Decision.reason`` (every reason in REASONS, zeros too).
    by_reason: dict[str, int]
    #: Decisions where an RO was consulted but greedy's server used (ro_none, ro_error,
    #: ro_nan, ro_invalid, ro_late, raced).
    fallbacks: int
    #: Upper bounds (ns) of the RO latency buckets (RO_LATENCY_BOUNDS_NS).
    ro_latency_bounds_ns: list[int]
    #: Cumulative counts, Prometheus style: entry i counts RO steps that took at most
    #: bounds[i] ns; one more entry at the end (+Inf) counts them all.
    ro_latency_cumulative: list[int]
    #: Decisions in which the RO ran, and their total RO time (ns).
    ro_latency_count: int
    ro_latency_sum_ns: int
    #: Models swapped in after construction (``swap_optimizer``, ``retrain``).
    swaps: int
    #: Retraining rounds (``start_retraining``) that raised; the old model stayed.
    retrain_errors: int
    #: Where the RO runs now: "native" (the core's scorer), "python" (a custom
    #: optimizer's ``scores``) or "none" (greedy only).
    ro_backend: str

    def as_dict(self) -> dict[str, Any]:
        """The same data as nested plain dicts and lists (for JSON)."""
        return asdict(self)


class _WarnOnce:
    """Logs each distinct RO failure kind once per allocator, not once per decision."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, kind: str, message: str) -> None:
        if kind not in self.seen:
            self.seen.add(kind)
            logger.warning("resource optimizer %s: %s; using the greedy server", kind, message)


def _load_optimizer(path: str | os.PathLike[str] | None) -> Optimizer | None:
    """The RO from ``path``, or None with a warning. None: the shipped model (its
    TorchScript file with torch, its native twin without); a path ending in ``.npz``: a
    native twin, no torch needed; any other path: a TorchScript file (needs torch)."""
    try:
        from fastplace.optimizer.model import ResourceOptimizer
        from fastplace.optimizer.native import NativeScorer
        from fastplace.optimizer.shipped import shipped_optimizer

        if path is None:
            return shipped_optimizer()
        if os.fspath(path).endswith(".npz"):
            return NativeScorer.from_npz(path)
        return ResourceOptimizer.load(path)
    except (ImportError, ValueError, OSError, RuntimeError) as error:
        # ImportError: an extension built without the native scorer, or a TorchScript
        # path without torch (OptimizerLoadError, a ValueError, says which).
        logger.warning("resource optimizer not loaded (%s); greedy placement only", error)
        return None


def _native_scorer(optimizer: object) -> Any:
    """The native scorer that scores as ``optimizer`` does (its MlpScorerCore), or None."""
    try:
        from fastplace.optimizer.native import scorer_core_for
    except ImportError:  # an extension built without the scorer: score in Python
        return None
    return scorer_core_for(optimizer)


class ServerAllocator:
    """Books containers on ``cluster``, taking the RO's server when valid and in time.

    ``optimizer=None`` loads the model shipped with fastplace (TorchScript when torch
    is installed, else its native twin: the same weights, the same decisions); a path
    loads that TorchScript file (needs torch), or a ``.npz`` native twin written by
    ``save_model`` (no torch). Either way: greedy only, with one warning, when the file
    is missing, damaged, does not match its recorded weights digest, or was made for
    another feature schema. ``optimizer=False``: greedy only, no warning. ``blocks`` is
    the cluster's block index, used for the RO's block-locality features (optional).

    ``budget_us`` bounds the RO's step only (candidates, features, scores: what
    ``FeedbackRecord.ro_latency_ns`` measures); ``Decision.latency_ns`` is the whole
    ``allocate`` call (validation, greedy, RO, booking, feedback record), so it may
    exceed the budget with ``source == "ro"``.

    Thread safety: decisions, ``swap_optimizer`` and ``stats`` may run on any threads.
    The stats counters are updated without a lock (a lock would cost more than the
    counting): under CPython's GIL each update is a single dict or list item increment,
    but the language does not promise that, so on free-threaded builds concurrent
    decisions may rarely lose a count; ``stats()`` copies the counters while decisions
    go on, so a decision may show in ``decisions`` before its latency is in the
    histogram. They are monitoring counters, not an audit log (``feedback()`` is exact).
    """

    def __init__(
        self,
        cluster: Cluster,
        optimizer: Optimizer | str | os.PathLike[str] | bool | None = None,
        budget_us: float = 50.0,
        *,
        blocks: BlockIndex | None = None,
        k: int = 64,
        feedback_size: int = 100_000,
    ) -> None:
        """An allocator for ``cluster``; ``budget_us`` is the RO's deadline per decision.

        ``k`` is the number of candidate servers the RO scores; ``feedback_size`` the
        number of recent decisions kept for retraining.
        """
        if not isinstance(cluster, Cluster):
            raise TypeError(f"cluster must be a fastplace.Cluster, got {type(cluster).__name__}")
        if isinstance(budget_us, bool) or not isinstance(budget_us, int | float | np.number):
            raise TypeError(f"budget_us = {budget_us!r} must be a number")
        if not budget_us >= 0:
            raise ValueError(f"budget_us = {budget_us!r} must be >= 0")
        k = integer(k, "k", minimum=1)
        feedback_size = integer(feedback_size, "feedback_size", minimum=0)
        self.cluster = cluster
        # Resource names never change for a cluster; kept to name them in request errors.
        self._resources = tuple(cluster.resources)
        self.blocks = blocks
        # An infinite budget (the simulator's default) means "always wait for the RO".
        self.budget_ns = int(budget_us * 1000) if budget_us != float("inf") else 2**62
        self.k = k
        if optimizer is None or isinstance(optimizer, str | os.PathLike):
            optimizer = _load_optimizer(optimizer)
        self._warn = _WarnOnce()
        self._feedback: deque[FeedbackRecord] = deque(maxlen=feedback_size)
        self._feedback_lock = threading.Lock()
        self._no_blocks = np.zeros(0, dtype=np.int64)
        # Stats counters (see the class doc on locking): decisions per reason (""
        # = the RO's server) and the RO's latency per bucket, not yet cumulative.
        self._reasons = dict.fromkeys(REASONS, 0)
        self._ro_buckets = [0] * (len(RO_LATENCY_BOUNDS_NS) + 1)
        self._ro_sum_ns = 0
        self._swaps = -1  # the first swap_optimizer below is construction, not a swap
        self._retrain_errors = 0
        # The RO and, when it can run in the core, its native scorer: one tuple, so that a
        # decision reads both of the same model (see swap_optimizer).
        self._ro: tuple[Optimizer | None, Any] = (None, None)
        self.swap_optimizer(None if optimizer is False else optimizer)  # type: ignore[arg-type]
        if self.native:
            self._warm_up_python()

    # ---- the optimizer, swappable while decisions go on ----------------------------

    @property
    def optimizer(self) -> Optimizer | None:
        """The resource optimizer in use, or None (greedy only)."""
        return self._ro[0]

    @property
    def native(self) -> bool:
        """Whether decisions run in the core (_core.ro_decide: candidates, features and
        scores in one C++ call): true for the shipped/TorchScript model and NativeScorer,
        false for other optimizers, whose ``scores`` Python calls on features.py's rows."""
        return self._ro[1] is not None

    def swap_optimizer(self, optimizer: Optimizer | None) -> None:
        """Replaces the RO atomically: a decision uses the old or the new one, whole.

        A TorchScript model is exported to the native scorer here (once per model, in
        the caller's thread), checked to score as TorchScript does; if that fails the
        model scores from Python, as any other optimizer does."""
        core = None if optimizer is None else _native_scorer(optimizer)
        if core is not None:
            self._warm_up(core)
        self._ro = (optimizer, core)  # one reference store: atomic under the GIL
        self._swaps += 1

    def _warm_up_python(self) -> None:
        """One unbooked decision through ``choose`` (and one Decision built), then the
        feedback log and the stats are cleared: the first run of this Python code (the
        records, the counters, the calls into the core) costs ~25 us more than later
        ones, which would otherwise land on the first live decision. Native RO only:
        a custom optimizer's ``scores`` is not called behind its owner's back."""
        self.choose([0] * self.cluster.n_dims)  # through as_request too: warm it as well
        Decision(-1, -1, "greedy", 0)
        self._feedback.clear()
        self._reasons = dict.fromkeys(REASONS, 0)
        self._ro_buckets = [0] * (len(RO_LATENCY_BOUNDS_NS) + 1)
        self._ro_sum_ns = 0

    def warm_up(self) -> None:
        """Prepares the calling thread for decisions: one read-only RO step in the core,
        nothing booked, nothing counted. Construction does it on the constructing
        thread; call it once on each other thread that will allocate (a worker pool's
        initializer), or that thread's first decision pays ~30-120 us for its scratch
        buffers and its first heap pages inside the RO's step, which can exceed
        ``budget_us`` and come back ``ro_late``. No-op without a native RO."""
        core = self._ro[1]
        if core is not None:
            self._warm_up(core)

    def _warm_up(self, core: Any) -> None:
        """One read-only decision in the core: the first call on a thread grows that
        thread's scratch buffers (candidates, features, scores for k rows) and touches
        the weights. A request of zeros fits every server, so the buffers reach their
        largest size."""
        try:
            _core.ro_decide(
                self.cluster, self.blocks, core, [0] * self.cluster.n_dims, self._no_blocks, self.k
            )
        except Exception:  # a broken model shows, with a warning, on its first decision
            logger.debug("resource optimizer warm-up failed", exc_info=True)

    # ---- decisions -----------------------------------------------------------------

    def choose(
        self, request: Sequence[int] | npt.NDArray[Any], blocks: BlockIds | None = None
    ) -> tuple[int, int, str, int, str]:
        """(server, greedy server, source, RO server, reason) without booking anything.

        server is -1 when nothing fits. reason says why the RO's answer was not used
        ("" when it was): no_fit, no_ro, ro_none, ro_error, ro_nan, ro_invalid,
        ro_late (REASONS). Counted in ``stats()``. ``request`` is what
        :meth:`Cluster.place` accepts (:func:`fastplace.resources.as_request`); anything
        else raises before anything is counted or recorded.
        """
        return self._choose(as_request(request, self._resources), blocks)

    def _choose(
        self, request: list[int], blocks: BlockIds | None
    ) -> tuple[int, int, str, int, str]:
        """:meth:`choose` for a request already checked by as_request."""
        greedy = self.cluster.first_fit(request)
        if greedy < 0:
            self._reasons["no_fit"] += 1
            return -1, -1, "greedy", -1, "no_fit"
        optimizer, core = self._ro
        if optimizer is None:
            self._reasons["no_ro"] += 1
            return greedy, greedy, "greedy", -1, "no_ro"
        began = time.perf_counter_ns()
        block_ids = self._no_blocks if blocks is None else blocks
        if core is not None:
            ro_server, reason, candidates, features = self._ask_native(core, request, block_ids)
        else:
            ro_server, reason, candidates, features = self._ask_ro(optimizer, request, block_ids)
        ro_ns = time.perf_counter_ns() - began
        if reason == "" and ro_ns > self.budget_ns:
            reason = "ro_late"
        self._reasons[reason] += 1
        self._ro_buckets[bisect_left(RO_LATENCY_BOUNDS_NS, ro_ns)] += 1
        self._ro_sum_ns += ro_ns
        source = "ro" if reason == "" else "greedy"
        self._record(request, greedy, ro_server, source, reason, ro_ns, candidates, features)
        return (ro_server if source == "ro" else greedy), greedy, source, ro_server, reason

    def allocate(
        self, request: Sequence[int] | npt.NDArray[Any], blocks: BlockIds | None = None
    ) -> Decision:
        """Books one container for ``request`` and says where and why.

        ``request`` is what :meth:`Cluster.place` accepts
        (:func:`fastplace.resources.as_request`); anything else raises TypeError or
        ValueError naming the value, with nothing booked, counted or recorded.
        """
        began = time.perf_counter_ns()
        request_list = as_request(request, self._resources)
        server, _, source, ro_server, reason = self._choose(request_list, blocks)
        if server < 0:
            return Decision(-1, -1, source, time.perf_counter_ns() - began, ro_server, reason)
        try:
            container = self.cluster.place(server, request_list)
        except ValueError:
            # Another thread took the room between the choice and the booking: fall
            # back to an atomic first fit, and count the decision under its final reason.
            container, server = self.cluster.place_with(request_list)
            chosen_reason = reason
            source, reason = "greedy", ("no_fit" if server < 0 else reason or "raced")
            self._reasons[chosen_reason] -= 1
            self._reasons[reason] += 1
            if server < 0:
                return Decision(-1, -1, source, time.perf_counter_ns() - began, ro_server, reason)
        return Decision(
            server, container, source, time.perf_counter_ns() - began, ro_server, reason
        )

    def _ask_native(
        self, core: Any, request: list[int], block_ids: BlockIds
    ) -> tuple[int, str, npt.NDArray[np.int64] | None, npt.NDArray[np.float32] | None]:
        """_ask_ro in one C++ call: the same candidates and features (features.py's
        twin, cpp/src/ro_decision.cpp) scored by the native scorer."""
        try:
            server, found, features, _ = _core.ro_decide(
                self.cluster, self.blocks, core, request, block_ids, self.k
            )
        except Exception as error:  # the RO must never make allocation fail
            self._warn("error", f"{type(error).__name__}: {error}")
            return -1, "ro_error", None, None
        if found.shape[0] == 0:
            return -1, "ro_none", found, None
        if server < 0:
            self._warn("nan", "returned non-finite scores")
            return -1, "ro_nan", found, features
        if not self.cluster.fits(server, request):  # changed since the decision read it
            return server, "ro_invalid", found, features
        return server, "", found, features

    def _ask_ro(
        self, optimizer: Optimizer, request: list[int], block_ids: BlockIds
    ) -> tuple[int, str, npt.NDArray[np.int64] | None, npt.NDArray[np.float32] | None]:
        """(server, reason it cannot be used or "", candidates, features)."""
        from fastplace.optimizer import features as schema  # numpy only; cached after once

        try:
            found = schema.candidates(self.cluster, self.blocks, request, block_ids, k=self.k)
            if found.shape[0] == 0:
                return -1, "ro_none", found, None
            features = schema.candidate_features(
                self.cluster, self.blocks, request, block_ids, found
            )
            scores = np.asarray(optimizer.scores(features), dtype=np.float64)
        except Exception as error:  # the RO must never make allocation fail
            self._warn("error", f"{type(error).__name__}: {error}")
            return -1, "ro_error", None, None
        if scores.shape != (found.shape[0],):
            self._warn("error", f"returned {scores.shape} scores for {found.shape[0]} candidates")
            return -1, "ro_error", found, features
        if not np.isfinite(scores).all():
            self._warn("nan", "returned non-finite scores")
            return -1, "ro_nan", found, features
        server = int(found[int(np.argmax(scores))])
        if not self.cluster.fits(server, request):
            return server, "ro_invalid", found, features
        return server, "", found, features

    def _record(
        self,
        request: list[int],
        greedy: int,
        ro_server: int,
        source: str,
        reason: str,
        ro_ns: int,
        candidates: npt.NDArray[np.int64] | None,
        features: npt.NDArray[np.float32] | None,
    ) -> None:
        record = FeedbackRecord(
            request=tuple(request),
            greedy_server=greedy,
            ro_server=ro_server,
            source=source,
            reason=reason,
            ro_latency_ns=ro_ns,
            candidates=candidates if candidates is not None else self._no_blocks,
            features=features,
        )
        with self._feedback_lock:
            self._feedback.append(record)

    # ---- observability -------------------------------------------------------------

    def stats(self) -> AllocatorStats:
        """Counts since construction: decisions by source and reason, the RO's latency
        histogram, swaps, fallbacks (see AllocatorStats). Cheap (copies a few dozen
        ints); safe to call from a metrics thread while decisions go on."""
        reasons = dict(self._reasons)
        buckets = list(self._ro_buckets)
        cumulative: list[int] = []
        total = 0
        for count in buckets:
            total += count
            cumulative.append(total)
        optimizer, core = self._ro
        backend = "none" if optimizer is None else ("native" if core is not None else "python")
        ro = reasons.pop("")
        greedy = sum(reasons.values())
        return AllocatorStats(
            decisions=ro + greedy,
            by_source={"ro": ro, "greedy": greedy},
            by_reason=reasons,
            fallbacks=sum(reasons[r] for r in _FALLBACK_REASONS),
            ro_latency_bounds_ns=list(RO_LATENCY_BOUNDS_NS),
            ro_latency_cumulative=cumulative,
            ro_latency_count=total,
            ro_latency_sum_ns=self._ro_sum_ns,
            swaps=max(self._swaps, 0),
            retrain_errors=self._retrain_errors,
            ro_backend=backend,
        )

    @property
    def counts(self) -> dict[str, int]:
        """{"ro": n, "greedy": n, "none": n}: decisions by source, those that booked
        nothing (no_fit) apart; a short view of ``stats()``."""
        reasons = dict(self._reasons)
        ro, none = reasons.pop(""), reasons.pop("no_fit")
        return {"ro": ro, "greedy": sum(reasons.values()), "none": none}

    def release(self, container: int) -> None:
        """Frees a container booked by ``allocate`` (KeyError if it is not live)."""
        self.cluster.release(container)

    # ---- feedback and retraining ---------------------------------------------------

    def feedback(self, *, clear: bool = False) -> list[FeedbackRecord]:
        """The recorded decisions, oldest first (and empties the log if ``clear``)."""
        with self._feedback_lock:
            records = list(self._feedback)
            if clear:
                self._feedback.clear()
        return records

    def retrain(self, trainer: Callable[[list[FeedbackRecord]], Optimizer | None]) -> bool:
        """Trains a new RO from the feedback log and swaps it in; decisions continue
        meanwhile (call it from a background thread). False if the trainer gave none."""
        records = self.feedback(clear=True)
        new = trainer(records)
        if new is None:
            return False
        self.swap_optimizer(new)
        return True

    def start_retraining(
        self,
        trainer: Callable[[list[FeedbackRecord]], Optimizer | None],
        every_s: float,
    ) -> threading.Event:
        """Retrains every ``every_s`` seconds in a daemon thread; set the returned
        event to stop it."""
        if not every_s > 0:
            raise ValueError(f"every_s = {every_s!r} must be > 0")
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(every_s):
                try:
                    self.retrain(trainer)
                except Exception as error:  # a failed retraining keeps the old model
                    self._retrain_errors += 1
                    self._warn("retraining", f"{type(error).__name__}: {error}")

        threading.Thread(target=loop, name="fastplace-ro-retrain", daemon=True).start()
        return stop
