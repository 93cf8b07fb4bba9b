"""The command lines' conventions (regnet_tutorial.util.cli): every project error derives from one
root and is printed as one `error:` line, once, with exit status 2; flags are --kebab-case with the
--snake_case spelling accepted."""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import runpy
import sys

import pytest
from conftest import ROOT

import regnet_tutorial
from benchmarks import sampling, speed
from regnet_tutorial.errors import RegNetTutorialError, UsageError
from regnet_tutorial.sweep.__main__ import main as sweep_main
from regnet_tutorial.train.__main__ import main as train_main
from regnet_tutorial.train.loaders import CorruptImageError, DataError
from regnet_tutorial.train.recipe import ConfigError, load_config
from regnet_tutorial.util.cli import ArgumentParser, CliError, kebab_case, one_line, run_main
from regnet_tutorial.util.export import main as export_main
from regnet_tutorial.weights.__main__ import main as weights_main


def _script(name: str):
    return runpy.run_path(str(ROOT / "scripts" / f"{name}.py"))["main"]


# (command line, its main, argv, a word the message must contain). Each CLI gets a bad command line
# (caught by argparse) and bad input found later by the package (a project error).
CASES = [
    ("sweep sample", sweep_main, ["sample", "--space", "anynetx_z", "--n", "1"], "anynetx_z"),
    ("sweep sample", sweep_main, ["sample", "--space", "regnetx", "--n", "0"], "--n"),
    ("sweep run", sweep_main, ["run", "--spaces", "regnetx", "--n", "1", "--out", "x.jsonl", "--batch-size", "5000"],
     "--batch-size 5000"),
    ("weights zoo", weights_main, ["zoo", "--resolution", "0"], "--resolution"),
    ("weights", weights_main, ["download"], "invalid choice"),
    ("train schedule", train_main, ["schedule", "--steps-per-epoch", "2", "--set", "lr=1"], "lr"),
    ("train synthetic", train_main, ["synthetic", "out", "--num-classes", "1"], "--num-classes"),
    ("util.export", export_main, ["--root", "/nonexistent"], "/nonexistent"),
    ("scripts/train.py", "train", ["--config", "configs/no_such_model.yaml"], "no_such_model"),
    ("scripts/train.py", "train", ["--config", "configs/regnetx_400mf.yaml", "--progress_every", "-1"],
     "--progress-every"),
    ("scripts/evaluate.py", "evaluate", ["--checkpoint", "x", "--data", "y", "--batch_size", "0"], "--batch-size"),
    ("benchmarks.speed", speed.main, ["compare", "--models", "regnetx_999mf"], "regnetx_999mf"),
    ("benchmarks/sampling.py", sampling.main, ["--n", "0"], "--n"),
]


