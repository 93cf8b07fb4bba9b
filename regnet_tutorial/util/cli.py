"""The command lines' shared conventions: one-line errors, argparse types and flag spellings.

A script defines its work as a function that raises the project's own exceptions (bad config,
bad data, bad checkpoint, an output folder in use, ...) and hands it to :func:`run_main` in its
``main``::

    def train(argv=None):          # raises ConfigError, DataError, ... ; the notebook calls this
        ...

    def main(argv=None):           # what `python scripts/train.py` / `accelerate launch` run
        return run_main(train, argv)

:func:`run_main` turns any :class:`~regnet_tutorial.errors.RegNetTutorialError` into a single
line ``error: <message>`` on stderr and exits with status 2 on every process: no traceback.
An error every process meets alike (a bad config, a missing folder) is printed once, by the main
process (``RANK`` 0, or a run without a launcher). An error about one process's own share of the
work (an image only that process read: the error's ``per_process`` attribute is true) is printed
by every process that meets it, prefixed with its rank: ``error: [rank 1] Cannot decode image
...``. The other processes then find their peer gone in the middle of a collective operation;
they stop quietly (exit status 1) instead of printing gloo's or NCCL's "Connection closed by
peer" traceback. Other exceptions are bugs and keep their traceback. Under ``accelerate launch``
with several processes the launcher (torch.distributed.elastic) still adds its own report of the
failed workers, which a worker cannot silence; it names exit code 2.

Every command line builds its parser with :class:`ArgumentParser`: a bad command line raises
:class:`~regnet_tutorial.errors.UsageError` (so it is one line under :func:`run_main` too), and
flags are spelled ``--kebab-case`` with the ``--snake_case`` spelling accepted as an alias, as
``accelerate launch`` does. Packages with several commands use :func:`run_subcommand`.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from ..errors import RegNetTutorialError, UsageError, check_int

EXIT_USAGE = 2
"""The exit status of a run stopped by bad input (what argparse uses for a bad command line)."""

EXIT_PEER_GONE = 1
"""The exit status of a process that stopped because another process of its launch failed."""

EXIT_PIPE_CLOSED = 128 + 13
"""The exit status of a command whose output pipe was closed by its reader (128 + SIGPIPE)."""

PEER_GONE_MESSAGES = (
    "connection closed by peer", "connection reset by peer", "broken pipe", "connection refused",
    "socket closed", "nccl communicator was aborted", "remote process exited",
)
"""Words of gloo's and NCCL's errors when another process of the group has exited."""

T = TypeVar("T")


class CliError(RegNetTutorialError, RuntimeError):
    """A problem with how a script was invoked that no other module owns (e.g. an output folder
    that cannot be written or is locked by another run); the message says what to do."""


def is_main_process() -> bool:
    """Whether this process is the one that reports errors: global rank 0 under a launcher
    (``RANK``, set by torchrun / ``accelerate launch``), else the only process. Works before
    (and without) any ``Accelerator``, so errors raised while building one are reported too."""
    return os.environ.get("RANK", "0").strip() in ("", "0")


def launched_processes() -> int:
    """How many processes the launcher says the run has (``WORLD_SIZE``, set by torchrun and
    ``accelerate launch``); 1 without a launcher."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1").strip() or 1))
    except ValueError:
        return 1


def check_process_count(seen: int) -> None:
    """Refuse a launch whose environment says several processes while Accelerate sees ``seen``.

    ``accelerate launch --multi_gpu --num_processes 2`` on a machine without a GPU (and without
    ``ACCELERATE_USE_CPU=1``) starts two processes that each see a one-process run: each would
    act as the main process and train alone into the same folder. Raises :class:`CliError`."""
    world = launched_processes()
    if world != seen:
        local = os.environ.get("LOCAL_WORLD_SIZE")
        raise CliError(
            f"The launcher started {world} processes (WORLD_SIZE={world}"
            + (f", LOCAL_WORLD_SIZE={local}" if local else "")
            + f") but Accelerate sees {seen}: without a GPU for each process they would not form one run, and "
            "each would train alone into the same folder. On CPUs, set ACCELERATE_USE_CPU=1 (e.g. "
            "`ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 ...`); on one device, "
            "launch without --multi_gpu and --num_processes."
        )


def process_rank() -> str:
    """This process's global rank under a launcher (``RANK``), ``"0"`` without one."""
    return os.environ.get("RANK", "0").strip() or "0"


def is_peer_gone(error: BaseException) -> bool:
    """Whether ``error`` is a collective operation failing because another process of a
    multi-process launch exited (which reports its own error)."""
    if launched_processes() < 2:
        return False
    names = {cls.__name__ for cls in type(error).__mro__}
    if not names & {"RuntimeError", "DistError", "DistBackendError", "DistNetworkError", "ConnectionError"}:
        return False
    text = str(error).lower()
    return any(message in text for message in PEER_GONE_MESSAGES)


