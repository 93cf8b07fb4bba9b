"""Command line for training helpers: ``python -m regnet_tutorial.train <command> ...``.

``schedule`` prints the learning rate of every optimizer step of a recipe as CSV::

    python -m regnet_tutorial.train schedule configs/regnetx_400mf.yaml --steps-per-epoch 1251

``configs`` writes one recipe YAML per pycls model (``configs/`` is its output)::

    python -m regnet_tutorial.train configs configs

``synthetic`` writes the tiny synthetic ImageNet look-alike (:mod:`.synthetic`)::

    python -m regnet_tutorial.train synthetic OUT_DIR --num-classes 4

``fashion-mnist`` writes the Fashion-MNIST folder that ``scripts/train.py --data`` reads (chapter
05's real-data run: 500 training and 100 validation images per class, from the Debian package
``dataset-fashion-mnist``)::

    python -m regnet_tutorial.train fashion-mnist --out data/fashion_mnist

The training loop itself is ``scripts/train.py`` (chapter 05). Bad input is one line
``error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ..util.cli import int_at_least, run_subcommand
from .recipe import PAPER_NUM_GPUS, write_recipe_files
from .schedule import schedule_csv
from .synthetic import make_tiny_dataset


def add_schedule_parser(commands: argparse._SubParsersAction) -> None:
    """The ``schedule`` subcommand: a recipe's learning rate per optimizer step."""
    p = commands.add_parser("schedule", help="print the learning rate of every optimizer step of a recipe as CSV")
    p.add_argument("config", nargs="?", help="a recipe YAML (configs/*.yaml); default: the paper's recipe")
    p.add_argument("--steps-per-epoch", type=int_at_least(1), required=True, help="optimizer steps per epoch")
    p.add_argument("--num-processes", type=int_at_least(1), default=PAPER_NUM_GPUS,
                   help=f"processes (GPUs) of the run; the lr scales with the total batch (default: "
                        f"{PAPER_NUM_GPUS}, the paper's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set schedule=per_step (repeatable)")
    p.set_defaults(func=run_schedule)


def run_schedule(args: argparse.Namespace) -> None:
    """Print ``step,epoch,lr`` for every optimizer step."""
    sys.stdout.write(schedule_csv(args.config, args.steps_per_epoch, args.overrides, args.num_processes))


def add_configs_parser(commands: argparse._SubParsersAction) -> None:
    """The ``configs`` subcommand: regenerate the recipe files."""
    p = commands.add_parser("configs", help="write one recipe YAML per pycls model")
    p.add_argument("folder", nargs="?", default="configs", help="output folder (default: configs)")
    p.set_defaults(func=run_configs)


def run_configs(args: argparse.Namespace) -> None:
    """Write the recipe files and print their paths."""
    for path in write_recipe_files(args.folder):
        print(path)


def add_synthetic_parser(commands: argparse._SubParsersAction) -> None:
    """The ``synthetic`` subcommand: the tiny dataset of the CPU runs and the tests."""
    p = commands.add_parser("synthetic", help="write a tiny synthetic ImageNet look-alike (train/ and val/)")
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder to write root/train and root/val into")
    p.add_argument("--num-classes", type=int_at_least(2), default=4)
    p.add_argument("--train-per-class", type=int_at_least(1), default=40)
    p.add_argument("--val-per-class", type=int_at_least(1), default=10)
    p.add_argument("--image-size", type=int_at_least(8), default=64)
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.set_defaults(func=run_synthetic)


def run_synthetic(args: argparse.Namespace) -> None:
    """Write the dataset and say where."""
    root = make_tiny_dataset(
        args.out_dir, args.num_classes, args.train_per_class, args.val_per_class, args.image_size, args.seed
    )
    total = args.num_classes * (args.train_per_class + args.val_per_class)
    print(f"Wrote {total} JPEG images of {args.num_classes} classes to {root} (train/ and val/).")


def add_fashion_mnist_parser(commands: argparse._SubParsersAction) -> None:
    """The ``fashion-mnist`` subcommand: Fashion-MNIST as an ImageNet-layout folder of PNG files."""
    p = commands.add_parser("fashion-mnist", help="write a class-balanced Fashion-MNIST subset as train/ and val/ "
                                                  "image folders (what scripts/train.py --data reads)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write DIR/train and DIR/val into")
    p.add_argument("--train-per-class", type=int_at_least(1), default=500,
                   help="training images per class, of 6000 (default: 500, chapter 05's run)")
    p.add_argument("--val-per-class", type=int_at_least(1), default=100,
                   help="validation images per class, from the test split, of 1000 (default: 100)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="which images are drawn (default: 0)")
    p.add_argument("--source", metavar="DIR", help="folder of the IDX files (default: the Debian package's, "
                                                   "/usr/share/datasets/fashion-mnist)")
    p.set_defaults(func=run_fashion_mnist)


def run_fashion_mnist(args: argparse.Namespace) -> None:
    """Write the folder and say where."""
    from ..sweep.images import write_fashion_mnist_folder  # numpy and PIL only when asked for

    root = write_fashion_mnist_folder(args.out, args.train_per_class, args.val_per_class, args.seed, args.source)
    print(f"Wrote {10 * args.train_per_class} training and {10 * args.val_per_class} validation images of "
          f"Fashion-MNIST's 10 classes to {root} (train/ and val/); pass --data {root} to scripts/train.py.")


PARSERS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_schedule_parser, add_configs_parser, add_synthetic_parser, add_fashion_mnist_parser,
]
"""One function per subcommand; each registers its parser and sets ``func``."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; bad input becomes one ``error:`` line and exit status 2."""
    return run_subcommand("python -m regnet_tutorial.train", __doc__.splitlines()[0], PARSERS, argv)


if __name__ == "__main__":
    sys.exit(main())
