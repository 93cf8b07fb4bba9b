# Generated from notebooks/06_evaluation.ipynb by `make scripts`; do not edit.
# Change the notebook's cells tagged 'export' instead, then run `make scripts`.
"""Evaluate a RegNet checkpoint on an ImageNet-layout validation folder (top-1 / top-5), on 1..N GPUs.

    accelerate launch scripts/evaluate.py --checkpoint runs/regnetx_400mf --data /path/to/imagenet
    accelerate launch scripts/evaluate.py --weights mmcls:regnetx_400mf --data /path/to/imagenet
    accelerate launch scripts/evaluate.py --weights mmcls:regnetx_400mf --data /path/to/imagenet \
        --weights-file regnetx-400mf_8xb128_in1k_20211213-89bfc226.pth      # offline: a file you downloaded
    accelerate launch scripts/evaluate.py --model regnetx_400mf --source mmcls \
        --checkpoint my_converted_or_finetuned.pth --data /path/to/imagenet
    accelerate launch --mixed_precision bf16 scripts/evaluate.py ...   # precision: the launcher's

A published checkpoint (--weights SOURCE[.TAG]:MODEL, downloaded once into the torch hub cache and
checked against its checksum) is evaluated with its source's own transform, a run's own checkpoint at
the run's resolution (its config.yaml), any other file at the paper's 256/224. The script is built
in notebooks/06_evaluation.ipynb.
"""
import dataclasses
import json
import os
from pathlib import Path

from accelerate import Accelerator

from regnet_tutorial.models import create_model, get_card
from regnet_tutorial.train.evaluation import evaluate
from regnet_tutorial.train.loaders import (
    DataError,
    build_dataloader,
    default_num_workers,
    eval_transform,
    load_split,
)
from regnet_tutorial.train.recipe import load_config
from regnet_tutorial.util.atomic import write_text_atomic
from regnet_tutorial.util.cli import (
    ArgumentParser,
    CliError,
    check_process_count,
    int_at_least,
    run_main,
)
from regnet_tutorial.weights.convert import (
    CheckpointMismatchError,
    load_checkpoint_file,
    load_state_dict_strict,
)
from regnet_tutorial.weights.download import published_state_dict
from regnet_tutorial.weights.registry import parse_weights_name

SOURCES = ("regnet_tutorial", "torchvision", "timm", "pycls", "mmcls")
PAPER_RESIZE, PAPER_CROP = (
    256,
    224,
)  # short side 256, centre crop 224 (the paper's protocol)


def weights_file(checkpoint):
    """The weights file --checkpoint names: the file itself, or the model.safetensors of a folder."""
    if checkpoint is None:
        raise CliError(
            "Pass --checkpoint (a weights file or run folder) or --weights SOURCE:MODEL "
            "(a published checkpoint, e.g. --weights mmcls:regnetx_400mf)."
        )
    path = Path(checkpoint)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise CliError(
            f"--checkpoint {checkpoint}: {path} does not exist. Pass a weights file, a run folder "
            "or a checkpoints/step_XXXXXXXX folder written by scripts/train.py."
        )
    return path


def run_config_file(weights):
    """The config.yaml of the training run that wrote ``weights``, or None for any other file.

    A run keeps model.safetensors beside its config.yaml, and its training checkpoints in
    <run>/checkpoints/step_XXXXXXXX/."""
    folder = weights.parent
    run_dir = folder.parent.parent if folder.parent.name == "checkpoints" else folder
    return run_dir / "config.yaml" if (run_dir / "config.yaml").is_file() else None


def run_settings(args, weights):
    """(model, resize, crop, where the resolution comes from): the flags, else the run's
    config.yaml for a run's own checkpoint, else the paper's protocol."""
    config_file = run_config_file(weights) if args.source == "regnet_tutorial" else None
    run = load_config(config_file) if config_file else None
    if args.model is None and run is None:
        raise CliError(
            f"--model is required: {weights} has no config.yaml beside it, so it is not a run "
            "of scripts/train.py. Pass the registered name, e.g. --model regnetx_400mf."
        )
    try:
        model = get_card(args.model or run.model).name
    except KeyError as err:
        raise CliError(f"--model: {err.args[0]}") from None
    if run is not None and model != get_card(run.model).name:
        raise CliError(
            f"--model {args.model}, but {config_file} trained {run.model}: drop --model."
        )
    resize, crop = (
        (run.eval_resize, run.crop_size) if run else (PAPER_RESIZE, PAPER_CROP)
    )
    origin = f"from {config_file}" if run else "the paper's protocol"
    if args.resize is not None or args.crop is not None:
        resize, crop = args.resize or resize, args.crop or crop
        origin = "from the command line" + (f", not {config_file}" if run else "")
    if not 0 < crop <= resize:
        raise CliError(
            f"--crop {crop} with --resize {resize}: the crop must fit the resized image."
        )
    return model, resize, crop, origin


