"""Running fastplace in a fresh interpreter, for tests of what happens at import time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fastplace


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment, plus ``extra``, with the same fastplace importable
    in the child as here (a source tree or the installed package, whichever it is)."""
    env = dict(os.environ, **extra)
    root = str(Path(fastplace.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def run_cli_without(
    blocked: list[str], argv: list[str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """``fastplace ARGV`` in a child where importing each of ``blocked`` fails, as when
    the package is installed without its extra; the child checks none got loaded."""
    code = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None  # import raises ImportError\n"
        "from fastplace.cli import main\n"
        f"status = main({argv!r})\n"
        f"loaded = [m for m in {blocked!r} if sys.modules.get(m) is not None]\n"
        "assert not loaded, loaded\n"
        "sys.exit(status)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=cwd,
        timeout=300,
    )
