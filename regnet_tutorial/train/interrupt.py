"""Ctrl-C during training: save a checkpoint at the next optimizer step, then stop.

Without this, a ``KeyboardInterrupt`` ends the run wherever it lands and everything since the last
checkpoint is lost (with ``checkpoint_every_steps: 0``, the whole epoch). :class:`StopRequest`
replaces the SIGINT handler while the loop runs: the first Ctrl-C only asks the loop to stop; the
loop finishes its optimizer step, saves a checkpoint (the same complete checkpoint a periodic save
writes, so ``--resume auto`` continues bitwise as if nothing had happened) and raises
``KeyboardInterrupt``. A second Ctrl-C stops at once, without a checkpoint.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import torch


class StopRequest:
    """A context manager holding the SIGINT handler of a training loop; :meth:`agreed` says
    whether to save and stop after the current step."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("interrupt: saving a checkpoint after this step, then stopping (Ctrl-C again: stop now, unsaved)",
              file=sys.stderr, flush=True)

    def agreed(self, accelerator: Any) -> bool:
        """Whether every process stops now: any process's request, agreed on by all processes
        (one all-reduce of one number when there are several), so that all of them take part
        in the checkpoint's save."""
        if accelerator.num_processes == 1:
            return self.requested
        flag = torch.tensor([float(self.requested)], device=accelerator.device)
        return accelerator.reduce(flag, "sum").item() > 0
