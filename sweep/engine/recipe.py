"""The paper's optimization recipe: optimizers, lr scaling, warmup + cosine, EMA."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from sweep.errors import UserError

OPTIMIZERS = ("adamw", "sgd")


def check_optimizer(name: str) -> None:
    if name not in OPTIMIZERS:
        raise UserError(f"unknown optimizer '{name}'; choose one of: {', '.join(OPTIMIZERS)}")


def scaled_lr(lr: float, *, batch_size: int, ref_batch: int) -> float:
    """Paper lrs are quoted at batch 2048 and scale linearly with the batch."""
    return lr * batch_size / ref_batch


def check_lr_wd(lr: float, wd: float) -> None:
    if not (math.isfinite(lr) and lr > 0):
        raise UserError(f"optimizer.lr must be a positive number, got {lr}; "
                        "pass e.g. optimizer.lr=1e-3 (the lr at batch 2048)")
    if not (math.isfinite(wd) and wd >= 0):
        raise UserError(f"optimizer.wd must be >= 0, got {wd}; pass e.g. optimizer.wd=0.05")


def param_groups(model: nn.Module, *, wd: float, no_decay: set[str]) -> list[dict]:
    """Weight decay on weights only: none on norm gains, biases and embeddings."""
    decay, skip = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (skip if name in no_decay else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": skip, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, *, name: str, lr: float, wd: float, no_decay: set[str],
                    betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8,
                    momentum: float = 0.9, nesterov: bool = True) -> torch.optim.Optimizer:
    """AdamW or SGD (Nesterov) at the actual, already batch-scaled lr."""
    check_optimizer(name)
    groups = param_groups(model, wd=wd, no_decay=no_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps)
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov)


def warmup_steps(*, epochs: int, steps_per_epoch: int, warmup_epochs: float,
                 warmup_max_fraction: float) -> int:
    """Paper: 5 warmup epochs of 50 or more; short schedules warm up for the same fraction."""
    return round(min(warmup_epochs, warmup_max_fraction * epochs) * steps_per_epoch)


class WarmupCosine:
    """lr multiplier: linear warmup to 1, then half-period cosine to 0 (per step)."""

    def __init__(self, *, total_steps: int, warmup_steps: int) -> None:
        self.total, self.warmup = total_steps, warmup_steps

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        t = (step - self.warmup) / max(1, self.total - self.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def build_scheduler(optimizer: torch.optim.Optimizer, *, total_steps: int,
                    warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, WarmupCosine(total_steps=total_steps, warmup_steps=warmup_steps)
    )


def build_ema(model: nn.Module, *, horizon: float, total_steps: int) -> AveragedModel:
    """EMA of weights and buffers with a time constant of ``horizon`` × the run's steps,
    so short and long schedules average over the same fraction of training (as pycls's
    batch- and epoch-adjusted EMA does)."""
    decay = 1.0 - 1.0 / max(1.0, horizon * total_steps)
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
