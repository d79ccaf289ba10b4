"""The placement policy interface sits below both sim and optimizer: each of them can
be imported first, alone, in a fresh interpreter, and the old names still work."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "fastplace.optimizer.policy",
        "fastplace.sim.policies",
        "fastplace.placement_policy",
        "fastplace.optimizer.env",
        "fastplace.sim",
    ],
)
def test_each_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    code = (
        f"import {module}\n"
        "import fastplace.optimizer.policy as ro, fastplace.sim.policies as sim\n"
        "import fastplace.placement_policy as interface\n"
        "assert sim.Policy is interface.Policy is ro.Policy\n"
        "assert sim.PlacementContext is interface.PlacementContext\n"
        "assert issubclass(ro.RO, interface.Policy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_interface_module_imports_neither_sim_nor_optimizer() -> None:
    code = (
        "import sys, fastplace.placement_policy\n"
        "bad = [m for m in sys.modules if m.startswith(('fastplace.sim', 'fastplace.optimizer'))]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_no_optimizer_module_imports_the_sim_policies() -> None:
    import re
    from pathlib import Path

    import fastplace.optimizer

    package = Path(fastplace.optimizer.__file__).parent
    statement = re.compile(
        r"^\s*(from fastplace\.sim\.policies |import fastplace\.sim\.policies)", re.M
    )
    offenders = [p.name for p in package.glob("*.py") if statement.search(p.read_text())]
    assert len(list(package.glob("*.py"))) > 5 and offenders == []
