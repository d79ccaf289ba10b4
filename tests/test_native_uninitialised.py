"""Native objects whose __init__ never ran: every method and property raises TypeError.

``cls.__new__(cls)`` makes an instance without its C++ object (restore() does this
before calling __init__). pybind11 then handed methods unconstructed memory: garbage
from ``Cluster.__new__(Cluster).n_dims``, a hang or an abort from ``.snapshot()``,
a hang from ``BlockIndex.__new__(BlockIndex).n_servers`` (issue 15). The calls run in
a child interpreter, so that a hang or a crash fails the test instead of pytest.

Every public attribute of every native class is found by introspection, and of the
public classes built on them; a new method needs only its parameter names in ARGS.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from child_process import child_env

# Run in the child: prints one JSON line {"Class.attribute": [error type, message]}.
CHILD = r"""
import inspect, json, sys, tempfile
import numpy as np
import fastplace
from fastplace._native import _core

PATH = tempfile.mkdtemp() + "/snapshot"
# Plausible values per parameter name: a check that ran only after the arguments were
# converted would still be reached with these.
ARGS = {
    "block": 0, "block_ids": [0], "cache_bytes": [10], "capacity": np.ones((1, 2), np.int64),
    "container": 0, "dim": 0, "features": np.zeros((1, 17), np.float32), "hashes": [7],
    "ops": np.zeros(1, np.uint8), "refs": np.full(1, -1, np.int64), "request": [1, 1],
    "requests": np.ones((1, 2), np.int64), "server": 0, "servers": [0], "sizes": [10],
    "n": 1, "path": PATH,
}

def native_classes():
    found = vars(_core).values()
    return [c for c in found if isinstance(c, type) and not issubclass(c, BaseException)]

def public_classes():
    natives = tuple(native_classes())
    found = vars(fastplace).values()
    return [c for c in found if isinstance(c, type) and issubclass(c, natives)]

def attributes(cls, own_dunders=()):
    for name in sorted(vars(cls)):
        if name.startswith("_") and name not in own_dunders:
            continue
        static = inspect.getattr_static(cls, name)
        if isinstance(static, (classmethod, staticmethod)):
            continue  # constructors (restore, load): they make initialised objects
        if isinstance(static, property):
            yield name, lambda obj, name=name: getattr(obj, name)
            continue
        parameters = list(inspect.signature(getattr(cls, name)).parameters.values())[1:]
        args = [ARGS[p.name] for p in parameters if p.default is inspect.Parameter.empty]
        yield name, lambda obj, name=name, args=args: getattr(obj, name)(*args)

results = {}
def record(label, call):
    try:
        value = call()
    except BaseException as error:
        results[label] = [type(error).__name__, str(error)]
    else:
        results[label] = ["returned", repr(value)[:200]]

for cls in native_classes() + public_classes():
    own = ("__repr__", "__reduce__") if cls.__module__ != _core.__name__ else ()
    for name, call in attributes(cls, own):
        record(f"{cls.__name__}.{name}", lambda: call(cls.__new__(cls)))

# ro_decide takes the three native classes as arguments.
cluster = fastplace.Cluster([[10, 10]])
blocks = fastplace.BlockIndex(1, 10)
bare = {cls.__name__: cls.__new__(cls) for cls in native_classes()}
decide = _core.ro_decide
record("ro_decide(cluster)", lambda: decide(bare["ClusterCore"], None, None, [1, 1], None, 1))
record("ro_decide(blocks)", lambda: decide(cluster, bare["BlockIndexCore"], None, [1, 1], [], 1))
record("ro_decide(scorer)", lambda: decide(cluster, None, bare["MlpScorerCore"], [1, 1], None, 1))

# A failed call leaves nothing behind that __init__ would trip over: restore() is
# exactly __new__ then __init__.
late = fastplace.Cluster.__new__(fastplace.Cluster)
record("late.snapshot", lambda: late.snapshot())
_core.ClusterCore.__init__(late, cluster.snapshot())
results["late init"] = ["n_servers", str(late.n_servers)]
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def outcomes() -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,  # a hang fails here
    )
    assert done.returncode == 0, f"child crashed ({done.returncode}): {done.stderr[-3000:]}"
    result: dict[str, list[str]] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_every_attribute_was_tried(outcomes):
    # The introspection must reach every native class and the public ones on top.
    classes = {label.split(".")[0] for label in outcomes}
    assert {"ClusterCore", "BlockIndexCore", "MlpScorerCore", "Cluster", "BlockIndex"} <= classes
    for expected in ("ClusterCore.place", "ClusterCore.n_dims", "ClusterCore.snapshot"):
        assert expected in outcomes
    assert len(outcomes) > 60


def test_every_attribute_of_an_uninitialised_object_raises_type_error(outcomes):
    wrong = {
        label: outcome
        for label, outcome in outcomes.items()
        if label != "late init"
        and (outcome[0] != "TypeError" or "not initialised" not in outcome[1])
    }
    assert not wrong, wrong


def test_init_after_a_refused_call_still_works(outcomes):
    assert outcomes["late init"] == ["n_servers", "1"]


def test_a_method_of_one_class_refuses_an_instance_of_another():
    from fastplace import BlockIndex, Cluster
    from fastplace._native import _core

    index = BlockIndex(2, 10)
    with pytest.raises(TypeError, match=r"expected a .*ClusterCore, got BlockIndex"):
        _core.ClusterCore.snapshot(index)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _core.ClusterCore.place(index, 0, [1, 1])  # type: ignore[arg-type]
    cluster = Cluster([[1, 1]])
    with pytest.raises(TypeError, match=r"expected a .*BlockIndexCore, got Cluster"):
        _core.BlockIndexCore.n_servers.fget(cluster)
    assert index.n_servers == 2 and cluster.n_servers == 1