def load_weights(model_name, num_classes, state_dict, weights, origin):
    """The model with the checkpoint's weights; a checkpoint of another registered model is an error
    that names the --model to pass (or, for a run's own folder, the mix-up)."""
    try:
        return load_state_dict_strict(
            create_model(model_name, num_classes), state_dict, model_name
        )
    except CheckpointMismatchError as err:
        if not err.matches:
            raise
        if origin.startswith("from ") and origin.endswith(
            "config.yaml"
        ):  # the model came from the run
            raise CliError(
                f"{weights} holds a {err.matches[0]}, but {origin[5:]} names {model_name}: the "
                "file does not come from that run; copy it out of the run's folder and pass the copy "
                f"with --model {err.matches[0]}."
            ) from None
        raise CliError(
            f"{weights} holds a {err.matches[0]}, not a {model_name}: pass --model "
            f"{err.matches[0]}."
        ) from None


def mixed_precision_setting(flag):
    """The precision to evaluate in: the launcher's (accelerate launch --mixed_precision or the saved
    accelerate config, both passed as ACCELERATE_MIXED_PRECISION), else --mixed-precision, else "no"."""
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION")
    if flag is not None and launcher is not None and flag != launcher:
        raise CliError(
            f"--mixed-precision {flag} conflicts with the launcher's mixed precision {launcher!r} "
            "(accelerate launch --mixed_precision, or the saved accelerate config): give it once, "
            "to the launcher."
        )
    return launcher or flag or "no"


def published_weights(args):
    """The registry entry --weights names, the transform to evaluate it with (its source's own, or
    --resize/--crop in its place) and where that transform comes from."""
    if (
        args.checkpoint is not None
        or args.model is not None
        or args.source != "regnet_tutorial"
    ):
        raise CliError(
            "--weights SOURCE:MODEL names the published file, the model and the layout: "
            "drop --checkpoint, --model and --source."
        )
    entry = parse_weights_name(args.weights)
    spec, origin = entry.transform, f"{entry.source}'s own transform"
    if args.resize is not None or args.crop is not None:
        spec = dataclasses.replace(
            spec, resize=args.resize or spec.resize, crop=args.crop or spec.crop
        )
        origin += ", with --resize/--crop from the command line"
    if not 0 < spec.crop <= spec.resize:
        raise CliError(
            f"--crop {spec.crop} with --resize {spec.resize}: the crop must fit the resized image."
        )
    return entry, spec, origin


def check_classes(args, val_set, num_classes):
    """Stop with one line when the data's class folders do not match the classifier's outputs."""
    if len(val_set.classes) != num_classes:
        raise DataError(
            f"{args.data}/{args.split} has {len(val_set.classes)} class folders but the "
            f"checkpoint's classifier has {num_classes} outputs; evaluate on the matching dataset."
        )


