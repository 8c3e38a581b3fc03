"""Setup stays true: environment.yml mirrors pyproject, CI runs the README's test command."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch", "cupy": "cupy-cuda12x"}
NOT_PACKAGES = {"python", "pip"}


def _pyproject_requirements() -> dict[str, SpecifierSet]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in meta["dependencies"] + meta["optional-dependencies"]["dev"]]
    return {r.name.lower(): r.specifier for r in reqs}


def _conda_requirements() -> dict[str, SpecifierSet]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        if not isinstance(dep, str):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", dep)
        name, spec = m.group(1).lower(), m.group(2).strip()
        if name in NOT_PACKAGES:
            continue
        if spec.startswith("=") and not spec.startswith("=="):
            spec = "==" + spec[1:].split("=")[0]  # conda "=2.13.0=cpu_*" -> "==2.13.0"
        out[CONDA_NAMES.get(name, name)] = SpecifierSet(spec)
    return out


def test_environment_yml_names_the_same_packages():
    assert set(_conda_requirements()) == set(_pyproject_requirements())


@pytest.mark.parametrize("name", sorted(_pyproject_requirements()))
def test_environment_yml_versions_are_compatible(name):
    assert _conda_requirements()[name] == _pyproject_requirements()[name], name


def test_torch_is_pinned_to_the_cpu_build():
    assert str(_pyproject_requirements()["torch"]) == "==2.13.0"
    assert "cpu" in (ROOT / "environment.yml").read_text().split("pytorch=2.13.0=")[1].split()[0]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"^\s*(make \w+)\s*$", readme, flags=re.M)
    assert "make test" in commands and "make demo" in commands
    assert re.search(r"^make test$", ci, flags=re.M)
    assert "set -e" in ci
