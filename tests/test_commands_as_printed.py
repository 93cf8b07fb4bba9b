"""Every shell command of the README and of chapter 05's exercises works as printed, from a fresh
folder after `make install`: in a shell whose PATH has no `.venv/bin` (nothing activated), each
command is run as printed, with tiny sizes appended where the real one trains for long, or with
`--help` (every flag it uses must be listed) where it would run for hours or serve forever."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from _train_helpers import REPO, cpu_env

from regnet_tutorial.sweep.images import FASHION_MNIST_DIR

README = REPO / "README.md"
CHAPTER_05 = REPO / "notebooks" / "05_training_with_accelerate.ipynb"
VENV = Path(sys.executable).parent.parent
SETUP = ("git clone ", "make ", "conda ")  # how to get the environment, run by CI (`make test`) itself
ACTIVATES = ("source .venv/bin/activate", "conda activate ")

needs_fashion_mnist = pytest.mark.skipif(not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists(),
                                         reason="needs the Debian package dataset-fashion-mnist")

TINY_TRAINING = "epochs=2 max_steps_per_epoch=2 precise_bn_samples=0"
HOW = {  # command prefix -> ("run", what to append) or ("help", the part before the flags)
    ".venv/bin/python -m http.server": ("help", ".venv/bin/python -m http.server"),
    ".venv/bin/jupyter lab": ("help", ".venv/bin/jupyter lab"),
    ".venv/bin/python -m regnet_tutorial.sweep sample": ("run", ""),
    ".venv/bin/python -m regnet_tutorial.sweep describe": ("run", ""),
    "OMP_NUM_THREADS=1 .venv/bin/python -m regnet_tutorial.sweep rerun": ("run", ""),  # one committed line, ~25 s
    ".venv/bin/python -m regnet_tutorial.weights zoo": ("run", ""),
    ".venv/bin/python -m regnet_tutorial.weights list": ("run", ""),
    ".venv/bin/python -m regnet_tutorial.weights reproduce": (
        "help", ".venv/bin/python -m regnet_tutorial.weights reproduce"),
    ".venv/bin/python -m regnet_tutorial.train schedule": ("run", ""),
    "OMP_NUM_THREADS=1 .venv/bin/python -m regnet_tutorial.sweep run": (
        "run", "--spaces anynetx_a --n 1 --train-images 64 --val-images 32 --precise-bn-images 32 --batch-size 32"),
    ".venv/bin/accelerate launch --multi_gpu --num_processes 8 -m regnet_tutorial.sweep run": (
        "help", ".venv/bin/python -m regnet_tutorial.sweep run"),
    ".venv/bin/python -m benchmarks.speed all": ("help", ".venv/bin/python -m benchmarks.speed all"),
    ".venv/bin/python -m benchmarks.speed compare": ("help", ".venv/bin/python -m benchmarks.speed compare"),
    ".venv/bin/accelerate launch -q scripts/train.py": ("run", ""),  # --data /path/to/imagenet: its one line
    ".venv/bin/python -m regnet_tutorial.train fashion-mnist": ("run", ""),
    ".venv/bin/accelerate launch -q --cpu scripts/train.py": ("run", TINY_TRAINING),
    "ACCELERATE_USE_CPU=1 .venv/bin/accelerate launch -q --multi_gpu --num_processes 2 scripts/train.py": (
        "run", TINY_TRAINING),
    "ACCELERATE_USE_CPU=1 OMP_NUM_THREADS=1 .venv/bin/accelerate launch -q --multi_gpu --num_processes 2 "
    "scripts/train.py": ("run", TINY_TRAINING),
}


def shell_commands(markdown: str) -> list[list[str]]:
    """The ```bash blocks of ``markdown`` (also indented in a list item), each a list of commands with
    continuation lines joined and comments dropped."""
    blocks = re.findall(r"^( *)```bash\n(.*?)^\1```", markdown, re.M | re.S)
    commands = []
    for indent, body in blocks:
        text = "\n".join(line[len(indent):] for line in body.splitlines()).replace("\\\n", " ")
        lines = [re.sub(r"(^|\s)#.*$", "", line).strip() for line in text.splitlines()]
        commands.append([" ".join(line.split()) for line in lines if line])
    return commands


def readme_blocks() -> list[list[str]]:
    return shell_commands(README.read_text())


def chapter_05_exercise_blocks() -> list[list[str]]:
    cells = nbformat.read(CHAPTER_05, as_version=4).cells
    exercises = next(c.source for c in cells if c.cell_type == "markdown" and c.source.startswith("## Exercises"))
    return shell_commands(exercises)


def rule(command: str) -> tuple[str, str]:
    matches = [prefix for prefix in HOW if command.startswith(prefix)]
    assert matches, f"a new command needs a rule in HOW (run it, or check it with --help): {command}"
    return HOW[max(matches, key=len)]


@pytest.mark.parametrize("blocks", [readme_blocks, chapter_05_exercise_blocks], ids=["README", "chapter 05"])
def test_every_command_calls_the_projects_environment(blocks):
    """`python`, `accelerate` and `jupyter` exist only in `.venv/bin` after `make install`: a command
    calls them there, or comes after a line that activates an environment."""
    found = blocks()
    assert found
    for block in found:
        active = False
        for command in block:
            active = active or command.startswith(ACTIVATES)
            program = next(word for word in shlex.split(command) if "=" not in word)
            assert active or command.startswith(SETUP) or program.startswith(".venv/bin/"), command
            if not command.startswith(SETUP) and not active:
                rule(command)


def readme_inline_commands() -> list[str]:
    """Commands quoted in the README's text (not names such as `python -m regnet_tutorial.{sweep,train}`)."""
    found = re.findall(r"`((?:\.venv/bin/)?python -m [^`{]+)`", README.read_text())
    return [c for c in found if not c.endswith("...")]


def test_inline_commands_of_the_readme_call_the_projects_environment():
    inline = readme_inline_commands()
    assert inline and all(c.startswith(".venv/bin/") for c in inline), inline
    for command in inline:
        rule(command)


@pytest.fixture()
def fresh(tmp_path):
    """A folder that looks like a fresh clone after `make install`: the repository's files (linked)
    and `.venv`, with nothing written by an earlier command."""
    for entry in REPO.iterdir():
        if entry.name not in (".git", ".venv", "data", "runs") and not entry.name.startswith("results.jsonl"):
            (tmp_path / entry.name).symlink_to(entry)
    (tmp_path / ".venv").symlink_to(VENV)
    return tmp_path


def shell(command: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = cpu_env()
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"  # a new shell: nothing activated
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "VIRTUAL_ENV"):
        env.pop(name, None)  # what the command itself sets is what counts
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def run_as_printed(command: str, cwd: Path) -> subprocess.CompletedProcess:
    how, extra = rule(command)
    if how == "help":
        result = shell(f"{extra} --help", cwd, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        flags = re.findall(r"(?<!\S)(--[a-z][\w-]*)", command.removeprefix(extra) if command.startswith(extra) else
                           command.split(" -m ", 1)[-1])
        missing = [f for f in flags if f not in result.stdout and f.replace("_", "-") not in result.stdout
                   and f not in ("--multi_gpu", "--num_processes")]
        assert not missing, (command, missing)
        return result
    return shell(f"{command} {extra}".strip(), cwd)


@pytest.mark.slow
def test_the_readmes_short_commands_run_as_printed(fresh):
    """Every README command but the setup (`git clone`, `make`, conda: CI runs `make test` itself)."""
    commands = [c for block in readme_blocks() for c in block if not c.startswith(SETUP)] + readme_inline_commands()
    commands = [c for c in commands if not c.startswith(("python ", "pip "))]  # the conda block's, once activated
    ran = []
    for command in commands:
        needs_data = "fashion" in command or "sweep run" in command and "accelerate" not in command
        if needs_data and not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
            continue
        result = run_as_printed(command, fresh)
        ran.append(command)
        if "--data /path/to/imagenet" in command:  # as printed on a machine without ImageNet: its one line
            errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("error:")]
            assert errors == ["error: Data folder /path/to/imagenet does not exist. " + errors[0].split(
                "does not exist. ", 1)[1]], result.stderr[-3000:]
            assert "Traceback" not in result.stderr and "fashion-mnist --out data/fashion_mnist" in errors[0]
            continue
        assert result.returncode == 0, (command, result.stderr[-3000:])
    assert any("sweep sample" in c for c in ran) and any("scripts/train.py" in c for c in ran)
    if (fresh / "results.jsonl").exists():
        line = json.loads((fresh / "results.jsonl").read_text().splitlines()[0])
        assert line["torch_threads"] == 1  # the README's OMP_NUM_THREADS=1 reached the sweep
    if (fresh / "runs" / "fashion_mnist").exists():
        assert json.loads((fresh / "runs" / "fashion_mnist" / "final.json").read_text())["history"]


@pytest.mark.slow
@needs_fashion_mnist
def test_chapter_05_exercise_3_runs_as_printed(fresh):
    """The data command, then the two-process launch, with tiny sizes appended; it prints the total
    batch and learning rate the exercise's solution gives, and run.json records two processes."""
    (data_command, launch), = chapter_05_exercise_blocks()
    written = run_as_printed(data_command, fresh)
    assert written.returncode == 0, written.stderr[-3000:]
    trained = run_as_printed(launch, fresh)
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-3000:]
    assert "total batch   64 = 32 per process x 2 process(es)" in trained.stdout
    assert "learning rate 0.2 = 0.4 x 64 / 128" in trained.stdout
    run = json.loads((fresh / "runs" / "fm2" / "run.json").read_text())
    assert run["num_processes"] == 2 and run["device"].startswith("cpu")
