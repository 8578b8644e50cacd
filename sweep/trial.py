"""One trial: train one (model, optimizer, lr, wd, epochs, seed) and evaluate it each epoch.

This file is the training loop. The sweep runner and ``python -m sweep.train`` both call
``run_trial``; everything below it takes explicit arguments.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from sweep import checkpoint
from sweep.augment import BatchAugment
from sweep.config import lookup_tuned, model_spec
from sweep.data import build_data
from sweep.errors import UserError
from sweep.models import ViT
from sweep.recipe import (
    OPTIMIZERS,
    build_ema,
    build_optimizer,
    build_scheduler,
    check_lr_wd,
    scaled_lr,
    warmup_steps,
)

# Called after each epoch's checkpoint is on disk with the trial's identity, that epoch's
# metrics and the best EMA error so far, and the checkpoint's path.
OnEpoch = Callable[[dict, Path], None]


def resolve_lr_wd(cfg: DictConfig) -> tuple[float, float]:
    """The batch-2048 lr/wd: given explicitly, else the model's tuned values."""
    name = cfg.optimizer.name
    if name not in OPTIMIZERS:
        raise UserError(f"unknown optimizer '{name}'; choose one of: {', '.join(OPTIMIZERS)}")
    tuned = lookup_tuned(cfg.model, name, cfg.data.name)
    out = []
    for key in ("lr", "wd"):
        value = cfg.optimizer.get(key)
        if value is None:
            if tuned is None:
                raise UserError(
                    f"model {cfg.model.name} has no tuned {key} for {name} on "
                    f"{cfg.data.name}; pass optimizer.{key}=... or run the tune study first"
                )
            value = tuned[key]
        out.append(float(value))
    check_lr_wd(*out)
    return out[0], out[1]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device=cuda but no CUDA GPU is visible; use device=auto or device=cpu")
    if name not in ("cpu", "cuda"):
        raise UserError(f"unknown device '{name}'; use auto, cpu or cuda")
    return torch.device(name)


def epoch_generator(seed: int, epoch: int, device: torch.device) -> torch.Generator:
    """Augmentation randomness of an epoch depends on (seed, epoch) only, so a resumed
    trial draws exactly what an uninterrupted one would."""
    return torch.Generator(device).manual_seed(seed * 1_000_003 + epoch)


@torch.no_grad()
def top1_errors(models: list[torch.nn.Module], batches, *, aug: BatchAugment,
                device: torch.device, amp: bool, channels_last: bool) -> list[float]:
    """Top-1 error (%) of each model, in one pass over the test set: decoding ImageNet's
    validation images once per epoch, not once per model."""
    for m in models:
        m.eval()
    wrong, total = [0] * len(models), 0
    for x, y in batches:
        x = aug.eval(x.to(device, non_blocking=True))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            for i, m in enumerate(models):
                wrong[i] += (m(x).argmax(dim=1).cpu() != y).sum().item()
        total += y.numel()
    for m in models:
        m.train()
    return [100.0 * w / max(1, total) for w in wrong]


