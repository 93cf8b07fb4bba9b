"""One-line errors for the scripts' entry points (``scripts/train.py``, ``scripts/evaluate.py``).

A script defines its work as a function that raises the project's own exceptions (bad config,
bad data, bad checkpoint, an output folder in use, ...) and hands it to :func:`run_main` in its
``main``::

    def train(argv=None):          # raises ConfigError, DataError, ... ; the notebook calls this
        ...

    def main(argv=None):           # what `python scripts/train.py` / `accelerate launch` run
        return run_main(train, argv)

:func:`run_main` turns any of :func:`project_errors` into a single line ``error: <message>`` on
stderr, printed by the main process only (``RANK`` 0, or a run without a launcher), and exits
with status 2 on every process: no traceback, and no copy per process. Other exceptions are
bugs and keep their traceback. Under ``accelerate launch`` with several processes the launcher
(torch.distributed.elastic) still adds its own report of the failed workers, which a worker
cannot silence; it names exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

EXIT_USAGE = 2
"""The exit status of a run stopped by bad input (what argparse uses for a bad command line)."""

T = TypeVar("T")


class CliError(RuntimeError):
    """A problem with how a script was invoked that no other module owns (e.g. an output folder
    that cannot be written or is locked by another run); the message says what to do."""


def project_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean bad input (not a bug): each one's message names the problem
    and the fix, so :func:`run_main` prints the message alone."""
    from .checkpoint_io import CheckpointFormatError
    from .checkpointing import ResumeError
    from .convert import CheckpointMismatchError
    from .data import DataError
    from .recipe import ConfigError

    return (CliError, ConfigError, DataError, ResumeError, CheckpointFormatError, CheckpointMismatchError)


def is_main_process() -> bool:
    """Whether this process is the one that reports errors: global rank 0 under a launcher
    (``RANK``, set by torchrun / ``accelerate launch``), else the only process. Works before
    (and without) any ``Accelerator``, so errors raised while building one are reported too."""
    return os.environ.get("RANK", "0").strip() in ("", "0")


def one_line(error: BaseException) -> str:
    """``error``'s message on one line (newlines and runs of spaces collapsed)."""
    text = str(error)
    if isinstance(error, KeyError) and len(error.args) == 1:  # str(KeyError) adds quotes
        text = str(error.args[0])
    if "Original Traceback" in text:  # re-raised from a DataLoader worker: keep the original message
        text = text.strip().splitlines()[-1].split(": ", 1)[-1]
    return " ".join(text.split()) or type(error).__name__


def run_main(
    func: Callable[[Sequence[str] | None], T],
    argv: Sequence[str] | None = None,
    errors: tuple[type[BaseException], ...] | None = None,
) -> T:
    """``func(argv)``; a project error (``errors``, default :func:`project_errors`) becomes
    ``error: <message>`` on stderr (main process only) and ``SystemExit(2)``.

    A ``KeyboardInterrupt`` exits with status 130 and a one-line note instead of a traceback.
    """
    caught = project_errors() if errors is None else errors
    try:
        return func(argv)
    except caught as err:
        if is_main_process():
            print(f"error: {one_line(err)}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        if is_main_process():
            print("interrupted", file=sys.stderr, flush=True)
        raise SystemExit(130) from None


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type`` accepting integers >= ``minimum``; argparse names the flag on error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= {minimum}.")
        return value

    return parse
