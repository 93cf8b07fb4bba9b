# Generated from notebooks/05_training_with_accelerate.ipynb by `make scripts`; do not edit.
# Change the notebook's cells tagged 'export' instead, then run `make scripts`.
"""Train a RegNet with the paper's recipe on an ImageNet-layout folder, on 1..N GPUs or CPUs.

    accelerate launch scripts/train.py --config configs/regnetx_400mf.yaml --data /path/to/imagenet
    accelerate launch scripts/train.py --config configs/regnetx_400mf.yaml --data ... --resume auto
    accelerate launch scripts/train.py --config ... --data ... epochs=10 batch_size=64   # overrides
    accelerate launch --mixed_precision bf16 scripts/train.py ...   # precision: the launcher's setting

The loop is built step by step in notebooks/05_training_with_accelerate.ipynb.
"""
import contextlib
import dataclasses
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator, DataLoaderConfiguration, PartialState
from accelerate.utils import ProjectConfiguration, gather_object, parse_flag_from_env
from tqdm import tqdm

from regnet_tutorial.models import create_model
from regnet_tutorial.train import checkpoints as ckpt
from regnet_tutorial.train.averaging import build_ema, precise_bn
from regnet_tutorial.train.evaluation import evaluate
from regnet_tutorial.train.interrupt import StopRequest
from regnet_tutorial.train.loaders import (
    SeededAugmentation,
    build_dataloader,
    check_same_classes,
    eval_transform,
    find_unreadable_images,
    load_split,
    random_subset,
    small_image_transform,
    train_transform,
    unreadable_images_error,
)
from regnet_tutorial.train.recipe import (
    ConfigError,
    config_to_dict,
    describe,
    load_config,
    resolve_recipe,
    save_config,
)
from regnet_tutorial.train.rundir import RunLock, check_writable
from regnet_tutorial.train.schedule import build_scheduler
from regnet_tutorial.train.tracking import (
    CsvTracker,
    ThroughputMeter,
    flat_hparams,
    run_metadata,
    truncate_metrics_csv,
)
from regnet_tutorial.util.atomic import write_json_atomic
from regnet_tutorial.util.cli import (
    ArgumentParser,
    CliError,
    check_process_count,
    int_at_least,
    run_main,
)
from regnet_tutorial.util.env import seed_everything
from regnet_tutorial.util.progress import ProgressLines
from regnet_tutorial.weights.files import save_safetensors


def parse_args(argv=None):
    """The run's TrainConfig (the recipe file, then key=value overrides, then the flags) and the
    command line's other options."""
    parser = ArgumentParser(description="Train a RegNet with the paper's recipe.")
    parser.add_argument(
        "--config", required=True, help="recipe file, e.g. configs/regnetx_400mf.yaml"
    )
    parser.add_argument(
        "--data", help="folder with train/<class>/*.JPEG and val/<class>/*.JPEG"
    )
    parser.add_argument(
        "--output-dir", help="checkpoints, logs and the resolved config go here"
    )
    parser.add_argument(
        "--resume",
        help="'auto' (newest complete checkpoint in output_dir) or a checkpoint folder",
    )
    parser.add_argument(
        "--mixed-precision",
        choices=["no", "fp16", "bf16"],
        help="default: the launcher's (accelerate launch --mixed_precision, accelerate config)",
    )
    parser.add_argument(
        "--compile", action="store_true", default=None, help="torch.compile the model"
    )
    parser.add_argument(
        "--channels-last", action="store_true", default=None, help="NHWC memory format"
    )
    parser.add_argument(
        "--allow-config-change",
        action="store_true",
        help="resume although settings that change the result differ (recorded in run.json)",
    )
    parser.add_argument(
        "--check-data",
        action="store_true",
        help="first decode every image; list all bad ones",
    )
    parser.add_argument(
        "--progress-every",
        type=int_at_least(0),
        default=100,
        metavar="N",
        help="when the output is not a terminal, a progress line every N steps (0: none)",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="any config key, e.g. epochs=2",
    )
    args = parser.parse_intermixed_args(
        argv
    )  # key=value overrides may come before or after flags
    flags = (
        "data",
        "output_dir",
        "resume",
        "mixed_precision",
        "compile",
        "channels_last",
    )
    given = [f"{k}={getattr(args, k)}" for k in flags if getattr(args, k) is not None]
    return load_config(args.config, [*args.overrides, *given]), args


