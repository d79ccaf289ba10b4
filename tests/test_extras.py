"""fastplace with numpy alone: the core works, and a part needing an extra names it."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from child_process import child_env
from fastplace import extras
from fastplace.extras import EXTRAS, MissingExtra, require

SMOKE = Path(__file__).parent / "smoke" / "numpy_only.py"

# Run in a child: an import hook makes every optional module fail to import as if it
# were not installed, then the smoke script runs as __main__.
HIDING = """
import runpy, sys

HIDDEN = set(sys.argv[2:])

class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Hide())
script = sys.argv[1]
sys.argv = [script]
runpy.run_path(script, run_name="__main__")
"""


def test_smoke_script_passes_with_every_optional_module_hidden() -> None:
    """The script .ci/run runs in a numpy-only venv: placement, the simulator and greedy
    packing work there, and fingerprints and the 'best' policy name their extra."""
    result = subprocess.run(
        [sys.executable, "-c", HIDING, str(SMOKE), *EXTRAS],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke test passed" in result.stdout
    assert "ok  check_extras_named" in result.stdout


def test_smoke_script_fails_when_an_optional_module_is_importable() -> None:
    """Not hiding numpy's optional companions: the script must notice (it can fail)."""
    result = subprocess.run(
        [sys.executable, "-c", HIDING, str(SMOKE)],  # nothing hidden
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "is importable: this must run with numpy alone" in result.stderr


def test_require_returns_the_module() -> None:
    assert require("numba", "a test") is importlib.import_module("numba")


def test_require_names_the_extra_of_a_missing_module(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(extras.importlib, "import_module", missing)
    with pytest.raises(MissingExtra) as caught:
        require("matplotlib.pyplot", "plots")
    assert str(caught.value) == "plots needs matplotlib: pip install 'fastplace[cli]'"
    assert caught.value.name == "matplotlib"
    assert caught.value.extra == "cli"
    assert isinstance(caught.value, ModuleNotFoundError)


def test_require_does_not_blame_the_extra_for_a_broken_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """numba present but its llvmlite missing is a broken install, not a missing extra."""

    def broken(name: str) -> None:
        raise ModuleNotFoundError("No module named 'llvmlite'", name="llvmlite")

    monkeypatch.setattr(extras.importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError) as caught:
        require("numba", "a test")
    assert not isinstance(caught.value, MissingExtra)
    assert caught.value.name == "llvmlite"


def test_require_refuses_a_module_that_is_no_extra() -> None:
    with pytest.raises(ValueError, match="module = 'scipy' is not an optional dependency"):
        require("scipy", "a test")


def test_every_extra_named_exists_in_the_package_metadata() -> None:
    """EXTRAS (used in the messages) and pyproject.toml's extras stay in step."""
    tomllib = pytest.importorskip("tomllib")
    pyproject = Path(__file__).parents[1] / "pyproject.toml"
    if not pyproject.exists():
        pytest.skip("no source tree (installed package only)")
    declared = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    for module, extra in EXTRAS.items():
        assert extra in declared, (module, extra)
    assert declared["all"], "the [all] extra is empty"
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    assert [d.split(">")[0] for d in dependencies] == ["numpy"], dependencies
