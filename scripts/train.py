# Generated from notebooks/05_training_with_accelerate.ipynb by `make scripts` (python -m regnet_tutorial.export); do not edit.
# Change the notebook's cells tagged 'export' instead, then run `make scripts`.
"""Train a RegNet with the paper's recipe on an ImageNet-layout folder, on 1..N GPUs or CPUs.

    accelerate launch scripts/train.py --config configs/regnetx_400mf.yaml --data /path/to/imagenet
    accelerate launch scripts/train.py --config configs/regnetx_400mf.yaml --data ... --resume auto
    accelerate launch scripts/train.py --config ... --data ... epochs=10 batch_size=64   # overrides

The loop is built step by step in notebooks/05_training_with_accelerate.ipynb.
"""
import argparse
import dataclasses
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import ProjectConfiguration
from tqdm import tqdm

from regnet_tutorial import checkpointing as ckpt
from regnet_tutorial.checkpoint_io import save_safetensors
from regnet_tutorial.data import (
    build_dataloader, check_same_classes, eval_transform, load_split, train_transform,
)
from regnet_tutorial.env import seed_everything
from regnet_tutorial.evaluation import evaluate
from regnet_tutorial.models import create_model
from regnet_tutorial.recipe import config_to_dict, describe, load_config, resolve_recipe, save_config
from regnet_tutorial.schedule import build_scheduler
from regnet_tutorial.training import (
    CsvTracker, SeededAugmentation, ThroughputMeter, build_ema, flat_hparams, precise_bn,
    random_subset, run_metadata, write_json_atomic,
)


def parse_args(argv=None):
    """The run's TrainConfig: the recipe file, then key=value overrides, then the flags."""
    parser = argparse.ArgumentParser(description="Train a RegNet with the paper's recipe.")
    parser.add_argument("--config", required=True, help="recipe file, e.g. configs/regnetx_400mf.yaml")
    parser.add_argument("--data", help="folder with train/<class>/*.JPEG and val/<class>/*.JPEG")
    parser.add_argument("--output_dir", help="checkpoints, logs and the resolved config go here")
    parser.add_argument("--resume", help="'auto' (newest complete checkpoint in output_dir) or a checkpoint folder")
    parser.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"])
    parser.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    parser.add_argument("--channels_last", action="store_true", default=None, help="NHWC memory format")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="any config key, e.g. epochs=2")
    args = parser.parse_intermixed_args(argv)  # key=value overrides may come before or after flags
    flags = ("data", "output_dir", "resume", "mixed_precision", "compile", "channels_last")
    given = [f"{k}={getattr(args, k)}" for k in flags if getattr(args, k) is not None]
    return load_config(args.config, [*args.overrides, *given])


def build_data(cfg):
    """The training set and loaders; train augmentation is a function of (seed, epoch, sample)."""
    train_set = load_split(cfg.data, cfg.train_split, train_transform(cfg.crop_size, cfg.lighting_std),
                           cfg.skip_corrupt)
    val_set = load_split(cfg.data, cfg.val_split, eval_transform(cfg.eval_resize, cfg.crop_size),
                         cfg.skip_corrupt)
    check_same_classes(train_set, val_set)
    train_set = SeededAugmentation(train_set, cfg.seed)
    train_loader = build_dataloader(train_set, cfg.batch_size, train=True,
                                    num_workers=cfg.num_workers, seed=cfg.seed)
    val_loader = build_dataloader(val_set, cfg.eval_batch_size, train=False, num_workers=cfg.num_workers)
    return train_set, train_loader, val_loader


