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
    if "image" in namespace:
        assert namespace["image"].shape == (4, 224, 224, 3)
        assert namespace["mask"].float().mean() > 0.05


def _table_names() -> list[str]:
    """Every ``fl.NAME`` in the first column of the README's "What is inside" table."""
    section = README.split("## What is inside", 1)[1].split("\n## ", 1)[0]
    names = []
    for line in section.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            names += re.findall(r"`fl\.([A-Za-z_][A-Za-z0-9_]*)`", first)
    return names


def test_readme_table_lists_every_public_name_once():
    import facelab as fl

    names = _table_names()
    public = set(fl.__all__) - {"__version__"} | set(fl._LAZY)
    repeated = sorted({n for n in names if names.count(n) > 1})
    assert not repeated, f"listed more than once: {repeated}"
    assert set(names) == public, (f"missing from the table: {sorted(public - set(names))}; "
                                  f"not public: {sorted(set(names) - public)}")
