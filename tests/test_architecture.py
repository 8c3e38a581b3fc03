"""The shape of the package: layers run one way, and every public name means one thing.

Layers (DESIGN.md), lowest first; a module may import only from its own layer or lower ones,
and no core module (below ``methods``) imports ``facelab.methods``. Imports inside functions
count too: a lazy import upward is still a dependency upward.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import facelab as fl

PACKAGE = Path(fl.__file__).resolve().parent

LAYERS = [
    ("checks", ["facelab._checks", "facelab._threads"]),
    ("foundations", ["facelab.rotations", "facelab.kernel_sources", "facelab.kernel_launch",
                     "facelab.progress", "facelab.atomic_io", "facelab.numba_cache"]),
    ("geometry", ["facelab.cameras", "facelab.camera_objects", "facelab.mesh",
                  "facelab.lighting"]),
    ("ops", ["facelab.raster", "facelab.shading", "facelab.normals", "facelab.vertex_losses",
             "facelab.shaded_photometric", "facelab.texture"]),
    ("model", ["facelab.model"]),
    ("formation", ["facelab.face_params", "facelab.formation_cache", "facelab.formation"]),
    ("measures and io", ["facelab.losses", "facelab.metrics", "facelab.export",
                         "facelab.image_io", "facelab.figures"]),
    ("applications", ["facelab.data", "facelab.landmarks", "facelab.realism", "facelab.fitting",
                      "facelab.command_errors", "facelab.warmup"]),
    ("methods", ["facelab.methods", "facelab.methods.motion_prior"]),
    ("interfaces", ["facelab.widgets", "facelab.cli", "facelab.fit_cli", "facelab.annotate_cli",
                    "facelab"]),
]
METHODS_RANK = next(i for i, (name, _) in enumerate(LAYERS) if name == "methods")


def rank(module: str) -> int:
    """The layer of a module: its longest listed prefix decides ("facelab" itself, the package
    __init__, matches only exactly, so a new module must be placed in LAYERS)."""
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            inside = module.startswith(p + ".") and p != "facelab"
            if (module == p or inside) and len(p) > best_len:
                best, best_len = i, len(p)
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS"
    return best


def _modules() -> dict[str, Path]:
    out = {"facelab": PACKAGE / "__init__.py"}
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="facelab."):
        spec = importlib.util.find_spec(info.name)
        out[info.name] = Path(spec.origin)
    return out


def _imports(module: str, path: Path) -> set[str]:
    """The facelab modules ``module`` imports (``from facelab import x`` -> facelab.x)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "facelab")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "facelab":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.add(sub if importlib.util.find_spec(target) and _is_module(sub) else target)
    return found


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def test_layers_run_one_way():
    violations = []
    for module, path in _modules().items():
        r = rank(module)
        for target in _imports(module, path):
            if target == module or target.startswith(module + "."):
                continue  # a package importing its own submodules
            t = rank(target)
            if t > r:
                violations.append(f"{module} ({LAYERS[r][0]}) imports {target} ({LAYERS[t][0]})")
            elif r < METHODS_RANK and target.startswith("facelab.methods"):
                violations.append(f"core module {module} imports the method package {target}")
    assert not violations, "\n".join(sorted(violations))


def test_rule_catches_an_upward_import(tmp_path):
    """The checker itself bites: a formation-layer file importing a method is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from facelab.methods.mofa import decode\n")
    targets = _imports("facelab.formation", bad)
    assert "facelab.methods.mofa" in targets
    assert rank("facelab.methods.mofa") > rank("facelab.formation")
    with pytest.raises(AssertionError, match="belongs to no layer"):
        rank("facelab.a_new_module")


def test_public_names_are_unique_and_never_shadow_a_module():
    names = fl.__all__
    assert len(names) == len(set(names)), "fl.__all__ lists a name twice"
    for name in names:
        obj = getattr(fl, name)
        if _is_module(f"facelab.{name}"):
            assert obj is importlib.import_module(f"facelab.{name}"), (
                f"fl.{name} is {obj!r}, hiding the module facelab.{name}")


def test_one_implementation_per_public_op_name():
    """A name exported by two core modules must be the same object (a re-export)."""
    seen: dict[str, tuple[str, object]] = {}
    clashes = []
    for module in _modules():
        if rank(module) >= METHODS_RANK or module.endswith(("reference", "cpu", "cuda")):
            continue  # methods have their own vocabulary; op internals mirror each other
        mod = importlib.import_module(module)
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name)
            if name in seen and seen[name][1] is not obj:
                clashes.append(f"{name}: {seen[name][0]} and {module}")
            seen.setdefault(name, (module, obj))
    assert not clashes, "\n".join(clashes)


def test_lazy_exports_cover_all_and_resolve():
    """facelab/__init__ imports lazily: every public name is mapped and resolves."""
    mapped = set(fl._EXPORTS) | set(fl._SUBMODULES) | {"__version__"}
    assert mapped >= set(fl.__all__), sorted(set(fl.__all__) - mapped)
    for name in fl.__all__:
        assert getattr(fl, name) is not None


def test_importing_facelab_does_not_import_torch_or_numba():
    """``facelab --help`` stays fast: the package import pulls in neither."""
    import subprocess
    import sys

    code = ("import sys, facelab; print(sorted(m for m in ('torch', 'numba') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=PACKAGE.parent).stdout.strip()
    assert out == "[]"