@pytest.mark.parametrize(("name", "main", "argv", "word"), CASES, ids=[f"{c[0]}:{c[2][0]}" for c in CASES])
def test_every_cli_error_is_one_line_and_exit_status_2(name, main, argv, word, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.chdir(tmp_path if name.startswith(("sweep run", "train synthetic")) else ROOT)
    entry = _script(main) if isinstance(main, str) else main
    with pytest.raises(SystemExit) as exit_info:
        entry(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and word in lines[0], captured.err
    assert not list(tmp_path.iterdir()), "bad input must stop the command before it writes anything"


def _project_modules():
    names = [m.name for m in pkgutil.walk_packages(regnet_tutorial.__path__, "regnet_tutorial.")]
    return [importlib.import_module(n) for n in names]


def test_every_project_error_class_derives_from_the_root():
    classes = {
        obj for module in _project_modules() for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__.startswith("regnet_tutorial.")
    }
    assert len(classes) >= 15  # the package's own error classes were found
    assert [c.__name__ for c in classes if not issubclass(c, RegNetTutorialError)] == []


def test_errors_keep_the_builtin_bases_callers_catch():
    assert issubclass(ConfigError, ValueError) and issubclass(DataError, ValueError)
    assert issubclass(CorruptImageError, OSError) and issubclass(CliError, RuntimeError)
    from regnet_tutorial.models import UnknownModelError, get_card
    with pytest.raises(KeyError, match="regnetz_1gf"):  # dict-style look-ups keep working
        get_card("regnetz_1gf")
    assert issubclass(UnknownModelError, RegNetTutorialError)


def test_a_project_error_is_one_line_and_exit_status_2(capsys, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda argv: load_config(None, argv), ["lr=0.1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: Unknown config key 'lr'")
    assert "Traceback" not in err


def test_only_rank_0_prints(capsys, monkeypatch):
    def fails(argv):
        raise DataError("Data folder /nope does not exist.\nPoint `data` at a folder.")

    monkeypatch.setenv("RANK", "1")
    with pytest.raises(SystemExit) as exit_info:
        run_main(fails)
    assert exit_info.value.code == 2 and capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(SystemExit):
        run_main(fails)
    assert capsys.readouterr().err == "error: Data folder /nope does not exist. Point `data` at a folder.\n"


def test_other_exceptions_are_bugs_and_keep_their_traceback():
    with pytest.raises(ZeroDivisionError):
        run_main(lambda argv: 1 / 0)
    with pytest.raises(ValueError, match="plain"):  # a builtin error outside the root is a bug too
        run_main(lambda argv: int("plain"))
    assert run_main(lambda argv: argv, ["x"]) == ["x"]  # the function's result is returned


def test_an_error_re_raised_by_a_dataloader_worker_keeps_only_its_message():
    # What torch's DataLoader raises in the main process when a worker failed.
    worker = CorruptImageError(
        "Caught CorruptImageError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "loaders.py", line 136, in load_rgb_image\n'
        "regnet_tutorial.train.loaders.CorruptImageError: Cannot decode image /d/val/a/x.JPEG: truncated. Delete it.")
    assert one_line(worker) == "Cannot decode image /d/val/a/x.JPEG: truncated. Delete it."
    assert one_line(KeyError("a key")) == "a key"


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="demo")
    parser.add_argument("--output-dir")
    parser.add_argument("--check-data", action="store_true")
    parser.add_argument("values", nargs="*")
    return parser


def test_snake_case_flags_are_read_as_their_kebab_case_spelling():
    assert kebab_case("--output_dir=a_b") == "--output-dir=a_b" and kebab_case("a_b") == "a_b"
    for argv in (["--output-dir", "o_1"], ["--output_dir", "o_1"], ["--output_dir=o_1"]):
        assert _parser().parse_args(argv).output_dir == "o_1"
    args = _parser().parse_args(["--check_data", "--", "--not_a_flag"])
    assert args.check_data and args.values == ["--not_a_flag"]  # after `--`, nothing is respelled
    with pytest.raises(UsageError, match="unrecognized arguments: --no_such_flag"):
        _parser().parse_args(["--no_such_flag"])


def test_flags_are_declared_in_kebab_case():
    with pytest.raises(ValueError, match="kebab-case"):
        ArgumentParser().add_argument("--output_dir")
    assert isinstance(ArgumentParser(), argparse.ArgumentParser)


def test_subcommands_read_the_snake_case_alias_too(capsys):
    argv = ["sample", "--space", "regnetx", "--n", "1", "--skeleton", "small", "--resolution", "28", "--stages", "3",
            "--flops", "1e6:50e6"]
    assert sweep_main([*argv, "--num-classes", "10", "--in-channels", "1"]) == 0
    kebab = capsys.readouterr().out
    assert sweep_main([*argv, "--num_classes", "10", "--in_channels=1"]) == 0
    assert capsys.readouterr().out == kebab and '"num_classes": 10' in kebab and '"in_channels": 1' in kebab


def test_a_closed_output_pipe_stops_a_command_quietly():
    """`sweep sample ... | head -1`: once the reader has gone, the command stops with the shell's
    SIGPIPE status (141) and no BrokenPipeError traceback."""
    import subprocess

    command = [sys.executable, "-m", "regnet_tutorial.sweep", "sample", "--space", "anynetx_a", "--n", "100000",
               "--resolution", "28", "--skeleton", "small", "--num-classes", "10", "--in-channels", "1",
               "--flops", "2e6:4e6"]
    p = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline().startswith(b'{"space": "anynetx_a"')
    p.stdout.close()  # what `head -1` does after its line
    _, err = p.communicate(timeout=120)
    assert (p.returncode, err.decode()) == (141, "")