def launcher_precision(cfg):
    """The mixed precision to ask Accelerate for: the config's (or --mixed-precision's) if given, else
    None, which makes Accelerate use the launcher's setting. Both given and different: an error."""
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION")  # set by accelerate launch
    if cfg.mixed_precision and launcher and launcher != cfg.mixed_precision:
        raise ConfigError(
            f"mixed_precision={cfg.mixed_precision} (config or --mixed-precision) conflicts with the launcher's "
            f"{launcher} (accelerate launch --mixed_precision, or accelerate config). Set it in one place: "
            f"pass --mixed_precision {cfg.mixed_precision} to accelerate launch and drop the script's value."
        )
    return cfg.mixed_precision


def build_data(cfg):
    """The training set and loaders; train augmentation is a function of (seed, epoch, sample)."""
    train_set = load_split(
        cfg.data,
        cfg.train_split,
        (
            small_image_transform(cfg.crop_size)
            if cfg.augmentation == "pad_crop"
            else train_transform(cfg.crop_size, cfg.lighting_std)
        ),
        cfg.skip_corrupt,
    )
    val_set = load_split(
        cfg.data,
        cfg.val_split,
        eval_transform(cfg.eval_resize, cfg.crop_size),
        cfg.skip_corrupt,
    )
    check_same_classes(train_set, val_set)
    train_set = SeededAugmentation(train_set, cfg.seed)
    train_loader = build_dataloader(
        train_set,
        cfg.batch_size,
        train=True,
        num_workers=cfg.num_workers,
        seed=cfg.seed,
    )
    val_loader = build_dataloader(
        val_set, cfg.eval_batch_size, train=False, num_workers=cfg.num_workers
    )
    return train_set, train_loader, val_loader


def check_images(cfg, accelerator):
    """--check-data: decode every train and val image (each process a share) and list all bad ones at once."""
    splits = (cfg.train_split, cfg.val_split)
    paths = [
        path
        for split in splits
        for path, _ in load_split(cfg.data, split, None).samples
    ]
    mine = find_unreadable_images(
        paths[accelerator.process_index :: accelerator.num_processes]
    )
    bad = sorted(gather_object(mine)) if accelerator.num_processes > 1 else mine
    if bad:
        raise unreadable_images_error(bad, len(paths))
    accelerator.print(f"check_data: all {len(paths)} images decode")


def build_training(cfg, resolved, accelerator, num_classes, train_loader, val_loader):
    """The model, SGD, the schedule and the EMA, with model, optimizer and loaders prepared by Accelerate."""
    model = create_model(
        cfg.model,
        num_classes,
        zero_init_last_bn=cfg.zero_init_last_bn,
        stem_stride=cfg.stem_stride,
    )
    if cfg.channels_last:  # both before prepare, which wraps the model in DDP
        model = model.to(memory_format=torch.channels_last)
    if cfg.compile:
        model = torch.compile(model)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=resolved.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov,
        weight_decay=cfg.weight_decay,
    )
    scheduler = build_scheduler(
        optimizer, resolved, cfg.warmup_factor
    )  # not prepared: see above
    model, optimizer, train_loader, val_loader = accelerator.prepare(
        model, optimizer, train_loader, val_loader
    )
    ema = (
        build_ema(
            accelerator.unwrap_model(model, keep_torch_compile=False), cfg.ema_decay
        )
        if cfg.ema_decay
        else None
    )
    return model, optimizer, scheduler, ema, train_loader, val_loader


