"""The training loop of one trial, in named steps (pycls's ``setup_model / train_epoch /
test_epoch / train_model``): ``build`` the pieces, ``restore`` a checkpoint, then per
epoch ``train_epoch``, ``refresh_bn``, ``evaluate`` and ``checkpoint_state``;
``run_trial`` strings them together. The trial's lr and wd (batch-2048 units) are in its
config (``optimizer.lr``/``optimizer.wd``), resolved before the engine is called.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import distributed as dist

from sweep.data import Data, build_data, epoch_generator
from sweep.data.augment import BatchAugment
from sweep.data.base import STREAM_AUGMENT
from sweep.engine import checkpoint
from sweep.engine.config import architecture, first_diff
from sweep.engine.evaluate import precise_bn, top1_errors
from sweep.engine.recipe import (
    build_ema,
    build_optimizer,
    build_scheduler,
    ema_alpha,
    scaled_lr,
    update_ema,
    warmup_steps,
)
from sweep.errors import UserError
from sweep.models import ViTSpec, model_class

# Called after each epoch's checkpoint is on disk with the trial's identity, that epoch's
# metrics and the best EMA error so far, and the checkpoint's path.
OnEpoch = Callable[[dict, Path], None]
Log = Callable[[str], None] | None


def resolve_device(name: str) -> torch.device:
    """``device`` (auto | cpu | cuda, checked by the schema) on this machine."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device=cuda but no CUDA GPU is visible; use device=auto or device=cpu")
    return torch.device(name)


@dataclass
class Trial:
    """Everything one trial trains with, built once from its config."""

    data: Data
    model: torch.nn.Module
    forward: torch.nn.Module  # the model, or its torch.compile wrapper
    ema: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    aug: BatchAugment
    device: torch.device
    amp: bool
    channels_last: bool
    seed: int
    epochs: int
    batch_size: int
    eval_batch_size: int
    max_loss: float
    identity: dict  # the result columns that say which trial this is
    micro_batch: int | None = None  # data.micro_batch: gradient accumulation (None: whole)
    rank: int = 0  # this worker of a data-parallel trial (see sweep.engine.distributed)
    world: int = 1  # the trial's workers
    ddp: torch.nn.Module | None = None  # the DistributedDataParallel wrapper when world > 1
    warmup_steps: int = 0
    ema_alpha: float = 1.0
    ema_period: int = 1
    ema_warmup_copy: bool = True
    diverge_patience: int = 1
    precise_bn_images: int = 0
    config: dict | None = None  # what decides the trial's numbers (trial_identity_config)


@dataclass
class TrialProgress:
    """What a checkpoint carries forward: finished epochs and the time already spent."""

    history: list[dict] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def epoch(self) -> int:
        return len(self.history)


def lr_wd(cfg: DictConfig) -> tuple[float, float]:
    """The trial's lr and wd (batch-2048 units), from its config: the one place they are
    read. ``sweep.engine.tuned.resolve`` (a single trial) or the study (a sweep trial)
    writes them there."""
    lr, wd = cfg.optimizer.lr, cfg.optimizer.wd
    if lr is None or wd is None:
        raise UserError("optimizer.lr and optimizer.wd must be set for a trial; pass "
                        "optimizer.lr=... optimizer.wd=... or tuned=<study folder>")
    return float(lr), float(wd)


