"""The locked environment: requirements.lock agrees with pyproject.toml's ranges, pins every package
with PyPI's hashes, is what this interpreter runs, and the environment report says when it is not."""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from regnet_tutorial.util import env

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
# The versions the issue names as the ones a reader sees printed (environment reports, run.json).
KEY_PACKAGES = ("torch", "torchvision", "accelerate", "torchmetrics", "nbval", "jupyter-book", "numpy",
                "matplotlib", "safetensors")
# The platform the lock is resolved for (the Makefile's --python-version and --python-platform).
LOCK_MARKERS = {**default_environment(), "python_version": "3.11", "python_full_version": "3.11.7",
                "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
                "os_name": "posix", "implementation_name": "cpython", "platform_python_implementation": "CPython"}


def lock_disagreements(project: dict, pins: dict[str, str]) -> list[str]:
    """Where a lock's pins disagree with a ``[project]`` table: every dependency, of the package and
    of each extra, that the lock's platform needs must be pinned, at a version inside its range."""
    wanted = [(req, "") for req in project["dependencies"]]
    wanted += [(req, extra) for extra, reqs in project.get("optional-dependencies", {}).items() for req in reqs]
    problems = []
    for text, extra in wanted:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({**LOCK_MARKERS, "extra": extra}):
            continue
        name = canonicalize_name(req.name)
        where = f"[{extra}] " if extra else ""
        if name not in pins:
            problems.append(f"{where}{text}: missing from the lock")
        elif not req.specifier.contains(Version(pins[name]), prereleases=True):
            problems.append(f"{where}{text}: the lock pins {pins[name]}")
    return problems


def pinned_blocks(text: str) -> dict[str, list[str]]:
    """Each pin of a requirements-format lock with the sha256 hashes listed under it."""
    blocks: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        pin = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
        if pin:
            current = blocks.setdefault(canonicalize_name(pin.group(1)), [])
        elif line.strip().startswith("#") or not line.strip():
            continue
        elif current is not None:
            current += re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
    return blocks


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


# --- the lock and pyproject.toml ----------------------------------------------------------------

def test_lock_agrees_with_pyproject() -> None:
    problems = lock_disagreements(_project(), env.locked_versions(LOCK))
    assert not problems, "requirements.lock has drifted from pyproject.toml (run `make lock`): " + "; ".join(problems)


def test_drift_check_catches_a_dependency_missing_from_the_lock(tmp_path) -> None:
    """A doctored copy of the lock without timm (dev extra), jupyter-book (book extra) and
    safetensors (the package's own) fails the check, naming each."""
    text = LOCK.read_text()
    for name in ("timm", "jupyter-book", "safetensors"):
        text = re.sub(rf"^{name}==.*\n(    .*\n)*", "", text, flags=re.M)
    doctored = tmp_path / "requirements.lock"
    doctored.write_text(text)
    problems = lock_disagreements(_project(), env.locked_versions(doctored))
    assert len(problems) == 3
    assert any(p.startswith("[dev] timm") and "missing" in p for p in problems)
    assert any(p.startswith("[book] jupyter-book") and "missing" in p for p in problems)
    assert any(p.startswith("safetensors") and "missing" in p for p in problems)


def test_drift_check_catches_a_pin_outside_a_range(tmp_path) -> None:
    """Ranges raised past the pins in a doctored pyproject.toml, and a pin moved past a range's
    upper bound in a doctored lock: each is named with the pinned version."""
    project = _project()
    pins = env.locked_versions(LOCK)
    raised = Version(pins["accelerate"]).major + 1
    project["dependencies"] = [f"accelerate>={raised}" if d.startswith("accelerate") else d
                               for d in project["dependencies"]]
    assert lock_disagreements(project, pins) == [f"accelerate>={raised}: the lock pins {pins['accelerate']}"]

    doctored = tmp_path / "requirements.lock"
    doctored.write_text(re.sub(r"^jupyter-book==\S+", "jupyter-book==2.0.0", LOCK.read_text(), flags=re.M))
    problems = lock_disagreements(_project(), env.locked_versions(doctored))
    assert problems == ["[book] jupyter-book>=1.0.4,<2: the lock pins 2.0.0"]


def test_drift_check_skips_what_the_lock_platform_does_not_install() -> None:
    project = {"dependencies": ["pywin32>=300; sys_platform == 'win32'", "torch>=2.4"]}
    assert lock_disagreements(project, {"torch": "2.14.1"}) == []
    assert lock_disagreements(project, {}) == ["torch>=2.4: missing from the lock"]


