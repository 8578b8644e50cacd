"""The dataset interface the trainer sees, an in-memory implementation of it, and the
(seed, epoch) -> randomness rule that makes resumed trials see the batches an
uninterrupted run would."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

import numpy as np
import torch

from sweep.errors import UserError

Batch = tuple[torch.Tensor, torch.Tensor]

# The random streams of an epoch: data order is (seed, epoch); the others add a number.
STREAM_CROPS = 1  # per-image crop seeds of loaders that crop while decoding
STREAM_AUGMENT = 2  # batch augmentation on the training device
STREAM_DALI = 3  # the seed of a GPU (DALI) decoding pipeline
STREAM_PRECISE_BN = 4  # the images and augmentation of precise BatchNorm statistics


def epoch_seed(seed: int, epoch: int, *extra: int) -> int:
    """A 63-bit seed that depends only on (seed, epoch, *extra), well mixed so nearby
    seeds and epochs give unrelated streams."""
    state = np.random.SeedSequence([int(seed), int(epoch), *map(int, extra)])
    hi, lo = state.generate_state(2, np.uint32)
    return (int(hi) << 31) ^ int(lo)


def epoch_generator(seed: int, epoch: int, *extra: int,
                    device: torch.device | str = "cpu") -> torch.Generator:
    """The generator for one random stream of one epoch (data order, crops, batch
    augmentation: each passes its own ``extra`` stream number). Every per-epoch draw in
    vitstab comes from here, so a resumed trial draws what an uninterrupted one would."""
    return torch.Generator(device).manual_seed(epoch_seed(seed, epoch, *extra))


class Data(ABC):
    """A train/test image-classification set serving uint8 (N, 3, H, W) CPU batches.

    Normalisation and all per-batch augmentation happen on the training device
    (``sweep.augment.BatchAugment``), so batches here are raw pixels."""

    def __init__(self, *, name: str, num_classes: int, image_size: int, train_size: int,
                 test_size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.name = name
        self.num_classes = num_classes
        self.image_size = image_size
        self.train_size = train_size
        self.test_size = test_size
        self.mean = mean
        self.std = std

    @property
    def chance_error(self) -> float:
        """Top-1 error (%) of guessing: the ceiling a diverged run is compared with."""
        return 100.0 * (1.0 - 1.0 / self.num_classes)

    def steps_per_epoch(self, batch_size: int) -> int:
        """Full batches per epoch (the last incomplete batch is dropped)."""
        if batch_size < 1:
            raise UserError(f"batch size must be a positive integer, got {batch_size}")
        steps = self.train_size // batch_size
        if steps == 0:
            raise UserError(
                f"batch size {batch_size} is larger than the {self.name} train set "
                f"({self.train_size} images); lower data.batch_size"
            )
        return steps

    @abstractmethod
    def train_batches(self, epoch: int, seed: int, batch_size: int) -> Iterator[Batch]:
        """One epoch of shuffled full batches; order and crops depend only on (seed, epoch)."""

    @abstractmethod
    def test_batches(self, batch_size: int) -> Iterator[Batch]:
        """All test images in a fixed order, unaugmented."""

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, classes={self.num_classes}, "
                f"size={self.image_size}, train={self.train_size}, test={self.test_size})")


class TensorData(Data):
    """A set small enough to hold as uint8 tensors (synthetic, CIFAR-10: 180 MB)."""

    def __init__(self, *, name: str, train: Batch, test: Batch, num_classes: int,
                 mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        (xtr, ytr), (xte, yte) = train, test
        super().__init__(name=name, num_classes=num_classes, image_size=int(xtr.shape[-1]),
                         train_size=len(xtr), test_size=len(xte), mean=mean, std=std)
        self.train_images, self.train_labels = xtr.contiguous(), ytr.long()
        self.test_images, self.test_labels = xte.contiguous(), yte.long()

    def train_batches(self, epoch: int, seed: int, batch_size: int) -> Iterator[Batch]:
        steps = self.steps_per_epoch(batch_size)
        order = torch.randperm(self.train_size, generator=epoch_generator(seed, epoch))
        for i in range(steps):
            idx = order[i * batch_size:(i + 1) * batch_size]
            yield self.train_images[idx], self.train_labels[idx]

    def test_batches(self, batch_size: int) -> Iterator[Batch]:
        if batch_size < 1:
            raise UserError(f"eval batch size must be a positive integer, got {batch_size}")
        for i in range(0, self.test_size, batch_size):
            yield (self.test_images[i:i + batch_size], self.test_labels[i:i + batch_size])