def train_one_epoch(
    cfg,
    resolved,
    accelerator,
    model,
    optimizer,
    scheduler,
    ema,
    loader,
    state,
    save,
    progress,
    stop,
):
    """Train from where ``state`` stands to the end of its epoch; returns the epoch's mean training loss.
    A Ctrl-C (``stop``) saves a checkpoint after the current optimizer step and raises KeyboardInterrupt."""
    model.train()
    if state.batches_done:  # resuming mid-epoch: skip the batches already seen
        loader = accelerator.skip_first_batches(loader, state.batches_done)
    steps_done = state.batches_done // cfg.grad_accum_steps
    # The epoch's loss so far lives in the state, so that a resumed epoch's mean covers the whole epoch.
    loss_sum = torch.tensor(
        state.loss_sums[accelerator.process_index] if state.loss_sums else 0.0,
        device=accelerator.device,
    )
    # The largest loss since the last logged step (-1: none yet), logged as train/loss_max: a spike
    # between two logged steps still shows, without a device sync on every step.
    loss_max = torch.tensor(
        state.loss_window_max[accelerator.process_index]
        if state.loss_window_max
        else -1.0,
        device=accelerator.device,
    )

    def keep_epoch_sums():  # what a checkpoint needs of the epoch so far, from every process
        state.loss_sums = accelerator.gather(loss_sum.reshape(1)).tolist()
        state.loss_window_max = accelerator.gather(loss_max.reshape(1)).tolist()

    bar = tqdm(
        total=resolved.steps_per_epoch,
        initial=steps_done,
        desc=f"epoch {state.epoch + 1}",
        disable=progress is not None or not accelerator.is_local_main_process,
    )
    for images, targets in loader:
        if cfg.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with accelerator.accumulate(model):
            loss = F.cross_entropy(
                model(images), targets, label_smoothing=cfg.label_smoothing
            )
            accelerator.backward(loss)
            optimizer.step()  # a no-op until grad_accum_steps micro-batches are accumulated
            optimizer.zero_grad(set_to_none=True)
        state.batches_done += 1
        loss_sum, state.loss_batches = loss_sum + loss.detach(), state.loss_batches + 1
        loss_max = torch.maximum(loss_max, loss.detach().float())
        if not accelerator.sync_gradients:
            continue
        lr = optimizer.param_groups[0]["lr"]  # the rate this optimizer step used
        scheduler.step()
        if ema is not None:
            ema.update_parameters(
                accelerator.unwrap_model(model, keep_torch_compile=False)
            )
        if state.global_step % cfg.log_every == 0:
            accelerator.log(
                {
                    "train/loss": accelerator.reduce(loss.detach(), "mean").item(),
                    "train/loss_max": accelerator.gather(loss_max.reshape(1))
                    .max()
                    .item(),
                    "train/lr": lr,
                },
                step=state.global_step,
            )
            loss_max = torch.full_like(loss_max, -1.0)
        state.global_step, steps_done = state.global_step + 1, steps_done + 1
        bar.update()
        epoch_end = steps_done == resolved.steps_per_epoch
        if progress is not None and progress.due(
            state.global_step, epoch_end
        ):  # loss of process 0's last batch
            accelerator.print(
                progress.line(
                    state.global_step, state.epoch + 1, cfg.epochs, loss.item()
                )
            )
        ckpt.maybe_crash(
            "step", state.global_step
        )  # fault injection for the resume tests
        if epoch_end:
            break  # the recipe's step count: a last partial accumulation does not step
        stopping = stop.agreed(accelerator)
        if stopping or (
            cfg.checkpoint_every_steps
            and state.global_step % cfg.checkpoint_every_steps == 0
        ):
            keep_epoch_sums()
            save(state)
            if stopping:
                raise KeyboardInterrupt  # saved: --resume auto continues from this step
    bar.close()
    keep_epoch_sums()
    return accelerator.reduce(loss_sum / max(state.loss_batches, 1), "mean").item()


def evaluate_epoch(
    cfg, resolved, accelerator, model, ema, train_set, val_loader, num_classes, epoch
):
    """Precise BN (if asked), then val top-1/top-5/loss of the model and of its EMA (if any)."""
    if resolved.precise_bn_batches:
        seed = (
            cfg.seed * 1000 + epoch
        ) * 1000 + accelerator.process_index  # other images per process
        subset = random_subset(
            train_set, resolved.precise_bn_batches * cfg.batch_size, seed
        )
        loader = build_dataloader(
            subset, cfg.batch_size, train=False, num_workers=cfg.num_workers
        )
        batches = (images.to(accelerator.device) for images, _ in loader)
        precise_bn(
            accelerator.unwrap_model(model),
            batches,
            resolved.precise_bn_batches,
            accelerator,
        )
    show = accelerator.is_local_main_process and sys.stderr.isatty()
    metrics = {
        f"val_{k}": v
        for k, v in evaluate(model, val_loader, accelerator, num_classes, show).items()
    }
    if ema is not None:
        ema_metrics = evaluate(ema.module, val_loader, accelerator, num_classes, show)
        metrics.update({f"val_ema_{k}": v for k, v in ema_metrics.items()})
    return metrics


