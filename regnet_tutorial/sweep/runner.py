"""The sweep: sample models from design spaces, train each briefly, append one result line each.

The paper's method (Section 3.1) at laptop scale: every model is trained on the same small
data with the same short schedule, and its top-1 error is recorded next to the sample and its
complexity. The same command runs on one CPU or, under ``accelerate launch``, in P processes:
process ``r`` trains models ``r, r + P, r + 2P, ...`` of the unfinished list on its own device,
with no gradient exchange (each model is small), and all of them append to the one results file
(:mod:`regnet_tutorial.sweep.results_file`). Each model's training is seeded from the sweep seed,
its space and its index, so a result does not depend on which process trained it.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..anynet import AnyNet
from ..train.averaging import precise_bn
from ..train.schedule import lr_at
from ..util.env import git_commit, lock_status, seed_everything, versions
from ..util.progress import Progress
from .images import ImageSet, load_dataset
from .plan import SweepPlan, TrainSettings
from .results_file import ResultsFile, ResultsFileError, result_key
from .spaces import SamplingError, check_space_names, stream_name


def model_seed(sweep_seed: int, space: str, index: int, replicate: int = 0) -> int:
    """The seed of one model's training, from (sweep seed, space, index, replicate) alone (31 bits).

    Replicate 0 is a model's first training run; replicate ``r > 0`` trains the same
    architecture again from another seed, which measures the seed noise of a single run. The
    space enters by its stream name (:func:`~regnet_tutorial.sweep.spaces.stream_name`), so a
    renamed space trains its models from the seeds they were committed with."""
    key = f"{sweep_seed}/{stream_name(space)}/{index}" + (f"/r{replicate}" if replicate else "")
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


@dataclass
class TrainResult:
    """What training one model produced."""

    top1_error: float
    final_train_loss: float
    diverged: bool
    wall_time_s: float


def train_and_evaluate(
    model: torch.nn.Module, train: ImageSet, val: ImageSet, settings: TrainSettings,
    seed: int, device: torch.device | str = "cpu",
) -> TrainResult:
    """Train ``model`` on ``train`` (SGD, Nesterov momentum, per-step half-period cosine) and
    return its top-1 error (%) on ``val``. Batches are drawn by a generator seeded with ``seed``."""
    start = time.perf_counter()
    device = torch.device(device)
    # NHWC roughly doubles oneDNN's convolution speed on a CPU for these small models.
    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
    model.to(device=device, memory_format=memory_format)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=settings.lr, momentum=settings.momentum, nesterov=settings.momentum > 0,
        weight_decay=settings.weight_decay,
    )
    x_train = train.images.to(device).contiguous(memory_format=memory_format)
    y_train = train.labels.to(device)
    generator = torch.Generator().manual_seed(seed)
    total = settings.epochs * settings.steps_per_epoch
    step, loss_value = 0, float("nan")
    model.train()
    for _ in range(settings.epochs):
        order = torch.randperm(len(train), generator=generator).to(device)
        for i in range(settings.steps_per_epoch):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, total, 0, settings.lr)
            idx = order[i * settings.batch_size: (i + 1) * settings.batch_size]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            loss_value = loss.item()
    if settings.precise_bn_images > 0:
        # pycls's precise BN: after so few steps the running statistics lag far behind the weights.
        images = x_train[: settings.precise_bn_images]
        precise_bn(model, (images[i: i + settings.batch_size] for i in range(0, len(images), settings.batch_size)),
                   num_batches=math.ceil(len(images) / settings.batch_size))
    return TrainResult(evaluate_error(model, val, device), loss_value, not math.isfinite(loss_value),
                       time.perf_counter() - start)


@torch.no_grad()
def evaluate_error(model: torch.nn.Module, data: ImageSet, device: torch.device | str, batch_size: int = 500) -> float:
    """Top-1 error in percent of ``model`` on ``data``."""
    model.eval()
    wrong = 0
    for i in range(0, len(data), batch_size):
        x = data.images[i: i + batch_size].to(device)
        y = data.labels[i: i + batch_size].to(device)
        wrong += (model(x).argmax(dim=1) != y).sum().item()
    return 100.0 * wrong / len(data)


def device_name(device: torch.device) -> str:
    """A readable name of ``device``: the GPU model, or the CPU model."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{device.type} ({cpu})"


SWEEP_PACKAGES = ("torch", "torchvision", "accelerate", "numpy")
"""The versions each result line records (with Python's)."""

SampleFn = Callable[[str, int, int, tuple[float, float], dict[str, Any]], list[dict[str, Any]]]
SpecFn = Callable[[dict[str, Any]], Any]


def train_sample(
    sample: dict[str, Any], spec_fn: SpecFn, settings: TrainSettings, seed: int, train: ImageSet, val: ImageSet,
    device: torch.device | str,
) -> TrainResult:
    """Build ``sample``'s network, seeded with ``seed``, and train and score it with ``settings``."""
    seed_everything(seed)
    model = AnyNet(spec_fn(sample), num_classes=train.num_classes, in_channels=train.in_channels,
                   zero_init_last_bn=settings.zero_init_last_bn)
    return train_and_evaluate(model, train, val, settings, seed, device)