def run_trial(cfg: DictConfig, *, workdir: Path, on_epoch: OnEpoch | None = None,
              log: Callable[[str], None] | None = print) -> dict:
    """Train one configuration, checkpointing every epoch into ``workdir``; a checkpoint
    already there is resumed. Returns the result (errors in percent)."""
    started = time.perf_counter()
    lr, wd = resolve_lr_wd(cfg)
    epochs = int(cfg.schedule.epochs)
    if epochs < 1:
        raise UserError(f"schedule.epochs must be >= 1, got {epochs}")
    device = resolve_device(cfg.device)
    torch.set_num_threads(int(cfg.threads))
    amp = device.type == "cuda" and cfg.amp in ("auto", True, "bf16")
    channels_last = device.type == "cuda"

    data = build_data(cfg.data, seed=int(cfg.data.seed))
    batch_size = int(cfg.data.batch_size)
    spec = model_spec(cfg.model)
    seed = int(cfg.seed)
    torch.manual_seed(seed)
    model = ViT(spec, image_size=data.image_size, num_classes=data.num_classes).to(device)
    if channels_last:
        model.stem.to(memory_format=torch.channels_last)
    cx = ViT.complexity(spec, image_size=data.image_size, num_classes=data.num_classes)
    steps_per_epoch = data.steps_per_epoch(batch_size)
    total_steps = steps_per_epoch * epochs
    opt = cfg.optimizer
    optimizer = build_optimizer(
        model, name=opt.name, wd=wd, no_decay=model.no_weight_decay(),
        lr=scaled_lr(lr, batch_size=batch_size, ref_batch=int(opt.ref_batch)),
        betas=opt.betas, eps=opt.eps, momentum=opt.momentum, nesterov=opt.nesterov,
    )
    scheduler = build_scheduler(optimizer, total_steps=total_steps, warmup_steps=warmup_steps(
        epochs=epochs, steps_per_epoch=steps_per_epoch, warmup_epochs=cfg.schedule.warmup_epochs,
        warmup_max_fraction=cfg.schedule.warmup_max_fraction))
    ema = build_ema(model, horizon=float(cfg.ema_horizon), total_steps=total_steps)
    aug = BatchAugment.from_config(cfg.data, num_classes=data.num_classes, device=device)
    fwd = torch.compile(model) if cfg.compile else model
    max_loss = float(cfg.diverge_factor) * math.log(data.num_classes)

    base = {
        "model": cfg.model.name, "stem": spec.stem, "gflops": cx.flops / 1e9,
        "params": cx.params, "optimizer": opt.name, "lr": lr, "wd": wd, "epochs": epochs,
        "batch_size": batch_size, "seed": seed, "data": data.name,
        "chance_error": data.chance_error,
    }
    ckpt_path = Path(workdir) / checkpoint.CHECKPOINT
    state = checkpoint.load(ckpt_path)
    history: list[dict] = []
    start_epoch, elapsed0 = 0, 0.0
    if state is not None:
        if state.get("result") is not None:
            return state["result"]
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        checkpoint.set_rng_states(state["rng"])
        history, start_epoch, elapsed0 = state["history"], state["epoch"], state["elapsed_s"]
        if log:
            log(f"resuming {cfg.model.name} from epoch {start_epoch} ({ckpt_path})")

    def finish(diverged: bool) -> dict:
        errs = [h["ema_error"] for h in history]
        last = history[-1] if history else {}
        if diverged:
            error = ema_error = best = data.chance_error
        else:
            error, ema_error, best = last["error"], last["ema_error"], min(errs)
        return {**base, "diverged": diverged, "error": error, "ema_error": ema_error,
                "best_error": best, "epochs_run": len(history),
                "wall_s": elapsed0 + time.perf_counter() - started, "history": history}

    model.train()
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        gen = epoch_generator(seed, epoch, device)
        loss_sum, seen, diverged = 0.0, 0, False
        for x, y in data.train_batches(epoch=epoch, seed=seed, batch_size=batch_size):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            x, target = aug.train(x, y, generator=gen)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = fwd(x)
            loss = F.cross_entropy(logits.float(), target)
            value = loss.item()
            if not math.isfinite(value) or value > max_loss:
                diverged = True
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            ema.update_parameters(model)
            loss_sum += value * y.shape[0]
            seen += y.shape[0]
        train_s = time.perf_counter() - t0
        if diverged:
            if log:
                log(f"epoch {epoch + 1}/{epochs}: loss {value:.3g} diverged; stopping")
            result = finish(diverged=True)
            checkpoint.save(ckpt_path, {"result": result})
            return result
        error, ema_error = top1_errors(
            [fwd, ema], data.test_batches(int(cfg.data.eval_batch_size)), aug=aug,
            device=device, amp=amp, channels_last=channels_last)
        row = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(1, seen),
            "error": error,
            "ema_error": ema_error,
            "lr": optimizer.param_groups[0]["lr"],
            "images_per_s": seen / max(train_s, 1e-9),
            "elapsed_s": elapsed0 + time.perf_counter() - started,
        }
        history.append(row)
        done = epoch + 1 == epochs
        state = {"epoch": epoch + 1, "history": history, "elapsed_s": row["elapsed_s"],
                 "result": finish(False) if done else None}
        if not done or cfg.keep_weights:
            # A finished sweep trial keeps only its result: hundreds of paper-size
            # trials would otherwise leave hundreds of GB of weights behind.
            state |= {"model": model.state_dict(), "ema": ema.state_dict(),
                      "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "rng": checkpoint.rng_states()}
        checkpoint.save(ckpt_path, state)
        if log:
            log(f"epoch {epoch + 1}/{epochs}  loss {row['train_loss']:.3f}  "
                f"err {row['error']:.2f}%  ema err {row['ema_error']:.2f}%  "
                f"lr {row['lr']:.2e}  {row['images_per_s']:.0f} img/s")
        if on_epoch is not None:
            best = min(h["ema_error"] for h in history)
            # The trial's lr (batch-2048 units) keeps its name; this epoch's actual lr
            # travels as epoch_lr.
            on_epoch({**row, **base, "epoch_lr": row["lr"], "best_error": best,
                      "diverged": False}, ckpt_path)
    return finish(diverged=False)


def config_dict(cfg: DictConfig) -> dict:
    """The fully resolved config as plain data (for result.json and Ray)."""
    return OmegaConf.to_container(cfg, resolve=True)
