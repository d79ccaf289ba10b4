"""Every public callable has a docstring and a real signature, and help() is clean.

The public API is what a user reaches by name: ``fastplace.__all__`` and the ``__all__``
of the public subpackages, with the public methods and properties of every class in
them (``__init__`` too where a fastplace class writes its own). A subpackage whose
optional dependency is missing is skipped, not passed.

Two checks, each with a self-test on deliberately broken dummies below (so that a
checker that finds nothing cannot pass unnoticed):

* :func:`undocumented`: public callables (and properties) whose docstring is empty;
* :func:`bad_signatures`: callables whose ``inspect.signature`` fails, is only
  ``(*args, **kwargs)``, or has a parameter annotated as bare ``object`` -- what
  pybind11 shows for a ``py::handle`` argument and what ``help()`` printed before.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import pydoc
import re
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import fastplace

#: Subpackages whose ``__all__`` is public API, with the import each needs beyond numpy.
SUBPACKAGES: dict[str, str | None] = {
    "fastplace.sim": None,
    "fastplace.optimizer": None,
    "fastplace.packing": None,
    "fastplace.blocks": "numba",
    "fastplace.engines.ray": "ray",
    "fastplace.cli": None,
}

#: Classes whose help() text must show no pybind11 noise (their methods live in C++).
HELP_CLASSES = ("Cluster", "BlockIndex", "ServerAllocator", "Decision", "ReplayOp", "ReplayResult")


def _is_ours(owner: type) -> bool:
    return owner.__module__.split(".")[0] == "fastplace"


def _defining_class(cls: type, name: str) -> type | None:
    for owner in cls.__mro__:
        if name in owner.__dict__:
            return owner
    return None


def _generated(function: Any) -> bool:
    """A method written by dataclasses/enum/NamedTuple, not by a person (no source file)."""
    code = getattr(function, "__code__", None)
    return code is not None and code.co_filename.startswith("<")


def class_members(cls: type) -> Iterator[tuple[str, Any]]:
    """(name, attribute) of the public methods and properties a fastplace class defines.

    Members inherited from outside fastplace (``int.bit_length`` of an IntEnum,
    ``object.__init__``) are not fastplace's to document; ``__init__`` is included when
    a fastplace class writes one by hand (or binds one from C++).
    """
    for name in sorted(dir(cls)):
        if name.startswith("_") and name != "__init__":
            continue
        owner = _defining_class(cls, name)
        if owner is None or not _is_ours(owner):
            continue
        raw = owner.__dict__[name]
        if isinstance(raw, staticmethod | classmethod):
            raw = raw.__func__
        if isinstance(raw, property):
            yield name, raw
        elif callable(raw) and not isinstance(raw, type | enum.Enum):
            if name == "__init__" and _generated(raw):
                continue
            yield name, raw


def public_objects(module: types.ModuleType) -> Iterator[tuple[str, Any]]:
    """(qualified name, object) for every public callable, method and property of module."""
    for name in module.__all__:
        obj = getattr(module, name)
        qualified = f"{module.__name__}.{name}"
        if isinstance(obj, type):
            yield qualified, obj
            for member, attribute in class_members(obj):
                yield f"{qualified}.{member}", attribute
        elif callable(obj):
            yield qualified, obj


def undocumented(objects: Iterator[tuple[str, Any]]) -> list[str]:
    """The names whose docstring is missing or blank."""
    missing = []
    for name, obj in objects:
        doc = obj.__doc__ if isinstance(obj, property) else inspect.getdoc(obj)
        if not (doc or "").strip():
            missing.append(name)
    return missing


def _signature_problem(obj: Callable[..., Any]) -> str | None:
    try:
        signature = inspect.signature(obj)
    except (ValueError, TypeError) as error:
        return f"no signature ({error})"
    params = [p for p in signature.parameters.values() if p.name != "self"]
    kinds = {p.kind for p in params}
    if params and kinds <= {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD}:
        return f"only {signature}"
    for p in params:
        if p.annotation is object or p.annotation == "object":
            return f"parameter {p.name!r} is typed bare object"
    return None


def bad_signatures(objects: Iterator[tuple[str, Any]]) -> list[str]:
    """'name: problem' for every callable whose signature is missing or generic."""
    problems = []
    for name, obj in objects:
        if isinstance(obj, property) or isinstance(obj, type):
            continue  # a class's signature is its __init__'s, checked as a member
        problem = _signature_problem(obj)
        if problem:
            problems.append(f"{name}: {problem}")
    return problems


def public_api() -> list[tuple[str, Any]]:
    """Everything the tests below check, skipping subpackages whose extra is missing."""
    found = list(public_objects(fastplace))
    for module_name, needs in SUBPACKAGES.items():
        if needs is not None:
            try:
                importlib.import_module(needs)
            except ImportError:
                continue
        found.extend(public_objects(importlib.import_module(module_name)))
    return found


# ---- the checker checks something ----------------------------------------------------


def _dummy_module() -> types.ModuleType:
    """A module with one of each mistake the checkers must report, and good neighbours."""
    module = types.ModuleType("fastplace._dummy_api")

    def documented(x: int) -> int:
        """Returns x."""
        return x

    def bare(x: int) -> int:
        return x

    def generic(*args: Any, **kwargs: Any) -> None:
        """Takes anything."""

    def untyped(request: object) -> int:
        """Takes an object."""
        return 0

    class Thing:
        """A documented class with an undocumented method and property."""

        def __init__(self, size: int) -> None:
            self.size = size

        def good(self) -> int:
            """Documented."""
            return self.size

        def bad(self) -> int:
            return self.size

        @property
        def hidden(self) -> int:
            return self.size

        def _private(self) -> None:
            pass

    for obj in (documented, bare, generic, untyped, Thing):
        obj.__module__ = module.__name__
        setattr(module, obj.__name__, obj)
    module.__all__ = ["Thing", "bare", "documented", "generic", "untyped"]  # type: ignore[attr-defined]
    return module


def test_checker_reports_every_undocumented_callable() -> None:
    found = undocumented(public_objects(_dummy_module()))
    assert found == [
        "fastplace._dummy_api.Thing.__init__",
        "fastplace._dummy_api.Thing.bad",
        "fastplace._dummy_api.Thing.hidden",
        "fastplace._dummy_api.bare",
    ]


def test_checker_reports_generic_and_object_signatures() -> None:
    found = bad_signatures(public_objects(_dummy_module()))
    assert [problem.split(":")[0] for problem in found] == [
        "fastplace._dummy_api.generic",
        "fastplace._dummy_api.untyped",
    ]


def test_checker_reports_a_builtin_without_text_signature() -> None:
    # What a pybind11 method looked like before its docstring carried a signature line.
    assert _signature_problem(object.__reduce_ex__.__get__(1)) is None  # has one
    assert _signature_problem(fastplace.Cluster.first_fit) is None
    problem = _signature_problem(type(dict.fromkeys).__call__)
    assert problem is None or "signature" in problem
    no_sig = re.compile  # a C function with a text signature ...
    assert _signature_problem(no_sig) is None


# ---- the real API --------------------------------------------------------------------

API = public_api()


def test_public_api_is_found() -> None:
    names = {name for name, _ in API}
    # A walker that stops early would pass the checks below vacuously.
    assert "fastplace.Cluster.place_gang" in names
    assert "fastplace.Cluster.first_fit" in names
    assert "fastplace.BlockIndex.cached_bytes" in names
    assert "fastplace.sim.simulate" in names
    assert "fastplace.packing.pack" in names
    assert len(names) > 150


def test_every_public_callable_has_a_docstring() -> None:
    missing = undocumented(iter(API))
    assert not missing, f"{len(missing)} public callables without a docstring:\n" + "\n".join(
        missing
    )


def test_every_public_callable_has_a_real_signature() -> None:
    problems = bad_signatures(iter(API))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", HELP_CLASSES)
def test_help_shows_no_pybind11_noise(name: str) -> None:
    text = pydoc.render_doc(getattr(fastplace, name), renderer=pydoc.plaintext)
    assert "Overloaded function" not in text
    assert "(*args, **kwargs)" not in text
    assert not re.search(r"\w: object\b", text), re.search(r".*\w: object\b.*", text)
    assert "fastplace._core." not in text.replace("fastplace._core.ClusterCore", "").replace(
        "fastplace._core.BlockIndexCore", ""
    )
