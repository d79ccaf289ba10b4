"""The README's Python examples run as written (so they stay true)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_examples() -> None:
    assert BLOCKS, "README.md has no ```python blocks"


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if "prometheus_client" in BLOCKS[index]:
        pytest.importorskip("prometheus_client")  # the [metrics] extra (in [test] too)
    monkeypatch.chdir(tmp_path)  # examples may write files (out/, feedback.npz)
    namespace: dict[str, object] = {}
    exec(compile(BLOCKS[index], f"README.md python block {index}", "exec"), namespace)
