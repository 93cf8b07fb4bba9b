"""Sampling cost of the design-space samplers: seconds to draw N models into a flops band.

The target (issue 8): 500 models in a band 10% wide at 224 px in under 10 s on 2 CPU cores,
for every space; the measurements are in ``benchmarks/results/README.md``. Example::

    python benchmarks/sampling.py                      # every space, 500 models, 360-396 MF
    python benchmarks/sampling.py --space anynetx_a --n 500 --flops 360e6:396e6

Speed targets live here, never in the unit tests.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from regnet_tutorial.sweep.spaces import SPACES, SamplerConfig, sample_space
from regnet_tutorial.util.cli import ArgumentParser, flops_band, int_at_least, run_main


def main(argv: Sequence[str] | None = None) -> None:
    """Time the samplers; bad input is one ``error:`` line."""
    run_main(time_sampling, argv)


def time_sampling(argv: Sequence[str] | None = None) -> None:
    """Print the seconds each space takes to draw ``--n`` models into the band."""
    parser = ArgumentParser(prog="python benchmarks/sampling.py", description=__doc__.splitlines()[0])
    parser.add_argument("--space", nargs="+", default=list(SPACES), help="spaces to time (default: all)")
    parser.add_argument("--n", type=int_at_least(1), default=500, help="models per space (default 500)")
    parser.add_argument("--flops", type=flops_band, default=(360e6, 396e6), help="band LOW:HIGH (default 10%% wide)")
    parser.add_argument("--resolution", type=int_at_least(1), default=224)
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    args = parser.parse_args(argv)
    config = SamplerConfig(flops=args.flops, resolution=args.resolution)
    lo, hi = args.flops
    print(f"{'space':<28} {'models':>6} {'seconds':>8}   band {lo / 1e6:g}-{hi / 1e6:g} MF at {args.resolution} px")
    for space in args.space:
        start = time.perf_counter()
        sample_space(space, args.n, args.seed, config)
        print(f"{space:<28} {args.n:>6} {time.perf_counter() - start:>8.2f}")


if __name__ == "__main__":
    main()