def build(cfg: DictConfig) -> Trial:
    """Data, model, EMA, optimizer and schedule of one trial, seeded from ``cfg.seed``."""
    lr, wd = lr_wd(cfg)
    epochs = int(cfg.schedule.epochs)
    device = resolve_device(cfg.device)
    torch.set_num_threads(int(cfg.threads))
    check_resolution(cfg.model, cfg.data.name, int(cfg.data.image_size),  # before any data
                     allow=bool(cfg.get("allow_resolution", False)))
    data = build_data(cfg.data, seed=int(cfg.data.seed))
    batch_size, seed, opt = int(cfg.data.batch_size), int(cfg.seed), cfg.optimizer
    spec = architecture(cfg.model)
    arch = model_class(spec)
    torch.manual_seed(seed)
    model = arch(spec, image_size=data.image_size, num_classes=data.num_classes).to(device)
    # The convolutions (a ViT's stem, all of a CNN) in channels-last, on every device:
    # on the CPU oneDNN's NHWC kernels train ViT_C's conv stem 1.27x and RegNetY 1.36x
    # faster than NCHW (bench/bench_cpu.py), and cost the patchify stem nothing.
    channels_last = True
    conv = model.stem if isinstance(spec, ViTSpec) else model
    conv.to(memory_format=torch.channels_last)
    steps_per_epoch = data.steps_per_epoch(batch_size)
    total_steps = steps_per_epoch * epochs
    decay = {k: opt[k] for k in ("bn_wd", "ln_wd", "bias_wd", "decay_embeddings")}
    optimizer = build_optimizer(
        model, name=opt.name, wd=wd, decay=decay,
        lr=scaled_lr(lr, batch_size=batch_size, ref_batch=int(opt.ref_batch)),
        betas=opt.betas, eps=opt.eps, momentum=opt.momentum, nesterov=opt.nesterov)
    warmup = warmup_steps(
        epochs=epochs, steps_per_epoch=steps_per_epoch, warmup_epochs=cfg.schedule.warmup_epochs,
        warmup_max_fraction=cfg.schedule.warmup_max_fraction)
    scheduler = build_scheduler(optimizer, total_steps=total_steps, warmup_steps=warmup,
                                warmup_factor=float(cfg.schedule.warmup_factor),
                                min_lr=float(cfg.schedule.min_lr))
    period, patience = int(cfg.ema_update_period), int(cfg.diverge_patience)
    cx = arch.complexity(spec, image_size=data.image_size, num_classes=data.num_classes)
    identity = {
        "model": cfg.model.name, "size": cfg.model.size, "stem": spec.stem,
        "gflops": cx.flops / 1e9, "params": cx.params, "optimizer": opt.name, "lr": lr,
        "wd": wd, "epochs": epochs, "batch_size": batch_size, "seed": seed,
        "data": data.name, "chance_error": data.chance_error,
    }
    return Trial(
        data=data, model=model, forward=torch.compile(model) if cfg.compile else model,
        ema=build_ema(model),
        optimizer=optimizer, scheduler=scheduler,
        aug=BatchAugment.from_config(cfg.data, num_classes=data.num_classes, device=device),
        device=device, amp=device.type == "cuda" and cfg.amp != "off",
        channels_last=channels_last, seed=seed, epochs=epochs, batch_size=batch_size,
        eval_batch_size=int(cfg.data.eval_batch_size),
        max_loss=float(cfg.diverge_factor) * math.log(data.num_classes), identity=identity,
        warmup_steps=warmup, ema_period=period, ema_warmup_copy=bool(cfg.ema_warmup_copy),
        ema_alpha=ema_alpha(horizon=float(cfg.ema_horizon), total_steps=total_steps,
                            period=period),
        diverge_patience=patience, precise_bn_images=int(cfg.precise_bn_images),
        micro_batch=cfg.data.get("micro_batch"))


def check_resolution(model: DictConfig, data: str, image_size: int, *, allow: bool) -> None:
    """Unless ``allow`` (``allow_resolution=true``), a model trains only at its design
    resolution, and a paper model only on ImageNet (the synthetic and IDX sets render at
    the model's size, so a 224-px paper model would otherwise train on them silently)."""
    if allow:
        return
    design = int(model.image_size)
    if image_size != design:
        raise UserError(f"{model.name} is designed for {design} px but {data} serves "
                        f"{image_size} px; pass allow_resolution=true to train it anyway")
    if data != "imagenet" and model.get("preset") == "paper":
        raise UserError(f"{model.name} is a paper model, for ImageNet: pass data=imagenet "
                        f"data.root=..., or allow_resolution=true to train it on {data} "
                        "images")