def finish_epoch(cfg, accelerator, state, evaluate_now, images_per_s=None):
    """Evaluate the epoch just trained (if its evaluation is pending), then log and print its record."""
    record = state.history[-1]
    if state.eval_pending:
        record.update(evaluate_now(record["epoch"] - 1))
        state.eval_pending = False
        if record["val_top1"] > state.best_top1:
            state.best_top1, state.best_step = record["val_top1"], state.global_step
    accelerator.log(
        {f"epoch/{k}": v for k, v in record.items()}, step=state.global_step
    )
    accelerator.print(
        f"epoch {record['epoch']:3d}/{cfg.epochs}  train loss {record['train_loss']:.4f}  "
        + (
            f"val top-1 {record['val_top1']:6.2f}%  top-5 {record['val_top5']:6.2f}%  "
            if "val_top1" in record
            else ""
        )
        + (f"({images_per_s:.1f} img/s)" if images_per_s else "")
    )


def export_final(cfg, resolved, accelerator, model, ema, state, num_classes, changes):
    """Write model.safetensors (and model_ema.safetensors) plus final.json into output_dir."""
    out = Path(cfg.output_dir)
    meta = {
        "model": cfg.model,
        "num_classes": str(num_classes),
        "global_step": str(state.global_step),
    }
    if accelerator.is_main_process:
        save_safetensors(
            accelerator.unwrap_model(model, keep_torch_compile=False),
            out / "model.safetensors",
            meta,
        )
        if ema is not None:
            save_safetensors(ema.module, out / "model_ema.safetensors", meta)
        write_json_atomic(
            out / "final.json",
            run_metadata(
                accelerator,
                {
                    "config": config_to_dict(
                        dataclasses.replace(
                            cfg, mixed_precision=accelerator.mixed_precision
                        )
                    ),
                    "config_changes": changes,
                    "recipe": dataclasses.asdict(resolved),
                    "metrics": state.history[-1] if state.history else {},
                    "best": {"val_top1": state.best_top1, "step": state.best_step},
                    "history": state.history,
                },
            ),
        )
    accelerator.wait_for_everyone()


def start(cfg, args):
    """The Accelerator, the checkpoint to resume from (or None), and the run settings a checkpoint stores:
    the config, what Accelerate actually uses, and the config changes allowed so far."""
    out = Path(cfg.output_dir)
    accelerator = Accelerator(
        mixed_precision=launcher_precision(cfg),
        gradient_accumulation_steps=cfg.grad_accum_steps,
        log_with=["tensorboard", CsvTracker("train", out / "logs")],
        project_config=ProjectConfiguration(
            project_dir=str(out), logging_dir=str(out / "logs")
        ),
        dataloader_config=DataLoaderConfiguration(
            use_seedable_sampler=True, data_seed=cfg.seed
        ),
    )
    resume_from = ckpt.resolve_resume(
        cfg.resume,
        out,
        accelerator.num_processes,
        bool(cfg.ema_decay),
        warn=accelerator.is_main_process,
    )
    if resume_from is None and ckpt.list_checkpoints(out):
        raise CliError(
            f"{out} already holds checkpoints: pass --resume auto to continue that run, "
            "or choose another --output-dir."
        )
    settings = {
        **config_to_dict(cfg),
        "mixed_precision": accelerator.mixed_precision,
        "num_processes": accelerator.num_processes,
    }
    changes = []
    if resume_from is not None:
        stored = ckpt.read_run_config(resume_from)
        changed = ckpt.check_resume_settings(
            stored["settings"], settings, args.allow_config_change, resume_from
        )
        step = ckpt.read_trainer_state(resume_from).global_step
        changes = stored.get("config_changes", []) + (
            [{"step": step, "changes": changed}] if changed else []
        )
    return accelerator, resume_from, {"settings": settings, "config_changes": changes}


def resume(
    cfg,
    resolved,
    accelerator,
    resume_from,
    model,
    optimizer,
    scheduler,
    ema,
    run_config,
):
    """Load the checkpoint (if any) and write the run's records: config.yaml once (a resume never
    rewrites it), metrics.csv cut back to the checkpoint's step, run.json with what is really used."""
    out, state = Path(cfg.output_dir), ckpt.TrainerState()
    if resume_from is not None:
        state = ckpt.load_checkpoint(accelerator, resume_from, model, optimizer, ema)
        ckpt.restore_schedule(
            scheduler,
            optimizer,
            state.global_step,
            resolved.lr,
            {
                "momentum": cfg.momentum,
                "nesterov": cfg.nesterov,
                "weight_decay": cfg.weight_decay,
            },
        )
        accelerator.print(
            f"resumed from {resume_from} at step {state.global_step} "
            f"({state.epoch} epochs and {state.batches_done} batches done)"
        )
    if accelerator.is_main_process:
        if resume_from is None:
            save_config(
                dataclasses.replace(cfg, mixed_precision=accelerator.mixed_precision),
                out / "config.yaml",
            )
        else:
            truncate_metrics_csv(
                out / "logs" / "metrics.csv", state.global_step, not state.eval_pending
            )
        write_json_atomic(
            out / "run.json",
            run_metadata(
                accelerator,
                {
                    "recipe": dataclasses.asdict(resolved),
                    "resumed_from": str(resume_from or ""),
                    "config_changes": run_config["config_changes"],
                },
            ),
        )
    return state