def test_every_pin_has_a_hash_and_nothing_is_unpinned() -> None:
    """`pip install --require-hashes` refuses a package without a hash, and a line that is not
    `name==version` would let pip choose the version."""
    text = LOCK.read_text()
    blocks = pinned_blocks(text)
    assert set(blocks) == set(env.locked_versions(LOCK)) and len(blocks) > 100
    assert [name for name, hashes in blocks.items() if not hashes] == []
    requirement_lines = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert all(re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*==\S+ \\$", line) for line in requirement_lines)
    assert not re.search(r"^\s*(-e|--index-url|--extra-index-url|--find-links|-f)\b", text, re.M)


def test_lock_hashes_admit_this_machine_local_wheels() -> None:
    """Where pip here takes torch and torchvision from local indexes (file:// in pip's config), those
    wheels must be PyPI's bytes: their hashes are in the lock, which also installs elsewhere."""
    local = [p for d in ("/opt/pypi-more/files", "/opt/pypi/files", "/opt/wheels") for p in Path(d).glob("*.whl")]
    blocks, pins = pinned_blocks(LOCK.read_text()), env.locked_versions(LOCK)
    matching = [p for p in local if canonicalize_name(p.name.split("-")[0]) in pins
                and p.name.split("-")[1] == pins[canonicalize_name(p.name.split("-")[0])]
                and "cp311" in p.name and "x86_64" in p.name]
    if not matching:
        pytest.skip("no local wheel of a locked version on this machine: pip takes everything from PyPI")
    for wheel in matching:
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        assert digest in blocks[canonicalize_name(wheel.name.split("-")[0])], wheel.name


# --- the installed environment ------------------------------------------------------------------

def test_installed_versions_are_the_locked_ones() -> None:
    """`make install` gives exactly the lock: the versions the chapters print, and every other
    installed package the lock pins. Fails in an environment not made from the lock."""
    pins = env.locked_versions(LOCK)
    installed = {name: importlib.metadata.version(name) for name in KEY_PACKAGES}
    assert installed == {name: pins[name] for name in KEY_PACKAGES}
    assert env.lock_differences(pins, env.installed_versions()) == {}


def test_environment_report_says_the_environment_is_as_locked() -> None:
    report = env.environment_report(0).splitlines()
    pins = env.locked_versions(LOCK)
    assert report[0] == "Python 3.11"
    for name in env.REPORTED_PACKAGES:  # exact versions: the lock keeps them stable across machines
        assert f"{name:<13}{pins[name]}" in report
    assert report[-2:] == ["environment  as locked in requirements.lock", "seed         0"]


def test_environment_report_names_what_differs_in_one_line(tmp_path) -> None:
    """Against a doctored lock whose accelerate and numpy pins are older, the one line names both
    with the installed (importlib.metadata) and the locked version; nothing else differs."""
    doctored = tmp_path / "requirements.lock"
    text = re.sub(r"^accelerate==\S+", "accelerate==1.0.0", LOCK.read_text(), flags=re.M)
    doctored.write_text(re.sub(r"^numpy==\S+", "numpy==1.26.0", text, flags=re.M))
    line = env.lock_report_line(doctored)
    assert "\n" not in line
    accelerate, numpy = importlib.metadata.version("accelerate"), importlib.metadata.version("numpy")
    assert line == ("environment  differs from requirements.lock, so numbers may differ from the book's: "
                    f"accelerate {accelerate} (locked 1.0.0), numpy {numpy} (locked 1.26.0)")


def test_environment_report_counts_what_it_does_not_name(tmp_path) -> None:
    """Ten packages pinned at 0.0.1 in a doctored lock: the line names eight, then counts two."""
    installed = env.installed_versions()
    pins = env.locked_versions(LOCK)
    changed = sorted(name for name in pins if name in installed)[:10]
    text = LOCK.read_text()
    for name in changed:
        text = re.sub(rf"^{name}==\S+", f"{name}==0.0.1", text, flags=re.M | re.I)
    doctored = tmp_path / "requirements.lock"
    doctored.write_text(text)
    line = env.lock_report_line(doctored)
    assert line.endswith(f"{changed[7]} {installed[changed[7]]} (locked 0.0.1) and 2 more")
    assert line.count("(locked 0.0.1)") == 8


def test_lock_differences_ignore_what_is_not_installed_or_not_locked() -> None:
    locked = {**{f"p{i}": "1.0" for i in range(3)}, "absent": "1.0", "same": "1.0"}
    installed = {**{f"p{i}": "2.0" for i in range(3)}, "same": "1.0", "unlocked": "3.0"}
    assert env.lock_differences(locked, installed) == {f"p{i}": "2.0 (locked 1.0)" for i in range(3)}


def test_lock_status_records_the_lock_files_hash() -> None:
    status = env.lock_status()
    assert status["lock_sha256"] == hashlib.sha256(LOCK.read_bytes()).hexdigest()
    assert status["lock_differs"] == env.lock_differences(env.locked_versions(LOCK), env.installed_versions())