def restore(trial: Trial, state: dict) -> TrialProgress:
    """Put a mid-run checkpoint's weights, optimizer, schedule and RNGs back."""
    trial.model.load_state_dict(state["model"])
    trial.ema.load_state_dict(state["ema"])
    trial.optimizer.load_state_dict(state["optimizer"])
    trial.scheduler.load_state_dict(state["scheduler"])
    checkpoint.set_rng_states(state["rng"])
    return TrialProgress(history=state["history"], elapsed_s=state["elapsed_s"])


def micro_batches(batch: int, micro: int | None, *, rank: int = 0,
                  world: int = 1) -> list[slice]:
    """The parts of a full batch that worker ``rank`` of ``world`` trains on: micro-batches
    rank, rank + world, ... of size ``micro`` (None: batch / world, one each)."""
    micro = int(micro) if micro else batch // max(1, world)
    count = batch // micro if micro >= 1 else 0
    if micro < 1 or batch % micro or count % world:
        raise UserError(f"data.batch_size {batch} must split into whole micro-batches of "
                        f"data.micro_batch {micro}, a multiple of the trial's {world} "
                        "worker(s) in number")
    return [slice(i * micro, (i + 1) * micro) for i in range(rank, count, world)]


def forward_backward(trial: Trial, x: torch.Tensor, target: torch.Tensor) -> float:
    """Leave in ``.grad`` the gradient of the full batch's mean loss, accumulated over
    this worker's micro-batches: each micro-batch's loss is scaled by its share of the
    batch (and by the number of workers, whose gradients DDP averages), so the step is
    the full-batch step. Returns the full batch's mean loss (summed over workers)."""
    trial.optimizer.zero_grad(set_to_none=True)
    n = x.shape[0]
    parts = micro_batches(n, trial.micro_batch, rank=trial.rank, world=trial.world)
    total = torch.zeros((), device=x.device)
    for i, part in enumerate(parts):
        xs, ts = x[part], target[part]
        if trial.channels_last:
            xs = xs.contiguous(memory_format=torch.channels_last)
        # DDP all-reduces once per step: on the last micro-batch's backward.
        last = i == len(parts) - 1
        sync = contextlib.nullcontext() if last or trial.ddp is None else trial.ddp.no_sync()
        with sync:
            with torch.autocast(trial.device.type, dtype=torch.bfloat16, enabled=trial.amp):
                logits = trial.forward(xs)
            loss = F.cross_entropy(logits.float(), ts)
            if len(parts) > 1 or trial.world > 1:
                loss = loss * ((part.stop - part.start) / n)
            (loss * trial.world if trial.world > 1 else loss).backward()
        total += loss.detach()
    if trial.world > 1:
        dist.all_reduce(total)  # every worker sees the batch's loss: they diverge together
    return total.item()


def distribute(trial: Trial, *, rank: int, world: int) -> None:
    """Make ``trial`` worker ``rank`` of a data-parallel trial over an initialized
    process group: the model wrapped in DDP (gradients all-reduced once per step)."""
    from torch.nn.parallel import DistributedDataParallel

    trial.rank, trial.world = rank, world
    ids = [trial.device.index or 0] if trial.device.type == "cuda" else None
    trial.ddp = DistributedDataParallel(trial.model, device_ids=ids)
    trial.forward = torch.compile(trial.ddp) if trial.forward is not trial.model \
        else trial.ddp


@torch.no_grad()
def sync_buffers(trial: Trial) -> None:
    """Give every worker rank 0's buffers (BatchNorm running stats, which each worker
    updated on its own micro-batches) and EMA, so evaluation and checkpoints agree."""
    if trial.world > 1:
        for module in (trial.model, trial.ema):
            for b in module.buffers():
                dist.broadcast(b, src=0)
            for p in module.parameters():
                dist.broadcast(p, src=0)