def parse_args(argv=None):
    """The command line; --model, --resize and --crop default to the run's own settings."""
    parser = ArgumentParser(
        description="Evaluate a RegNet checkpoint (single centre crop)."
    )
    parser.add_argument(
        "--checkpoint", help="weights file, run folder or checkpoint folder"
    )
    parser.add_argument(
        "--weights",
        help="a published checkpoint, SOURCE[.TAG]:MODEL, e.g. mmcls:regnetx_400mf "
        "(python -m regnet_tutorial.weights list)",
    )
    parser.add_argument(
        "--weights-file",
        help="with --weights: that checkpoint's file, downloaded by you (offline machines)",
    )
    parser.add_argument(
        "--model", help="registered model name, e.g. regnetx_400mf (default: the run's)"
    )
    parser.add_argument(
        "--source",
        default="regnet_tutorial",
        choices=SOURCES,
        help="layout of the weights",
    )
    parser.add_argument(
        "--data", required=True, help="folder holding <split>/<class>/*.JPEG"
    )
    parser.add_argument("--split", default="val")
    parser.add_argument(
        "--batch-size", type=int_at_least(1), default=100, help="images per process"
    )
    parser.add_argument(
        "--num-workers",
        type=int_at_least(0),
        default=default_num_workers(),
        help="data-loading processes (default: 4, or the CPU cores available if fewer)",
    )
    parser.add_argument(
        "--resize",
        type=int_at_least(1),
        help="short side before the crop (default: the run's, else 256)",
    )
    parser.add_argument(
        "--crop",
        type=int_at_least(1),
        help="centre crop (default: the run's crop_size, else 224)",
    )
    parser.add_argument(
        "--mixed-precision",
        choices=["no", "fp16", "bf16"],
        help="without a launcher only (default: the launcher's setting, else no)",
    )
    parser.add_argument("--output-json", help="also write the metrics to this file")
    return parser.parse_args(argv)


def evaluate_checkpoint(argv=None):
    """Evaluate one checkpoint; prints and returns top-1, top-5, loss, image count and the settings used."""
    args = parse_args(argv)
    accelerator = Accelerator(
        mixed_precision=mixed_precision_setting(args.mixed_precision)
    )
    check_process_count(
        accelerator.num_processes
    )  # e.g. --multi_gpu without a GPU: refused
    if args.weights is not None:
        entry, spec, origin = published_weights(args)
        model_name, resize, crop, transform = (
            entry.model,
            spec.resize,
            spec.crop,
            spec.build(),
        )
        weights = args.weights_file or entry.url
    else:
        if args.weights_file is not None:
            raise CliError(
                "--weights-file goes with --weights SOURCE:MODEL (it is that published file); "
                "pass any other file with --checkpoint."
            )
        weights = weights_file(args.checkpoint)
        model_name, resize, crop, origin = run_settings(args, weights)
        transform = eval_transform(resize, crop)
    if args.output_json and not Path(args.output_json).resolve().parent.is_dir():
        raise CliError(
            f"--output-json {args.output_json}: its folder does not exist; create it first."
        )
    val_set = load_split(args.data, args.split, transform)
    if args.weights is not None:
        check_classes(args, val_set, entry.num_classes)  # before the download
        with (
            accelerator.main_process_first()
        ):  # one download; the other processes find it in the cache
            state_dict = published_state_dict(
                entry, args.weights_file, progress=accelerator.is_main_process
            )
    else:
        state_dict = load_checkpoint_file(weights, args.source)
    num_classes = (
        state_dict["head.fc.weight"].shape[0]
        if "head.fc.weight" in state_dict
        else 1000
    )
    check_classes(args, val_set, num_classes)
    model = load_weights(model_name, num_classes, state_dict, weights, origin)
    loader = build_dataloader(
        val_set, args.batch_size, train=False, num_workers=args.num_workers
    )
    model, loader = accelerator.prepare(model, loader)
    accelerator.print(
        f"{model_name}: resize {resize}, crop {crop} ({origin}); "
        f"mixed precision {accelerator.mixed_precision}"
    )
    metrics = evaluate(model, loader, accelerator, num_classes, show_progress=False)
    metrics.update(
        model=model_name,
        checkpoint=str(weights),
        resize=resize,
        crop=crop,
        resolution_from=origin,
        mixed_precision=accelerator.mixed_precision,
        processes=accelerator.num_processes,
    )
    accelerator.print(
        f"{model_name}: top-1 {metrics['top1']:.2f}%  top-5 {metrics['top5']:.2f}%  "
        f"loss {metrics['loss']:.4f}  on {metrics['count']} images"
    )
    if args.output_json and accelerator.is_main_process:
        write_text_atomic(args.output_json, json.dumps(metrics, indent=2) + "\n")
    return metrics


def main(argv=None):
    """The command line: evaluate_checkpoint, with a bad input reported as one `error:` line (exit 2)."""
    return run_main(evaluate_checkpoint, argv)


if __name__ == "__main__":
    main()
