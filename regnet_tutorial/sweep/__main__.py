"""Command line for design-space design: ``python -m regnet_tutorial.sweep <command> ...``.

``sample`` draws models from one of the paper's design spaces and writes one JSON object
per line to stdout (keys: :data:`regnet_tutorial.sweep.spaces.SAMPLE_KEYS`)::

    python -m regnet_tutorial.sweep sample --space anynetx_a --n 100 --seed 0 --flops 360e6:400e6

``run`` samples, trains and records models (:mod:`regnet_tutorial.sweep.run_command`). Each
subcommand lives in its own ``add_<name>_parser`` function; bad input is one line
``error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ..util.cli import flops_band, int_at_least, run_subcommand
from .plan import parse_spaces
from .run_command import add_rerun_parser, add_run_parser
from .spaces import DEFAULT_FLOPS, RENAMED, SKELETONS, SPACES, SamplerConfig, iter_samples, sample_to_json


def add_sample_parser(commands: argparse._SubParsersAction) -> None:
    """The ``sample`` subcommand: draw models from a design space."""
    p = commands.add_parser("sample", help="draw models from a design space; one JSON line per model")
    p.add_argument("--space", required=True, help=f"one of {', '.join(SPACES)} (any case)")
    p.add_argument("--n", type=int_at_least(1), required=True, help="number of samples")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the stream (default 0)")
    lo, hi = DEFAULT_FLOPS
    p.add_argument("--flops", type=flops_band, default=DEFAULT_FLOPS,
                   help=f"complexity band LOW:HIGH in multiply-adds (default {lo:g}:{hi:g})")
    p.add_argument("--resolution", type=int_at_least(1), default=224, help="input side in pixels (default 224)")
    p.add_argument("--skeleton", choices=sorted(SKELETONS), default="imagenet",
                   help="imagenet (stem stride 2, the paper's) or small (stem stride 1, 28-32 px inputs)")
    p.add_argument("--stages", type=int_at_least(1), default=4, help="number of stages, 1-4 (small skeleton)")
    p.add_argument("--num-classes", type=int_at_least(1), default=1000, help="classifier outputs (default 1000)")
    p.add_argument("--in-channels", type=int_at_least(1), default=3, help="input channels (default 3)")
    p.set_defaults(func=run_sample)


def run_sample(args: argparse.Namespace) -> None:
    """Print ``args.n`` samples of ``args.space``, one JSON line each."""
    config = SamplerConfig(
        flops=args.flops, resolution=args.resolution, skeleton=args.skeleton, stages=args.stages,
        num_classes=args.num_classes, in_channels=args.in_channels,
    )
    stream = iter_samples(args.space, args.seed, config, max_draws=2000 * args.n + 200_000)
    for _ in range(args.n):
        print(sample_to_json(next(stream)), flush=True)


def add_reliability_parser(commands: argparse._SubParsersAction) -> None:
    """The ``reliability`` subcommand: the proxy pilot's per-budget table and the budget it chooses."""
    p = commands.add_parser("reliability", help="test-retest and validity of a training proxy, per budget")
    p.add_argument("results", nargs="+", help="one results file per budget (written by `sweep run --replicate`)")
    p.add_argument("--spaces", default="regnetx,anynetx_e", help="spaces to report (default regnetx,anynetx_e)")
    p.add_argument("--reference", default="regnetx", help="the space whose reliability chooses the budget")
    p.add_argument("--threshold", type=float, default=0.7, help="Spearman both criteria must reach (default 0.7)")
    p.add_argument("--out", default=None, help="also write the summary as JSON here")
    p.set_defaults(func=run_reliability)


def run_reliability(args: argparse.Namespace) -> None:
    """Print the pilot's table and the chosen budget; write the summary JSON if asked."""
    import pandas as pd

    from ..util.atomic import write_json_atomic
    from .reliability import format_table, summarize

    spaces = parse_spaces(args.spaces, SPACES, RENAMED)
    (reference,) = parse_spaces(args.reference, SPACES, RENAMED)
    summary = summarize(args.results, spaces, reference, args.threshold)
    print(format_table(pd.DataFrame(summary["table"])))
    chosen = summary["chosen"] or f"none: no budget reaches {args.threshold} on both criteria"
    if summary["chosen_is_longest"]:
        chosen += " (the longest budget measured: its validity needs a longer one)"
    print(f"chosen budget ({reference}, Spearman >= {args.threshold}): {chosen}")
    corrected = summary["chosen_corrected"] or "none"
    print(f"with the validity corrected for the longest budget's own noise: {corrected}")
    if args.out:
        write_json_atomic(args.out, summary)


def add_describe_parser(commands: argparse._SubParsersAction) -> None:
    """The ``describe`` subcommand: what a results file holds and how it was made."""
    p = commands.add_parser("describe", help="counts, settings, commits, hardware and CPU time of a results file")
    p.add_argument("results", help="a results file written by `sweep run`")
    p.add_argument("--out", default=None, help="update this JSON record (its other keys are kept)")
    p.set_defaults(func=run_describe)


def run_describe(args: argparse.Namespace) -> None:
    """Print the results file's record as JSON; update ``--out`` if given."""
    import json

    from .describe import describe_file

    print(json.dumps(describe_file(args.results, args.out), indent=2, sort_keys=True))


PARSERS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_sample_parser, add_run_parser, add_rerun_parser, add_reliability_parser, add_describe_parser,
]
"""One function per subcommand; each registers its parser and sets ``func``."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; the project's errors (bad space, band, count, ...) become one line."""
    return run_subcommand("python -m regnet_tutorial.sweep", __doc__.splitlines()[0], PARSERS, argv)


if __name__ == "__main__":
    sys.exit(main())
