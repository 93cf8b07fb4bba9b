# Generated from notebooks/06_evaluation.ipynb by `make scripts` (python -m regnet_tutorial.export); do not edit.
# Change the notebook's cells tagged 'export' instead, then run `make scripts`.
"""Evaluate a RegNet checkpoint on an ImageNet-layout validation folder (top-1 / top-5), on 1..N GPUs.

    accelerate launch scripts/evaluate.py --model regnetx_400mf --checkpoint runs/regnetx_400mf/model.safetensors \
        --data /path/to/imagenet
    accelerate launch scripts/evaluate.py --model regnetx_400mf --source mmcls \
        --checkpoint regnetx-400mf_8xb128_in1k_20211213-89bfc226.pth --data /path/to/imagenet

The script is built in notebooks/06_evaluation.ipynb.
"""
import argparse
import json
from pathlib import Path

from accelerate import Accelerator

from regnet_tutorial.convert import load_checkpoint_file, load_state_dict_strict
from regnet_tutorial.data import build_dataloader, eval_transform, load_split
from regnet_tutorial.evaluation import evaluate
from regnet_tutorial.models import create_model

SOURCES = ("regnet_tutorial", "torchvision", "timm", "pycls", "mmcls")


def load_weights(checkpoint, source):
    """The state dict (our layout) in a weights file, or in the model.safetensors of a checkpoint folder."""
    path = Path(checkpoint)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"--checkpoint {checkpoint}: {path} does not exist. Pass a weights file "
                                "or a checkpoints/step_XXXXXXXX folder written by scripts/train.py.")
    return load_checkpoint_file(path, source)


def main(argv=None):
    """Evaluate one checkpoint; prints and returns top-1, top-5, loss and the image count."""
    parser = argparse.ArgumentParser(description="Evaluate a RegNet checkpoint (single 224 crop).")
    parser.add_argument("--model", required=True, help="registered model name, e.g. regnetx_400mf")
    parser.add_argument("--checkpoint", required=True, help="weights file or checkpoint folder")
    parser.add_argument("--source", default="regnet_tutorial", choices=SOURCES, help="layout of the weights")
    parser.add_argument("--data", required=True, help="folder holding <split>/<class>/*.JPEG")
    parser.add_argument("--split", default="val")
    parser.add_argument("--batch_size", type=int, default=100, help="images per process")
    parser.add_argument("--num_workers", type=int, default=4)
    parser.add_argument("--resize", type=int, default=256)
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--mixed_precision", default="no", choices=["no", "fp16", "bf16"])
    parser.add_argument("--output_json", help="also write the metrics to this file")
    args = parser.parse_args(argv)

    accelerator = Accelerator(mixed_precision=args.mixed_precision)
    state_dict = load_weights(args.checkpoint, args.source)
    num_classes = state_dict["head.fc.weight"].shape[0]
    model = load_state_dict_strict(create_model(args.model, num_classes), state_dict, args.model)
    val_set = load_split(args.data, args.split, eval_transform(args.resize, args.crop))
    if len(val_set.classes) != num_classes:
        raise ValueError(f"{args.data}/{args.split} has {len(val_set.classes)} class folders but the "
                         f"checkpoint's classifier has {num_classes} outputs; evaluate on the matching dataset.")
    loader = build_dataloader(val_set, args.batch_size, train=False, num_workers=args.num_workers)
    model, loader = accelerator.prepare(model, loader)
    metrics = evaluate(model, loader, accelerator, num_classes, show_progress=False)
    metrics.update(model=args.model, checkpoint=str(args.checkpoint), processes=accelerator.num_processes)
    accelerator.print(f"{args.model}: top-1 {metrics['top1']:.2f}%  top-5 {metrics['top5']:.2f}%  "
                      f"loss {metrics['loss']:.4f}  on {metrics['count']} images")
    if args.output_json and accelerator.is_main_process:
        Path(args.output_json).write_text(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