def train_epoch(trial: Trial, epoch: int) -> dict | None:
    """One pass over the training set; the epoch's loss and speed, or None if the loss
    diverged (non-finite once, or above ``max_loss`` for ``diverge_patience`` steps in a
    row)."""
    t0 = time.perf_counter()
    gen = epoch_generator(trial.seed, epoch, STREAM_AUGMENT, device=trial.device)
    loss_sum, seen, high = 0.0, 0, 0
    step = epoch * trial.data.steps_per_epoch(trial.batch_size)
    trial.model.train()
    for iteration, (x, y) in enumerate(trial.data.train_batches(epoch=epoch, seed=trial.seed,
                                         batch_size=trial.batch_size)):
        x = x.to(trial.device, non_blocking=True)
        y = y.to(trial.device, non_blocking=True)
        x, target = trial.aug.train(x, y, generator=gen)
        value = forward_backward(trial, x, target)
        high = high + 1 if value > trial.max_loss else 0
        if not math.isfinite(value) or high >= trial.diverge_patience:
            return None
        trial.optimizer.step()
        trial.scheduler.step()
        update_ema(trial.ema, trial.model, step=step, iteration=iteration,
                   alpha=trial.ema_alpha,
                   period=trial.ema_period, warmup_steps=trial.warmup_steps,
                   warmup_copy=trial.ema_warmup_copy)
        step += 1
        loss_sum += value * y.shape[0]
        seen += y.shape[0]
    return {"train_loss": loss_sum / max(1, seen),
            "lr": trial.optimizer.param_groups[0]["lr"],
            "images_per_s": seen / max(time.perf_counter() - t0, 1e-9)}


def evaluate(trial: Trial) -> tuple[float, float]:
    """Top-1 error (%) of the model and of its EMA."""
    error, ema_error = top1_errors(
        [trial.forward, trial.ema], trial.data.test_batches(trial.eval_batch_size),
        aug=trial.aug, device=trial.device, amp=trial.amp, channels_last=trial.channels_last)
    return error, ema_error


def refresh_bn(trial: Trial, epoch: int) -> None:
    """Precise BN statistics of the model and its EMA for this epoch."""
    precise_bn([trial.model, trial.ema.module], trial.data, trial.aug, seed=trial.seed,
               epoch=epoch, images=trial.precise_bn_images, batch_size=trial.batch_size,
               device=trial.device, amp=trial.amp, channels_last=trial.channels_last)


def result(trial: Trial, progress: TrialProgress, *, diverged: bool) -> dict:
    """The trial's outcome: ``best_error`` is the best EMA error over the completed epochs
    (pycls's sweep metric), ``error``/``ema_error`` those of the last completed epoch,
    also for a diverged run; chance error only where no epoch completed."""
    history = progress.history
    if not history:
        error = ema_error = best = trial.data.chance_error
    else:
        error, ema_error = history[-1]["error"], history[-1]["ema_error"]
        best = min(h["ema_error"] for h in history)
    return {**trial.identity, "diverged": diverged, "error": error, "ema_error": ema_error,
            "best_error": best, "epochs_run": len(history), "wall_s": progress.elapsed_s,
            "history": history}


def checkpoint_state(trial: Trial, progress: TrialProgress, *, final: dict | None,
                     keep_weights: bool) -> dict:
    """What goes to disk after an epoch. A finished sweep trial keeps only its result
    (``keep_weights=False``): hundreds of paper-size trials would otherwise leave
    hundreds of GB of weights behind."""
    state = {"epoch": progress.epoch, "history": progress.history,
             "elapsed_s": progress.elapsed_s, "result": final, "config": trial.config}
    if final is None or keep_weights:
        state |= {"model": trial.model.state_dict(), "ema": trial.ema.state_dict(),
                  "optimizer": trial.optimizer.state_dict(),
                  "scheduler": trial.scheduler.state_dict(), "rng": checkpoint.rng_states()}
    return state


def _log_epoch(log: Log, epoch: int, epochs: int, row: dict) -> None:
    if log:
        log(f"epoch {epoch}/{epochs}  loss {row['train_loss']:.3f}  err {row['error']:.2f}%  "
            f"ema err {row['ema_error']:.2f}%  lr {row['lr']:.2e}  "
            f"{row['images_per_s']:.0f} img/s")