def train_one_epoch(cfg, resolved, accelerator, model, optimizer, scheduler, ema, loader, state, progress):
    """Train from where ``state`` stands to the end of its epoch; returns the mean training loss."""
    model.train()
    if state.batches_done:  # resuming mid-epoch: skip the batches already seen
        loader = accelerator.skip_first_batches(loader, state.batches_done)
    steps_done = state.batches_done // cfg.grad_accum_steps
    meter, loss_sum, batches = ThroughputMeter(), torch.zeros((), device=accelerator.device), 0
    bar = tqdm(total=resolved.steps_per_epoch, initial=steps_done, desc=f"epoch {state.epoch + 1}",
               disable=not progress)
    for images, targets in loader:
        if cfg.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with accelerator.accumulate(model):
            loss = F.cross_entropy(model(images), targets, label_smoothing=cfg.label_smoothing)
            accelerator.backward(loss)
            optimizer.step()  # a no-op until grad_accum_steps micro-batches are accumulated
            optimizer.zero_grad(set_to_none=True)
        state.batches_done += 1
        meter.update(images.shape[0] * accelerator.num_processes)
        loss_sum, batches = loss_sum + loss.detach(), batches + 1
        if not accelerator.sync_gradients:
            continue
        lr = optimizer.param_groups[0]["lr"]  # the rate this optimizer step used
        scheduler.step()
        if ema is not None:
            ema.update_parameters(accelerator.unwrap_model(model, keep_torch_compile=False))
        if state.global_step % cfg.log_every == 0:
            accelerator.log({"train/loss": accelerator.reduce(loss.detach(), "mean").item(),
                             "train/lr": lr, "train/images_per_s": meter.rate()}, step=state.global_step)
        state.global_step, steps_done = state.global_step + 1, steps_done + 1
        bar.update()
        ckpt.maybe_crash("step", state.global_step)  # fault injection for the resume tests
        if steps_done == resolved.steps_per_epoch:
            break  # the recipe's step count: a last partial accumulation does not step
        if cfg.checkpoint_every_steps and state.global_step % cfg.checkpoint_every_steps == 0:
            ckpt.save_checkpoint(accelerator, cfg.output_dir, state, cfg.keep_last)
    bar.close()
    return accelerator.reduce(loss_sum / max(batches, 1), "mean").item()


def evaluate_epoch(cfg, accelerator, model, ema, train_set, val_loader, num_classes, epoch, progress):
    """Precise BN (if asked), then val top-1/top-5/loss of the model and of its EMA (if any)."""
    if cfg.precise_bn_batches:
        seed = (cfg.seed * 1000 + epoch) * 1000 + accelerator.process_index  # other images per process
        subset = random_subset(train_set, cfg.precise_bn_batches * cfg.batch_size, seed)
        loader = build_dataloader(subset, cfg.batch_size, train=False, num_workers=cfg.num_workers)
        batches = (images.to(accelerator.device) for images, _ in loader)
        precise_bn(accelerator.unwrap_model(model), batches, cfg.precise_bn_batches, accelerator)
    metrics = {f"val_{k}": v for k, v in evaluate(model, val_loader, accelerator, num_classes, progress).items()}
    if ema is not None:
        ema_metrics = evaluate(ema.module, val_loader, accelerator, num_classes, progress)
        metrics.update({f"val_ema_{k}": v for k, v in ema_metrics.items()})
    return metrics


def export_final(cfg, resolved, accelerator, model, ema, state, num_classes):
    """Write model.safetensors (and model_ema.safetensors) plus final.json into output_dir."""
    out = Path(cfg.output_dir)
    meta = {"model": cfg.model, "num_classes": str(num_classes), "global_step": str(state.global_step)}
    if accelerator.is_main_process:
        save_safetensors(accelerator.unwrap_model(model, keep_torch_compile=False), out / "model.safetensors", meta)
        if ema is not None:
            save_safetensors(ema.module, out / "model_ema.safetensors", meta)
        write_json_atomic(out / "final.json", run_metadata(accelerator, {
            "config": config_to_dict(cfg), "recipe": dataclasses.asdict(resolved),
            "metrics": state.history[-1] if state.history else {},
            "best": {"val_top1": state.best_top1, "step": state.best_step}, "history": state.history,
        }))
    accelerator.wait_for_everyone()


