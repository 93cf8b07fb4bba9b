"""The root of the project's errors.

Every error that means bad input rather than a bug (a bad config, data folder, checkpoint,
command line, design-space point, ...) derives from :class:`RegNetTutorialError`, so a command
line prints it as one line ``error: <message>`` and exits with status 2
(:func:`regnet_tutorial.util.cli.run_main`). Classes keep a builtin base (``ValueError``,
``RuntimeError``, ...) where callers catch that.
"""

from __future__ import annotations


class RegNetTutorialError(Exception):
    """Bad input: the message names the problem and the fix."""


class UsageError(RegNetTutorialError, ValueError):
    """A bad command line (unknown flag, missing or malformed value)."""
