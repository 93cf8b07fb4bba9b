"""Project hygiene: every install route installs the lock, notebooks stored executed, CI runs the README command."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "book").glob("*.ipynb"))


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_installs_the_lock() -> None:
    """The conda route gets the same environment as `make install`: conda provides only Python and
    pip, and pip installs requirements.lock with its hashes checked."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    project = _pyproject()["project"]
    assert "conda-forge" in env["channels"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(re.split(r"[=<>]", d)[0] for d in conda) == ["pip", "python"]
    python = next(d for d in conda if d.startswith("python"))
    assert python.split("=")[1] == "3.11"
    assert re.match(r">=3\.11(,<3\.12)?$", project["requires-python"])
    assert pip == ["--require-hashes", "-r requirements.lock"] and (ROOT / "requirements.lock").is_file()
    assert "pip install --no-deps --no-build-isolation -e ." in (ROOT / "environment.yml").read_text()


def test_make_install_installs_exactly_the_lock() -> None:
    """`make install` (and so `make test` and `make book`) installs the lock, hash-checked and without
    resolving anything, reinstalls when the lock changes, and `make lock` rewrites that same file."""
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^LOCK := requirements\.lock$", makefile, re.M)
    stamp = re.search(r"^\$\(STAMP\): (.*)\n((?:\t.*\n)+)", makefile, re.M)
    assert "$(LOCK)" in stamp.group(1).split()
    pip_lines = [line.strip() for line in stamp.group(2).splitlines() if "pip install" in line]
    assert pip_lines == ["$(BIN)/python -m pip install --require-hashes --no-deps -r $(LOCK)",
                         "$(BIN)/python -m pip install --no-deps --no-build-isolation -e ."]
    for target in ("test", "book"):
        assert re.search(rf"^{target}: \$\(STAMP\)$", makefile, re.M)
    compile_rule = re.search(r"^LOCK_COMPILE = ((?:.*\\\n)*.*)", makefile, re.M).group(1)
    assert "--generate-hashes" in compile_rule and "--output-file $(LOCK)" in compile_rule
    assert "--extra dev --extra book" in compile_rule and "--python-version 3.11" in compile_rule
    assert re.search(r"^lock: \$\(STAMP\)\n\t\$\(LOCK_COMPILE\)$", makefile, re.M)


def test_dependencies_are_ranges_not_pins() -> None:
    project = _pyproject()["project"]
    deps = project["dependencies"] + [d for ds in project["optional-dependencies"].values() for d in ds]
    pinned = [d for d in deps if "==" in d]
    assert not pinned, f"pin-free ranges keep installs working across machines: {pinned}"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make book" in readme
    assert re.search(r"^make test$", ci, re.M)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_executed_in_order(path: Path) -> None:
    """nbval compares nothing for a cell saved without outputs: every code cell must have run,
    top to bottom in one fresh kernel (execution counts 1, 2, 3, ...)."""
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    assert code, f"{path.name} has no code"
    counts = [c.get("execution_count") for c in code]
    assert None not in counts, f"{path.name}: {counts.count(None)} code cells never executed"
    assert counts == list(range(1, len(code) + 1)), f"{path.name}: not run top to bottom: {counts}"
    assert sum(bool(c["outputs"]) for c in code) >= len(code) // 2, f"{path.name}: outputs stripped?"


def test_make_test_runs_ruff_first() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("test", "test-fast"):
        recipe = re.search(rf"^{target}: \$\(STAMP\)\n((?:\t.*\n)+)", makefile, re.M)
        assert recipe, f"no {target} recipe"
        assert recipe.group(1).splitlines()[0].strip() == "$(BIN)/ruff check .", f"{target} must lint first"
    lint = _pyproject()["tool"]["ruff"]["lint"]
    assert {"F", "I"} <= set(lint["select"])  # pyflakes and import order at least
    assert any(d.startswith("ruff") for d in _pyproject()["project"]["optional-dependencies"]["dev"])


FIRST_CELL = """from regnet_tutorial.util.env import environment_report, seed_everything

SEED = seed_everything(0)
print(environment_report(SEED))"""


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_chapter_opens_with_one_idiom_and_edits_no_import_path(path: Path) -> None:
    nb = json.loads(path.read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    first = code[0]
    assert first == FIRST_CELL or first.startswith(FIRST_CELL + "\n\nFULL_RUN = "), first
    assert not [c for c in code if "sys.path" in c], "import the package (and benchmarks) as installed"
    assert not [c for c in code if "import matplotlib.pyplot" in c], "draw through regnet_tutorial.figures"