def main(argv=None):
    """Train (or resume) the run described by the command line; returns its TrainerState."""
    cfg = parse_args(argv)
    out = Path(cfg.output_dir)
    accelerator = Accelerator(
        mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.grad_accum_steps,
        log_with=["tensorboard", CsvTracker("train", out / "logs")],
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=cfg.seed),
    )
    resume_from = ckpt.resolve_resume(cfg.resume, out)
    if resume_from is None and ckpt.list_checkpoints(out):
        sys.exit(f"{out} already holds checkpoints: pass --resume auto to continue that run, "
                 "or choose another --output_dir.")
    seed_everything(cfg.seed)
    train_set, train_loader, val_loader = build_data(cfg)
    num_classes = cfg.num_classes or len(train_set.classes)
    resolved = resolve_recipe(cfg, accelerator.num_processes, len(train_set))
    accelerator.print(describe(resolved))

    model = create_model(cfg.model, num_classes, zero_init_last_bn=cfg.zero_init_last_bn)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.compile:
        model = torch.compile(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=resolved.lr, momentum=cfg.momentum,
                                nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
    scheduler = build_scheduler(optimizer, resolved, cfg.warmup_factor)
    model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)
    accelerator.register_for_checkpointing(scheduler)
    ema = build_ema(accelerator.unwrap_model(model, keep_torch_compile=False), cfg.ema_decay) if cfg.ema_decay else None
    if ema is not None:
        accelerator.register_for_checkpointing(ema)

    state = ckpt.TrainerState()
    if resume_from is not None:
        accelerator.load_state(str(resume_from))
        state = ckpt.read_trainer_state(resume_from)
        accelerator.print(f"resumed from {resume_from} at step {state.global_step} "
                          f"({state.epoch} epochs and {state.batches_done} batches done)")
    if accelerator.is_main_process:
        save_config(cfg, out / "config.yaml")
        write_json_atomic(out / "run.json", run_metadata(accelerator, {
            "recipe": dataclasses.asdict(resolved), "resumed_from": str(resume_from or "")}))
    accelerator.init_trackers("train", config=flat_hparams(config_to_dict(cfg)))
    progress = accelerator.is_local_main_process and sys.stderr.isatty()

    for epoch in range(state.epoch, cfg.epochs):
        train_set.set_epoch(epoch)
        train_loader.set_epoch(epoch)
        meter = ThroughputMeter()
        train_loss = train_one_epoch(cfg, resolved, accelerator, model, optimizer, scheduler, ema,
                                     train_loader, state, progress)
        meter.update(resolved.steps_per_epoch * resolved.total_batch)
        images_per_s = meter.rate()
        record = {"epoch": epoch + 1, "step": state.global_step, "train_loss": train_loss}
        if (epoch + 1) % cfg.eval_every_epochs == 0 or epoch + 1 == cfg.epochs:
            record.update(evaluate_epoch(cfg, accelerator, model, ema, train_set, val_loader,
                                         num_classes, epoch, progress))
        state.epoch, state.batches_done = epoch + 1, 0
        state.history.append(record)
        if record.get("val_top1", -1.0) > state.best_top1:
            state.best_top1, state.best_step = record["val_top1"], state.global_step
        accelerator.log({f"epoch/{k}": v for k, v in record.items()}, step=state.global_step)
        accelerator.print(
            f"epoch {epoch + 1:3d}/{cfg.epochs}  train loss {train_loss:.4f}  "
            + (f"val top-1 {record['val_top1']:6.2f}%  top-5 {record['val_top5']:6.2f}%  "
               if "val_top1" in record else "") + f"({images_per_s:.1f} img/s)")
        ckpt.save_checkpoint(accelerator, out, state, cfg.keep_last)

    export_final(cfg, resolved, accelerator, model, ema, state, num_classes)
    accelerator.end_training()
    return state


if __name__ == "__main__":
    main()
