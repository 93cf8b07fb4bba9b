"""Progress of long runs whose output may not be a terminal (nohup, SLURM logs), where a tqdm bar
would write one garbled line per refresh: periodic one-line reports with the rate and the time
left, measured since the start."""

from __future__ import annotations

import sys
import time


def clock(seconds: float) -> str:
    """``3725.2`` -> ``"1:02:05"``."""
    s = max(0, int(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Rate:
    """Units done per second since construction, and the time left for the rest."""

    def __init__(self, total: int, done: int = 0) -> None:
        self.total, self.first, self.start = total, done, time.perf_counter()

    def seconds_per_unit(self, done: int) -> float:
        """Seconds per unit over the units done since construction."""
        return max(time.perf_counter() - self.start, 1e-9) / max(done - self.first, 1)

    def seconds_left(self, done: int) -> float:
        """The estimated seconds until ``total`` units are done."""
        return self.seconds_per_unit(done) * (self.total - done)


class ProgressLines:
    """Training progress every ``every`` optimizer steps and at the end of every epoch (so that
    ``every`` larger than an epoch still reports each epoch): the step, epoch, loss, throughput
    and the estimated time left."""

    def __init__(self, total_steps: int, start_step: int, every: int, images_per_step: int) -> None:
        self.total_steps, self.every, self.images_per_step = total_steps, every, images_per_step
        self.start_step, self.rate = start_step, Rate(total_steps, start_step)

    def due(self, step: int, epoch_end: bool = False) -> bool:
        """Whether a line is due after optimizer step ``step`` (the count of steps done);
        ``epoch_end``: that step ended an epoch."""
        return self.every > 0 and step > self.start_step and (step % self.every == 0 or epoch_end)

    def line(self, step: int, epoch: int, epochs: int, loss: float) -> str:
        """``step S/T  epoch E/N  loss L  R img/s  ETA h:mm:ss``."""
        images_per_s = self.images_per_step / self.rate.seconds_per_unit(step)
        return (f"step {step}/{self.total_steps}  epoch {epoch}/{epochs}  loss {loss:.4f}  "
                f"{images_per_s:.1f} img/s  ETA {clock(self.rate.seconds_left(step))}")


class Progress:
    """Units done and time left: a tqdm bar on a terminal, else a line on stderr every ``every_s``
    seconds (``unit``s of ``desc``, e.g. models of a sweep)."""

    def __init__(self, total: int, done: int, enabled: bool, every_s: float = 60.0,
                 desc: str = "sweep", unit: str = "model") -> None:
        self.total, self.enabled, self.every_s, self.desc, self.unit = total, enabled, every_s, desc, unit
        self.rate, self.last_log = Rate(total, done), time.monotonic()
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, unit=unit, desc=desc, dynamic_ncols=True)

    def update(self, done: int, force: bool = False) -> None:
        """Report ``done`` units: move the bar, or print a line when one is due (or ``force``)."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            return
        now = time.monotonic()
        if force or now - self.last_log >= self.every_s:
            self.last_log = now
            print(f"{self.desc}: {done}/{self.total} {self.unit}s, {self.rate.seconds_per_unit(done):.1f} "
                  f"s/{self.unit}, ~{self.rate.seconds_left(done) / 60:.0f} min left", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
