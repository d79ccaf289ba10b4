"""The Python examples of the README and docs/api.md run as written (so they stay true)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOCUMENTS = ("README.md", "docs/api.md")
BLOCKS = {
    document: re.findall(r"```python\n(.*?)```", (ROOT / document).read_text(), flags=re.DOTALL)
    for document in DOCUMENTS
}


@pytest.mark.parametrize("document", DOCUMENTS)
def test_readme_has_examples(document: str) -> None:
    assert BLOCKS[document], f"{document} has no ```python blocks"


@pytest.mark.parametrize(
    ("document", "index"),
    [(document, index) for document in DOCUMENTS for index in range(len(BLOCKS[document]))],
)
def test_readme_example_runs(
    document: str, index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "prometheus_client" in BLOCKS[document][index]:
        pytest.importorskip("prometheus_client")  # the [metrics] extra (in [test] too)
    monkeypatch.chdir(tmp_path)  # examples may write files (out/, feedback.npz)
    namespace: dict[str, object] = {}
    code = compile(BLOCKS[document][index], f"{document} python block {index}", "exec")
    exec(code, namespace)