def run_meta(device: torch.device, process_index: int = 0, num_processes: int = 1) -> dict[str, Any]:
    """Where and with what a process trains: versions, commit, device, process and thread counts."""
    return {"process_index": process_index, "num_processes": num_processes, "versions": versions(SWEEP_PACKAGES),
            **lock_status(), "git_commit": git_commit(), "device": device_name(device),
            "torch_threads": torch.get_num_threads()}


def result_record(
    sample: dict[str, Any], result: TrainResult, replicate: int, seed: int, settings: dict[str, Any],
    meta: dict[str, Any],
) -> dict[str, Any]:
    """One line of a results file: the sample, what training gave, its seed and settings, and ``meta``."""
    return {**sample, **asdict(result), "replicate": replicate, "model_seed": seed, "settings": settings, **meta}


def run_sweep(
    plan: SweepPlan, out: str, sample_fn: SampleFn, spec_fn: SpecFn,
    data_dir: str | None = None, download: bool = False, cpu: bool = False, log_every_s: float = 60.0,
) -> int:
    """Run (or resume) ``plan`` into the results file ``out``; returns how many models this
    process trained. Works alone or as one of the processes of ``accelerate launch``."""
    from accelerate import Accelerator
    from accelerate.utils import broadcast_object_list

    accelerator = Accelerator(cpu=cpu)
    results = ResultsFile(out)
    rank, world = accelerator.process_index, accelerator.num_processes
    settings = plan.settings()

    def agree(error: str | None, done: list[str]) -> list[str]:
        """The main process's error (raised in every process, so none waits for another) and its
        list of finished models (read before any process writes, so the shares agree)."""
        message = [error, done]
        if world > 1:
            broadcast_object_list(message, from_process=0)
        if message[0] is not None:
            raise ResultsFileError(message[0])
        return message[1]

    with contextlib.ExitStack() as stack:
        error, done = None, []
        if accelerator.is_main_process:
            try:
                stack.enter_context(results.exclusive())
                results.repair()
                error = _old_space_names(results) or _different_sweep(results, settings)
                done = [result_key(r) for r in results.load()]
            except ResultsFileError as e:
                error = str(e)
        done_keys = set(agree(error, done))
        resolution = plan.sample_options.get("image_resolution")
        with accelerator.main_process_first():  # a --download happens once
            train = load_dataset(plan.train.dataset, "train", data_dir, download, plan.train.train_images,
                                 plan.seed, resolution)
            val = load_dataset(plan.train.dataset, "val", data_dir, download, plan.train.val_images,
                               plan.seed, resolution)
        options = {**plan.sample_options, "resolution": train.resolution, "num_classes": train.num_classes,
                   "in_channels": train.in_channels}
        per_space = [sample_fn(space, plan.n, plan.seed, plan.flops, options) for space in plan.spaces]
        # Interleaved (model 0 of every space, then model 1, ...): a sweep stopped early is balanced.
        samples = [s for group in zip(*per_space) for s in group]
        todo = [s for s in samples if result_key(s, plan.replicate) not in done_keys]
        mine = todo[rank::world]
        meta = run_meta(accelerator.device, rank, world)
        progress = Progress(len(samples), len(samples) - len(todo), accelerator.is_main_process, log_every_s)
        for sample in mine:
            seed = model_seed(plan.seed, sample["space"], sample["index"], plan.replicate)
            result = train_sample(sample, spec_fn, plan.train, seed, train, val, accelerator.device)
            results.append(result_record(sample, result, plan.replicate, seed, settings, meta))
            progress.update(len(samples) - len(todo) + _count_new(results, done_keys))
        accelerator.wait_for_everyone()
        progress.update(len(samples) - len(todo) + _count_new(results, done_keys), force=True)
        progress.close()
        return len(mine)


def _count_new(results: ResultsFile, old_keys: set[str]) -> int:
    return sum(1 for r in results.load() if result_key(r) not in old_keys)


def _old_space_names(results: ResultsFile) -> str | None:
    """An error message if ``results`` holds lines written under the old space keys: resuming
    would take an old ``regnetx`` line (the constrained space) for a RegNetX one."""
    for number, record in enumerate(results.load(), start=1):
        try:
            check_space_names(record, f"{results.path} line {number}")
        except SamplingError as e:
            return str(e)
    return None


def _different_sweep(results: ResultsFile, settings: dict[str, Any]) -> str | None:
    """An error message if ``results`` already holds lines made with other settings."""
    for record in results.load():
        theirs = record.get("settings") or {}
        if theirs != settings:
            diff = ", ".join(f"{k} {theirs.get(k)!r} there, {settings.get(k)!r} now"
                             for k in sorted(set(theirs) | set(settings)) if theirs.get(k) != settings.get(k))
            return (f"{results.path} holds results of a different sweep ({diff}); "
                    "resume with the same settings or choose another --out")
    return None
