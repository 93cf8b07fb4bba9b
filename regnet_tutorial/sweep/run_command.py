"""The ``run`` subcommand: ``python -m regnet_tutorial.sweep run ...`` (see :mod:`.runner`).

Laptop::

    python -m regnet_tutorial.sweep run --spaces anynetx_a,anynetx_e --n 10 --seed 0 --out results.jsonl

Many GPUs (each process trains its own share of the models on its own GPU)::

    accelerate launch --multi_gpu --num_processes 8 -m regnet_tutorial.sweep run ... --out results.jsonl
"""

from __future__ import annotations

import argparse
import json

from ..util.cli import flops_band, int_at_least
from .plan import DATASETS, IMAGE_FOLDER_RESOLUTION, SweepError, SweepPlan, TrainSettings, parse_spaces
from .spaces import RENAMED, SPACES, SamplerConfig, sample_space, spec_from_sample

SMALL_FLOPS: tuple[float, float] = (2e6, 4e6)
"""The default band for the small skeleton at 28 px: 2-4 MF."""

def add_run_parser(commands: argparse._SubParsersAction) -> None:
    """The ``run`` subcommand: sample, train briefly, append one result line per model."""
    d = TrainSettings()
    p = commands.add_parser("run", help="sample models, train each briefly, append one result line per model")
    p.add_argument("--spaces", required=True, help=f"comma-separated, any of {', '.join(SPACES)}")
    p.add_argument("--n", type=int_at_least(1), required=True, help="models per space")
    p.add_argument("--seed", type=int_at_least(0), default=0,
                   help="sweep seed: fixes the samples and each model's training")
    p.add_argument("--flops", type=flops_band, default=SMALL_FLOPS,
                   help="complexity band LOW:HIGH in multiply-adds at the dataset's resolution (default 2e6:4e6)")
    p.add_argument("--stages", type=int_at_least(1), default=4, help="stages of the small skeleton, 1-4 (default 4)")
    p.add_argument("--replicate", type=int_at_least(0), default=0,
                   help="train the same models again from another training seed (0: the first run; default 0)")
    p.add_argument("--out", required=True, help="results file (JSON lines); an existing one is resumed")
    p.add_argument("--dataset", choices=DATASETS, default=d.dataset)
    p.add_argument("--data-dir", default=None, help="folder of the dataset (default: the Debian package's)")
    p.add_argument("--download", action="store_true", help="download the dataset with torchvision if missing")
    p.add_argument("--resolution", type=int_at_least(8), default=None,
                   help=f"image side for --dataset imagefolder (default {IMAGE_FOLDER_RESOLUTION})")
    p.add_argument("--train-images", type=int_at_least(1), default=d.train_images)
    p.add_argument("--val-images", type=int_at_least(1), default=d.val_images)
    p.add_argument("--epochs", type=int_at_least(1), default=d.epochs)
    p.add_argument("--batch-size", type=int_at_least(1), default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate of the cosine schedule")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--precise-bn-images", type=int_at_least(0), default=d.precise_bn_images)
    p.add_argument("--channels-last", action="store_true",
                   help="train in the channels-last memory format (faster on CPUs; results differ in the last digits)")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even where a GPU is available")
    p.add_argument("--log-every", type=float, default=60.0, help="seconds between progress lines off a terminal")
    p.set_defaults(func=run_run)


def add_rerun_parser(commands: argparse._SubParsersAction) -> None:
    """The ``rerun`` subcommand: re-train one line of a results file with its recorded settings."""
    p = commands.add_parser("rerun", help="re-train one result line with its recorded settings; print one JSON line")
    p.add_argument("results", help="a results file written by `sweep run`")
    p.add_argument("--line", type=int_at_least(1), required=True, help="the line to re-train (1-based)")
    p.add_argument("--data-dir", default=None, help="folder of the dataset (default: the Debian package's)")
    p.add_argument("--download", action="store_true", help="download the dataset with torchvision if missing")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even where a GPU is available")
    p.set_defaults(func=run_rerun)


def run_rerun(args: argparse.Namespace) -> None:
    from .rerun import rerun

    record = rerun(args.results, args.line, args.data_dir, args.download, args.cpu)
    print(json.dumps(record, sort_keys=True, allow_nan=True), flush=True)


def run_run(args: argparse.Namespace) -> None:
    """Build the plan from ``args`` (checking every value first) and run it."""
    spaces = parse_spaces(args.spaces, SPACES, RENAMED)
    settings = TrainSettings(
        dataset=args.dataset, train_images=args.train_images, val_images=args.val_images, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        precise_bn_images=args.precise_bn_images, channels_last=args.channels_last,
    )
    SamplerConfig(flops=args.flops, skeleton="small", stages=args.stages)  # checks the band early
    options = {"skeleton": "small", "stages": args.stages}
    if args.dataset == "imagefolder":
        options["image_resolution"] = args.resolution or IMAGE_FOLDER_RESOLUTION
    elif args.resolution is not None:
        raise SweepError(
            f"--resolution applies to --dataset imagefolder only ({args.dataset} has a fixed size: "
            "Fashion-MNIST 28 px, CIFAR-10 32 px); drop it"
        )
    plan = SweepPlan(spaces=spaces, n=args.n, seed=args.seed, flops=args.flops, train=settings,
                     sample_options=options, replicate=args.replicate)
    from .runner import run_sweep  # imports torch: only when a sweep runs

    run_sweep(plan, args.out, sample_small, spec_from_sample, data_dir=args.data_dir, download=args.download,
              cpu=args.cpu, log_every_s=args.log_every)


def sample_small(space: str, n: int, seed: int, flops: tuple[float, float], options: dict) -> list[dict]:
    """``n`` samples of ``space`` with the small skeleton at the dataset's resolution."""
    config = SamplerConfig(flops=flops, resolution=options["resolution"], skeleton=options["skeleton"],
                           stages=options["stages"], num_classes=options["num_classes"],
                           in_channels=options["in_channels"])
    return sample_space(space, n, seed, config)
