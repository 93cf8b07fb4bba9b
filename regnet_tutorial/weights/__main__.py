"""Command line for weights: ``python -m regnet_tutorial.weights <command> ...``.

``zoo`` prints every registered RegNet with its complexity and the published numbers::

    python -m regnet_tutorial.weights zoo --format markdown --resolution 224 --columns summary

``list`` prints the registry of published checkpoints (URL, checksum, published accuracy)::

    python -m regnet_tutorial.weights list --source mmcls

``reproduce`` re-measures published checkpoints on ImageNet val, each with its source's transform::

    python -m regnet_tutorial.weights reproduce --data /data/imagenet --source mmcls

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


def add_list_parser(commands: argparse._SubParsersAction) -> None:
    """The ``list`` subcommand: the registry of published checkpoints."""
    from .registry import SOURCES

    p = commands.add_parser("list", help="list the published checkpoints: name, accuracy, checksum, URL")
    p.add_argument("--source", choices=SOURCES, help="only this source's checkpoints")
    p.add_argument("--model", help="only this model's checkpoints, e.g. regnetx_400mf")
    p.set_defaults(func=run_list)


def run_list(args: argparse.Namespace) -> None:
    """Print the registry."""
    from .registry import format_registry, list_weights

    sys.stdout.write(format_registry(list_weights(args.source, args.model)) + "\n")


def add_reproduce_parser(commands: argparse._SubParsersAction) -> None:
    """The ``reproduce`` subcommand: published vs measured accuracy."""
    from .reproduce import DESCRIPTION, add_arguments, run_reproduce

    p = commands.add_parser("reproduce", help="re-measure published checkpoints on ImageNet val",
                            description=DESCRIPTION)
    add_arguments(p)
    p.set_defaults(func=lambda args: run_reproduce(args) and None)


PARSERS: list[Callable[[argparse._SubParsersAction], None]] = [add_zoo_parser, add_list_parser, add_reproduce_parser]
"""One function per subcommand; each registers its parser and sets ``func``."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; bad input becomes one ``error:`` line and exit status 2."""
    return run_subcommand("python -m regnet_tutorial.weights", __doc__.splitlines()[0], PARSERS, argv)


if __name__ == "__main__":
    sys.exit(main())
