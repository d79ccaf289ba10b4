"""Every public callable has a docstring and a real signature, and help() is clean.

The public API is what a user reaches by name: ``fastplace.__all__`` and the ``__all__``
of the public subpackages (:data:`MODULES`), with the public methods and properties of
every class in them (``__init__`` too where a fastplace class writes its own). A
subpackage whose optional dependency is missing is skipped, not passed.

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
import os
import pydoc
import re
import site
import subprocess
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

import fastplace

#: The modules whose ``__all__`` is public API, with the import each needs beyond numpy
#: (the test of a module whose optional dependency is missing is skipped).
MODULES: dict[str, str | None] = {
    "fastplace": None,
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


def _is_type_alias(obj: Any) -> bool:
    """``Source = str | PathLike | ...``: a typing construct, documented where it is defined."""
    return isinstance(obj, types.UnionType | types.GenericAlias) or type(obj).__module__ == "typing"


def _generated(function: Any) -> bool:
    """A method written by dataclasses/enum/NamedTuple, not by a person (no source file)."""
    code = getattr(function, "__code__", None)
    return code is not None and code.co_filename.startswith("<")


def class_members(cls: type) -> Iterator[tuple[str, Any, str | None]]:
    """(name, attribute, docstring) of the public methods and properties of a class.

    Members inherited from outside fastplace (``int.bit_length`` of an IntEnum,
    ``object.__init__``) are not fastplace's to document; ``__init__`` is included when
    a fastplace class writes one by hand (or binds one from C++). A method without a
    docstring of its own counts as documented when it overrides a documented method of
    a fastplace base class (an implementation of an interface, say).
    """
    for name in sorted(dir(cls)):
        if name.startswith("_") and name != "__init__":
            continue
        owners = [c for c in cls.__mro__ if name in c.__dict__]
        if not owners or not _is_ours(owners[0]):
            continue
        raw = owners[0].__dict__[name]
        if isinstance(raw, staticmethod | classmethod):
            raw = raw.__func__
        if not (isinstance(raw, property) or callable(raw)) or isinstance(raw, type | enum.Enum):
            continue
        if name == "__init__" and _generated(raw):
            continue  # a dataclass's: the class docstring documents its fields
        if name == "__init__":  # its parameters are this class's own: so is its docstring
            owners = owners[:1]
        docs = (getattr(c.__dict__[name], "__doc__", None) for c in owners if _is_ours(c))
        yield name, raw, next((doc for doc in docs if _described(doc)), None)


def _class_doc(cls: type) -> str | None:
    """The class's own docstring; None for the ``Name(field, ...)`` a dataclass writes."""
    doc = cls.__dict__.get("__doc__")
    if doc and doc.startswith(f"{cls.__name__}(") and "\n" not in doc.strip():
        return None
    return doc


def _described(doc: str | None) -> bool:
    """Whether doc says something beyond a generated signature line (pybind11's own)."""
    lines = [line for line in (doc or "").strip().splitlines() if line.strip()]
    generated = re.compile(r"^(\d+\. )?\w+\(.*\)( -> .*)?$|^Overloaded function\.$")
    return any(not generated.match(line.strip()) for line in lines)


def public_objects(module: types.ModuleType) -> Iterator[tuple[str, Any, str | None]]:
    """(qualified name, object, docstring) for every public callable, method and property."""
    for name in module.__all__:
        obj = getattr(module, name)
        qualified = f"{module.__name__}.{name}"
        if isinstance(obj, type):
            yield qualified, obj, _class_doc(obj)
            for member, attribute, doc in class_members(obj):
                yield f"{qualified}.{member}", attribute, doc
        elif callable(obj) and not _is_type_alias(obj):
            yield qualified, obj, obj.__doc__


def undocumented(objects: Iterable[tuple[str, Any, str | None]]) -> list[str]:
    """The names whose docstring is missing, blank, or only a generated signature."""
    return [name for name, _, doc in objects if not _described(doc)]


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


def bad_signatures(objects: Iterable[tuple[str, Any, str | None]]) -> list[str]:
    """'name: problem' for every callable whose signature is missing or generic."""
    problems = []
    for name, obj, _ in objects:
        if isinstance(obj, property) or isinstance(obj, type):
            continue  # a class's signature is its __init__'s, checked as a member
        problem = _signature_problem(obj)
        if problem:
            problems.append(f"{name}: {problem}")
    return problems


def module_api(module_name: str) -> list[tuple[str, Any, str | None]]:
    """public_objects of one of MODULES, or a skip when its optional dependency is missing."""
    needs = MODULES[module_name]
    if needs is not None:
        pytest.importorskip(needs)
    return list(public_objects(importlib.import_module(module_name)))


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
    # max, like a pybind11 method whose docstring has no "--" signature line, has a
    # signature only in prose: inspect.signature cannot read it.
    assert "no signature" in (_signature_problem(max) or "")
    assert _signature_problem(fastplace.Cluster.first_fit) is None  # vectorcall-bound
    assert _signature_problem(fastplace.Cluster.place_gang) is None  # pybind11-bound


