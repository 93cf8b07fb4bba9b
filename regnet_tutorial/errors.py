"""The root of the project's errors.

Every error that means bad input rather than a bug (a bad config, data folder, checkpoint,
command line, design-space point, ...) derives from :class:`RegNetTutorialError`, so a command
line prints it as one line ``error: <message>`` and exits with status 2
(:func:`regnet_tutorial.util.cli.run_main`). Classes keep a builtin base (``ValueError``,
``RuntimeError``, ...) where callers catch that.
"""

from __future__ import annotations

from numbers import Integral


class RegNetTutorialError(Exception):
    """Bad input: the message names the problem and the fix."""


class UsageError(RegNetTutorialError, ValueError):
    """A bad command line (unknown flag, missing or malformed value)."""


def is_int(value: object) -> bool:
    """Whether ``value`` is an integer (Python's or NumPy's), not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def check_int(name: str, value: object, minimum: int = 1, error: type[Exception] = ValueError, hint: str = "") -> int:
    """``value`` if it is an integer >= ``minimum``; else ``error`` naming ``name``, its value and the bound
    (and ``hint``, a fix, when given). The one integer check of the package."""
    if not is_int(value) or value < minimum:  # type: ignore[operator]
        fix = f" {hint}" if hint else ""
        raise error(f"{name}={value!r} is invalid: {name} must be an integer >= {minimum}.{fix}")
    return int(value)  # type: ignore[arg-type]