def stdout_reader_gone() -> bool:
    """Whether standard output is a pipe whose reading end has been closed (``| head`` done)."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poll.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows) or no real stdout
        return False


def report(error: RegNetTutorialError) -> None:
    """Print ``error`` as one ``error:`` line on stderr: once, by the main process, for an error
    every process meets alike; by each process that meets it, with its rank, for a per-process one."""
    per_process = getattr(error, "per_process", False) and launched_processes() > 1
    if per_process:
        print(f"error: [rank {process_rank()}] {one_line(error)}", file=sys.stderr, flush=True)
    elif is_main_process():
        print(f"error: {one_line(error)}", file=sys.stderr, flush=True)


def one_line(error: BaseException) -> str:
    """``error``'s message on one line (newlines and runs of spaces collapsed)."""
    text = str(error)
    if isinstance(error, KeyError) and len(error.args) == 1:  # str(KeyError) adds quotes
        text = str(error.args[0])
    if "Original Traceback" in text:  # re-raised from a DataLoader worker: keep the original message
        text = text.strip().splitlines()[-1].split(": ", 1)[-1]
    return " ".join(text.split()) or type(error).__name__


def run_main(func: Callable[[Sequence[str] | None], T], argv: Sequence[str] | None = None) -> T:
    """``func(argv)``; a :class:`~regnet_tutorial.errors.RegNetTutorialError` becomes
    ``error: <message>`` on stderr (:func:`report`) and ``SystemExit(2)``.

    A ``KeyboardInterrupt`` exits with status 130 and a one-line note instead of a traceback; a
    process whose peer in a multi-process launch failed (:func:`is_peer_gone`) exits with status 1
    and prints nothing: the peer prints the error.
    """
    try:
        return func(argv)
    except RegNetTutorialError as err:
        report(err)
        raise SystemExit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        if is_main_process():
            print("interrupted", file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    except BrokenPipeError as err:
        if not stdout_reader_gone():
            if is_peer_gone(err):
                raise SystemExit(EXIT_PEER_GONE) from None
            raise
        # `... | head` closed our output: stop quietly with a shell's status for SIGPIPE, as
        # `yes | head` does. Later writes (the interpreter flushes stdout on exit) go nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(EXIT_PIPE_CLOSED) from None
    except Exception as err:
        if is_peer_gone(err):
            raise SystemExit(EXIT_PEER_GONE) from None
        raise


def kebab_case(flag: str) -> str:
    """``--output_dir`` -> ``--output-dir``; ``--output_dir=x`` -> ``--output-dir=x``; other tokens unchanged."""
    if not flag.startswith("--") or flag == "--":
        return flag
    name, sep, value = flag.partition("=")
    return name.replace("_", "-") + sep + value


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's conventions.

    * A bad command line raises :class:`~regnet_tutorial.errors.UsageError` (one line under
      :func:`run_main`, exit status 2) instead of printing the usage block.
    * Long flags are declared ``--kebab-case``; a ``--snake_case`` spelling on the command line
      is read as its kebab-case flag.
    """

    def add_argument(self, *names: str, **kwargs):  # type: ignore[override]
        if any("_" in n for n in names if n.startswith("--")):
            raise ValueError(f"declare flags in --kebab-case: {names}")  # the alias comes for free
        return super().add_argument(*names, **kwargs)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        tokens = list(sys.argv[1:] if args is None else args)
        if "--" in tokens:
            cut = tokens.index("--")
            tokens = [self._spelled(t) for t in tokens[:cut]] + tokens[cut:]
        else:
            tokens = [self._spelled(t) for t in tokens]
        return super().parse_known_args(tokens, namespace)

    def _spelled(self, token: str) -> str:
        kebab = kebab_case(token)
        return kebab if kebab.partition("=")[0] in self._option_string_actions else token

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def run_subcommand(
    prog: str, description: str, parsers: Sequence[Callable[[argparse._SubParsersAction], None]],
    argv: Sequence[str] | None = None,
) -> int:
    """``prog <command> ...``: each of ``parsers`` registers one subcommand and sets ``func``
    (called with the parsed arguments); errors are one line (:func:`run_main`)."""

    def run(argv: Sequence[str] | None) -> int:
        parser = ArgumentParser(prog=prog, description=description)
        commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
        for add in parsers:
            add(commands)
        args = parser.parse_args(argv)
        return args.func(args) or 0

    return run_main(run, argv)


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type`` accepting integers >= ``minimum``; argparse names the flag on error."""

    def parse(text: str) -> int:
        try:
            return check_int("value", int(text), minimum)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= {minimum}.") from None

    return parse


def flops_band(text: str) -> tuple[float, float]:
    """An argparse ``type``: ``"360e6:400e6"`` -> ``(360e6, 400e6)``, a complexity band in multiply-adds."""
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"flops band {text!r} is invalid: give LOW:HIGH multiply-adds, e.g. 360e6:400e6."
        ) from None
    return lo, hi
