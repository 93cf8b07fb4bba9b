"""The package's layers, read from the source (ast), not by importing it.

Lowest first: ``errors`` and ``util/``; the network and the paper's math (the model modules);
then ``weights/``, ``train/``, ``sweep/`` and ``figures/``. A module may import its own layer and
the ones below. The design math must also stay torch-free, which a fresh interpreter checks.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "regnet_tutorial"
MODEL_MODULES = ("design_space", "complexity", "blocks", "anynet", "models", "inference")
UPPER_FOLDERS = ("train", "weights", "sweep", "figures")
TORCH_FREE = ("regnet_tutorial.design_space", "regnet_tutorial.complexity", "regnet_tutorial.models",
              "regnet_tutorial.sweep.spaces", "regnet_tutorial.sweep.__main__")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports anywhere (top level or inside a function), absolute."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from . import x` names a module
    return found


def layer_imports(path: Path) -> set[str]:
    """The first two components (``regnet_tutorial.X``) of every package module ``path`` imports."""
    return {".".join(m.split(".")[:2]) for m in imported_modules(path) if m.startswith("regnet_tutorial.")}


def test_imports_are_read_with_relative_levels_resolved() -> None:
    # An independent check of the reader on a module whose imports are known.
    imports = imported_modules(PACKAGE / "sweep" / "run_command.py")
    assert {"regnet_tutorial.util.cli", "regnet_tutorial.sweep.plan", "regnet_tutorial.sweep.runner"} <= imports


@pytest.mark.parametrize("name", MODEL_MODULES)
def test_model_modules_import_nothing_from_the_layers_above(name: str) -> None:
    above = {f"regnet_tutorial.{folder}" for folder in UPPER_FOLDERS}
    assert not layer_imports(PACKAGE / f"{name}.py") & above


@pytest.mark.parametrize("path", sorted((PACKAGE / "util").glob("*.py")), ids=lambda p: p.name)
def test_util_imports_nothing_above_it(path: Path) -> None:
    allowed = {"regnet_tutorial.util", "regnet_tutorial.errors"}
    assert layer_imports(path) <= allowed, f"{path.name} imports {sorted(layer_imports(path) - allowed)}"


def test_errors_is_the_bottom() -> None:
    assert layer_imports(PACKAGE / "errors.py") == set()


def test_the_design_math_imports_no_torch() -> None:
    code = f"import sys, {', '.join(TORCH_FREE)}; print([m for m in ('torch', 'torchvision') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "[]"


def test_no_two_modules_share_a_stem() -> None:
    stems = [p.stem for p in PACKAGE.rglob("*.py") if not p.name.startswith("__")]
    assert len(stems) == len(set(stems)), sorted(s for s in stems if stems.count(s) > 1)
    for family in ("checkpoint", "data", "plot"):  # the names that once collided or misled
        assert len([s for s in stems if family in s]) <= 1, [s for s in stems if family in s]