def run_trial(cfg: DictConfig, *, workdir: Path, on_epoch: OnEpoch | None = None,
              log: Log = print, rank: int = 0, world: int = 1) -> dict:
    """Train one configuration, checkpointing every epoch into ``workdir``; a
    checkpoint already there is resumed. Returns the result (errors in percent). With
    ``world`` > 1 this is worker ``rank`` of a data-parallel trial (a process group is
    initialized; ``sweep.engine.distributed`` starts them): only rank 0 writes, logs and
    reports."""
    started = time.perf_counter()
    trial = build(cfg)
    if world > 1:
        distribute(trial, rank=rank, world=world)
    if rank != 0:
        on_epoch, log = None, None
    ckpt_path = Path(workdir) / checkpoint.CHECKPOINT
    trial.config = trial_identity_config(cfg)
    state = checkpoint.load(ckpt_path)
    check_same_config(state, trial.config, ckpt_path)
    progress = TrialProgress()
    if state is not None:
        if state.get("result") is not None:
            return state["result"]
        progress = restore(trial, state)
        if log:
            log(f"resuming {cfg.model.name} from epoch {progress.epoch} ({ckpt_path})")
    spent = progress.elapsed_s
    for epoch in range(progress.epoch, trial.epochs):
        stats = train_epoch(trial, epoch)
        progress.elapsed_s = spent + time.perf_counter() - started
        if stats is None:
            if log:
                log(f"epoch {epoch + 1}/{trial.epochs}: loss diverged; stopping")
            final = result(trial, progress, diverged=True)
            if rank == 0:
                checkpoint.save(ckpt_path, {"result": final, "config": trial.config})
            return final
        sync_buffers(trial)
        refresh_bn(trial, epoch)
        error, ema_error = evaluate(trial)
        progress.elapsed_s = spent + time.perf_counter() - started
        row = {"epoch": epoch + 1, **stats, "error": error, "ema_error": ema_error,
               "elapsed_s": progress.elapsed_s}
        progress.history.append(row)
        done = epoch + 1 == trial.epochs
        final = result(trial, progress, diverged=False) if done else None
        if rank == 0:
            checkpoint.save(ckpt_path, checkpoint_state(trial, progress, final=final,
                                                        keep_weights=bool(cfg.keep_weights)))
        _log_epoch(log, epoch + 1, trial.epochs, row)
        if on_epoch is not None:
            best = min(h["ema_error"] for h in progress.history)
            # The trial's lr (batch-2048 units) keeps its name; this epoch's actual lr
            # travels as epoch_lr.
            on_epoch({**row, **trial.identity, "epoch_lr": row["lr"], "best_error": best,
                      "diverged": False}, ckpt_path)
    return result(trial, progress, diverged=False)


# Keys that do not change a trial's numbers: where it writes, how many threads, what it
# keeps on disk, where its lr/wd came from (the values themselves are in optimizer).
NOT_IDENTITY = ("out", "threads", "keep_weights", "tuned")


def trial_identity_config(cfg: DictConfig) -> dict:
    """The resolved config that decides a trial's result (its lr and wd included)."""
    return {k: v for k, v in config_dict(cfg).items() if k not in NOT_IDENTITY}


def check_same_config(state: dict | None, config: dict, path: Path) -> None:
    """Refuse a checkpoint written under another config: resuming it, or returning its
    result, would report one config's numbers under another's name."""
    if state is None:
        return
    if state.get("config") is None:
        raise UserError(f"{path} records no config (written by an older vitstab); use "
                        "another out= folder, or delete it to start over")
    found = first_diff(state["config"], config)
    if found:
        raise UserError(f"{path} holds a trial of another config ({found}); use another "
                        "out= folder, or delete it to start over")


def config_dict(cfg: DictConfig) -> dict:
    """The fully resolved config as plain data (for result.json and Ray)."""
    return OmegaConf.to_container(cfg, resolve=True)