def test_checker_does_not_count_a_generated_signature_as_documentation() -> None:
    pybind11_generated = (
        "best_fit(self: fastplace._core.ClusterCore, request: object) -> int\n",
        "__init__(*args, **kwargs)\nOverloaded function.\n\n1. __init__(self: X, a: int) -> None\n",
    )
    for doc in pybind11_generated:
        assert not _described(doc), doc
    assert _described("best_fit(request) -> int\n\nThe tightest server that fits, or -1.")


# ---- the real API --------------------------------------------------------------------


def test_public_api_is_found() -> None:
    # A walker that stops early would pass the checks below vacuously.
    names = {name for name, _, _ in module_api("fastplace")}
    for expected in ("Cluster.place_gang", "Cluster.first_fit", "Cluster.free", "Cluster.__init__"):
        assert f"fastplace.{expected}" in names
    assert "fastplace.BlockIndex.cached_bytes" in names
    assert "fastplace.ServerAllocator.allocate" in names
    assert len(names) > 70
    assert "fastplace.sim.simulate" in {name for name, _, _ in module_api("fastplace.sim")}


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_callable_has_a_docstring(module_name: str) -> None:
    missing = undocumented(module_api(module_name))
    assert not missing, f"{len(missing)} public callables without a docstring:\n" + "\n".join(
        missing
    )


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_callable_has_a_real_signature(module_name: str) -> None:
    problems = bad_signatures(module_api(module_name))
    assert not problems, "\n".join(problems)


API_MD = Path(__file__).parents[1] / "docs" / "api.md"


def _code_in(markdown: str) -> str:
    """The code of a markdown text: fenced blocks and `inline` spans, one per line."""
    blocks = re.findall(r"```\w*\n(.*?)```", markdown, flags=re.DOTALL)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", markdown, flags=re.DOTALL))
    return "\n".join(blocks + spans)


def unmentioned(
    objects: Iterable[tuple[str, Any, str | None]], module_names: Iterable[str]
) -> list[str]:
    """Public names (module-level, and class members but __init__) that the code of
    docs/api.md never spells."""
    code = _code_in(API_MD.read_text())
    wanted = [name for name, _, _ in objects if not name.endswith(".__init__")]
    wanted += module_names
    return sorted(
        {
            name
            for name in wanted
            if not re.search(rf"(?<!\w){re.escape(name.rsplit('.', 1)[-1])}(?!\w)", code)
        }
    )


def test_unmentioned_finds_a_missing_name() -> None:
    assert unmentioned(public_objects(_dummy_module()), ["place_gang"]) == [
        "fastplace._dummy_api.Thing",
        "fastplace._dummy_api.Thing.bad",
        "fastplace._dummy_api.Thing.good",
        "fastplace._dummy_api.Thing.hidden",
        "fastplace._dummy_api.bare",
        "fastplace._dummy_api.documented",
        "fastplace._dummy_api.generic",
        "fastplace._dummy_api.untyped",
    ]


@pytest.mark.parametrize("module_name", MODULES)
def test_api_md_lists_every_public_name(module_name: str) -> None:
    objects = module_api(module_name)
    module = importlib.import_module(module_name)
    constants = [f"{module_name}.{name}" for name in module.__all__ if name != "__version__"]
    missing = unmentioned(objects, constants)
    assert not missing, "docs/api.md does not mention:\n" + "\n".join(missing)


@pytest.mark.parametrize("name", HELP_CLASSES)
def test_help_shows_no_pybind11_noise(name: str) -> None:
    text = pydoc.render_doc(getattr(fastplace, name), renderer=pydoc.plaintext)
    # pybind11's own base class contributes one generic __new__; it is not fastplace's.
    text = text.replace("__new__(*args, **kwargs) from pybind11_builtins.pybind11_type", "")
    assert "Overloaded function" not in text
    assert "(*args, **kwargs)" not in text
    assert "self: fastplace._core" not in text  # pybind11's generated signature lines
    untyped = re.search(r".*\w: object\b.*", text)
    assert untyped is None, untyped


def test_core_stub_matches_the_extension(tmp_path: Path) -> None:
    """_core.pyi names every class, method, parameter and default the built module has."""
    pytest.importorskip("mypy.stubtest")
    # pybind11 classes have their own metaclass, which a stub cannot name.
    allowlist = tmp_path / "allowlist.txt"
    allowlist.write_text(
        "".join(
            f"fastplace._core.{name}\n"
            for name in ("ClusterCore", "BlockIndexCore", "MlpScorerCore")
        )
    )
    env = dict(os.environ)
    package_root = str(Path(fastplace.__file__).resolve().parents[1])
    installed = {
        str(Path(p).resolve()) for p in [*site.getsitepackages(), site.getusersitepackages()]
    }
    if package_root not in installed:  # a source tree (PYTHONPATH=src): point mypy at it
        env["MYPYPATH"] = package_root  # (mypy refuses site-packages there; it finds those)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "fastplace._core", "--allowlist", str(allowlist)],
        cwd=tmp_path,  # mypy's cache goes there
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
