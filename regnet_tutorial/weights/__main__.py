"""Command line for weights: ``python -m regnet_tutorial.weights <command> ...``.

``zoo`` prints every registered RegNet with its complexity and the published numbers::

    python -m regnet_tutorial.weights zoo --format markdown --resolution 224 --columns summary

Each subcommand lives in its own ``add_<name>_parser`` function; bad input is one line
``error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ..util.cli import int_at_least, run_subcommand
from .zoo import COLUMN_SETS, COLUMNS, FORMATS, SUMMARY_COLUMNS, format_csv, format_markdown, zoo_table


def add_zoo_parser(commands: argparse._SubParsersAction) -> None:
    """The ``zoo`` subcommand: the model catalogue."""
    p = commands.add_parser("zoo", help="print every registered RegNet with its complexity and published numbers")
    p.add_argument("--format", choices=FORMATS, default="markdown", help="output format (default: markdown)")
    p.add_argument("--resolution", type=int_at_least(1), default=224,
                   help="input side in pixels for our params/flops/acts (default: 224)")
    p.add_argument("--columns", choices=COLUMN_SETS, default=None,
                   help="summary (the markdown default) or all (the csv default; csv always has all)")
    p.set_defaults(func=run_zoo)


def run_zoo(args: argparse.Namespace) -> None:
    """Print the zoo table."""
    table = zoo_table(args.resolution)
    if args.format == "csv":
        text = format_csv(table)
    else:
        text = format_markdown(table, COLUMNS if args.columns == "all" else SUMMARY_COLUMNS)
    sys.stdout.write(text)


PARSERS: list[Callable[[argparse._SubParsersAction], None]] = [add_zoo_parser]
"""One function per subcommand; each registers its parser and sets ``func``."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; bad input becomes one ``error:`` line and exit status 2."""
    return run_subcommand("python -m regnet_tutorial.weights", __doc__.splitlines()[0], PARSERS, argv)


if __name__ == "__main__":
    sys.exit(main())
