"""regnet_tutorial.util.cli.run_main: the project's errors as one `error:` line, printed once, exit status 2."""

from __future__ import annotations

import pytest

from regnet_tutorial.train.loaders import CorruptImageError, DataError
from regnet_tutorial.train.recipe import ConfigError, load_config
from regnet_tutorial.util.cli import CliError, one_line, run_main


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
    assert run_main(lambda argv: argv, ["x"]) == ["x"]  # the function's result is returned


def test_an_error_re_raised_by_a_dataloader_worker_keeps_only_its_message():
    # What torch's DataLoader raises in the main process when a worker failed.
    worker = CorruptImageError(
        "Caught CorruptImageError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "data.py", line 136, in load_rgb_image\n'
        "regnet_tutorial.train.loaders.CorruptImageError: Cannot decode image /d/val/a/x.JPEG: truncated. Delete it.")
    assert one_line(worker) == "Cannot decode image /d/val/a/x.JPEG: truncated. Delete it."
    assert one_line(KeyError("a key")) == "a key"
    assert issubclass(CliError, Exception) and issubclass(ConfigError, ValueError)