def train(argv=None):
    """Train (or resume) the run described by the command line; returns its TrainerState. Bad input
    raises an error that names the problem, before any work is done where it can be found early."""
    cfg, args = parse_args(argv)
    launcher_precision(cfg)
    launch = PartialState(
        cpu=parse_flag_from_env("ACCELERATE_USE_CPU")
    )  # the processes as the Accelerator sees them
    check_process_count(
        launch.num_processes
    )  # e.g. --multi_gpu without a GPU: refused before any write
    out = check_writable(cfg.output_dir)
    with (
        RunLock(out) if launch.is_main_process else contextlib.nullcontext()
    ):  # one run per output_dir
        accelerator, resume_from, run_config = start(cfg, args)
        if args.check_data:
            check_images(cfg, accelerator)
        seed_everything(cfg.seed)
        train_set, train_loader, val_loader = build_data(cfg)
        num_classes = cfg.num_classes or len(train_set.classes)
        resolved = resolve_recipe(cfg, accelerator.num_processes, len(train_set))
        accelerator.print(describe(resolved))

        model, optimizer, scheduler, ema, train_loader, val_loader = build_training(
            cfg, resolved, accelerator, num_classes, train_loader, val_loader
        )
        state = resume(
            cfg,
            resolved,
            accelerator,
            resume_from,
            model,
            optimizer,
            scheduler,
            ema,
            run_config,
        )
        accelerator.init_trackers("train", config=flat_hparams(config_to_dict(cfg)))

        def save(state):
            ckpt.save_checkpoint(
                accelerator,
                out,
                state,
                cfg.keep_last,
                model,
                optimizer,
                ema,
                run_config,
            )

        def evaluate_now(epoch):
            return evaluate_epoch(
                cfg,
                resolved,
                accelerator,
                model,
                ema,
                train_set,
                val_loader,
                num_classes,
                epoch,
            )

        progress = (
            None
            if sys.stderr.isatty()
            else ProgressLines(
                resolved.total_steps,
                state.global_step,
                args.progress_every,
                resolved.total_batch,
            )
        )
        if (
            state.eval_pending
        ):  # resumed from the checkpoint taken between training and evaluation
            finish_epoch(cfg, accelerator, state, evaluate_now)
        with StopRequest() as stop:  # Ctrl-C: a checkpoint at the next step, then stop
            for epoch in range(state.epoch, cfg.epochs):
                train_set.set_epoch(epoch)
                train_loader.set_epoch(epoch)
                meter, steps_before = ThroughputMeter(), state.global_step
                train_loss = train_one_epoch(
                    cfg,
                    resolved,
                    accelerator,
                    model,
                    optimizer,
                    scheduler,
                    ema,
                    train_loader,
                    state,
                    save,
                    progress,
                    stop,
                )
                meter.update((state.global_step - steps_before) * resolved.total_batch)
                state.epoch, state.batches_done, state.loss_sums, state.loss_batches = (
                    epoch + 1,
                    0,
                    [],
                    0,
                )
                state.history.append(
                    {
                        "epoch": epoch + 1,
                        "step": state.global_step,
                        "train_loss": train_loss,
                    }
                )
                state.eval_pending = (
                    epoch + 1
                ) % cfg.eval_every_epochs == 0 or epoch + 1 == cfg.epochs
                save(
                    state
                )  # before evaluating: a bad validation image cannot cost the epoch's training
                if stop.agreed(accelerator):
                    raise KeyboardInterrupt  # saved: --resume auto evaluates this epoch and goes on
                finish_epoch(cfg, accelerator, state, evaluate_now, meter.rate())

        export_final(
            cfg,
            resolved,
            accelerator,
            model,
            ema,
            state,
            num_classes,
            run_config["config_changes"],
        )
        accelerator.end_training()
        return state


def main(argv=None):
    """The command-line entry point: :func:`train`, with bad input reported as one ``error:`` line (exit 2)."""
    return run_main(train, argv)


if __name__ == "__main__":
    main()
