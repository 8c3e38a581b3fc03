"""The README's Python snippets run as written."""

import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_has_snippets():
    assert SNIPPETS


@pytest.mark.parametrize("code", SNIPPETS, ids=[f"snippet{i}" for i in range(len(SNIPPETS))])
def test_readme_snippet_runs(code):
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    if "out" in namespace:
        assert namespace["out"].image.shape == (4, 224, 224, 3)
