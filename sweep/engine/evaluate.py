"""Evaluation of a trial's model and EMA: top-1 error on the test set, and pycls's
precise BatchNorm statistics recomputed before it."""

from __future__ import annotations

import torch

from sweep.data import Data, epoch_generator
from sweep.data.augment import BatchAugment
from sweep.data.base import STREAM_PRECISE_BN


@torch.inference_mode()
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


def _batchnorms(model: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


class _StopForward(Exception):
    pass


def _forward_to_last_bn(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Run the model only as far as its last BatchNorm (a ViT_C's stem): the layers
    after it cannot change any BN statistic."""
    def stop(*_):
        raise _StopForward

    handle = _batchnorms(model)[-1].register_forward_hook(stop)
    try:
        model(x)
    except _StopForward:
        pass
    finally:
        handle.remove()


@torch.no_grad()
def precise_bn(models: list[torch.nn.Module], data: Data, aug: BatchAugment, *, seed: int,
               epoch: int, images: int, batch_size: int, device: torch.device, amp: bool,
               channels_last: bool) -> None:
    """pycls's precise BN statistics (``BN.USE_PRECISE_STATS``): replace the running
    mean and variance of every BatchNorm of ``models`` (a trial's model and its EMA) by
    their average over ``images`` training images (full batches, train-time augmentation
    without mixing). The images come from the (seed, epoch) stream STREAM_PRECISE_BN, so
    a resumed trial recomputes exactly what an uninterrupted one did. A model without
    BatchNorm (ViT_P) is left alone."""
    models = [m for m in models if _batchnorms(m)]
    steps = min(images // batch_size, data.steps_per_epoch(batch_size))
    if not models or steps < 1:
        return
    gen = epoch_generator(seed, epoch, STREAM_PRECISE_BN, device=device)
    saved = {}
    for m in models:
        m.train()
        for bn in _batchnorms(m):
            saved[bn] = bn.momentum
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average: pycls's mean over batches
    order_seed = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device).item())
    batches = data.train_batches(epoch=epoch, seed=order_seed, batch_size=batch_size)
    for i, (x, _) in enumerate(batches):
        if i == steps:
            break
        x = aug.train_images(x.to(device, non_blocking=True), generator=gen)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            for m in models:
                _forward_to_last_bn(m, x)
    close = getattr(batches, "close", None)
    if close is not None:
        close()
    for bn, momentum in saved.items():
        bn.momentum = momentum
