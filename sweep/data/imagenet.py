"""ImageNet-style folder-per-class JPEG trees (``root/train/<class>/*.JPEG``,
``root/val/<class>/*.JPEG``), decoded with Pillow in DataLoader workers.

Training crops are RandomResizedCrop (the torchvision/timm algorithm, reimplemented on
PIL because no CPU torchvision build exists here); evaluation is resize-then-centre-crop.
Flip, AutoAugment, normalisation and mixing run batched on the training device
(``sweep.augment``). Each training sample carries its own seed drawn from (seed, epoch),
so the order *and* every crop of an epoch are reproducible whatever the worker count.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from sweep.data.base import STREAM_CROPS, Batch, Data, epoch_generator
from sweep.errors import UserError

EXTENSIONS = (".jpeg", ".jpg", ".png")
LAYOUT = ("expected data.root/train/<class>/*.JPEG and data.root/val/<class>/*.JPEG "
          "(one folder per class, the same class names in both)")
RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}

Item = tuple[str, int]


def scan(root: str | None) -> tuple[list[str], list[Item], list[Item]]:
    """Class names (sorted) and (path, label) lists for train and val, checked up front
    so a wrong root fails at start-up rather than in a worker an hour in."""
    if root is None or str(root) == "":
        raise UserError(f"data.root is not set for imagenet; pass data.root=/path ({LAYOUT})")
    path = Path(str(root)).expanduser()
    if not path.is_dir():
        raise UserError(f"data.root={path} is not a folder; {LAYOUT}")
    classes = _class_folders(path / "train")
    index = {c: i for i, c in enumerate(classes)}
    train = _images(path / "train", classes, index, require_each=True)
    val_classes = _class_folders(path / "val")
    stray = sorted(set(val_classes) - set(classes))
    if stray:
        raise UserError(f"{path / 'val'} has class folder(s) {', '.join(stray[:3])} not in "
                        f"{path / 'train'}; {LAYOUT}")
    val = _images(path / "val", val_classes, index, require_each=False)
    return classes, train, val


def _class_folders(split: Path) -> list[str]:
    if not split.is_dir():
        raise UserError(f"{split} is not a folder; {LAYOUT}")
    classes = sorted(e.name for e in os.scandir(split) if e.is_dir())
    if not classes:
        raise UserError(f"{split} has no class folders; {LAYOUT}")
    return classes


def _images(split: Path, classes: Sequence[str], index: dict[str, int],
            require_each: bool) -> list[Item]:
    items: list[Item] = []
    for c in classes:
        files = sorted(e.name for e in os.scandir(split / c)
                       if e.is_file() and e.name.lower().endswith(EXTENSIONS))
        if require_each and not files:
            raise UserError(f"{split / c} holds no .JPEG/.jpg/.png images; {LAYOUT}")
        items += [(str(split / c / f), index[c]) for f in files]
    if not items:
        raise UserError(f"{split} holds no .JPEG/.jpg/.png images; {LAYOUT}")
    return items


def _open(path: str) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise UserError(f"cannot decode image {path} ({e}); replace or delete it") from None


def _to_tensor(im: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1)


def random_resized_crop_box(width: int, height: int, rng: np.random.Generator,
                            scale: tuple[float, float],
                            ratio: tuple[float, float]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a crop covering a random fraction ``scale`` of the
    area with log-uniform aspect ``ratio``; ten tries, then the largest centred crop
    within the ratio range (torchvision's RandomResizedCrop.get_params)."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return left, top, left + w, top + h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        w, h = int(round(height * ratio[1])), height
    else:
        w, h = width, height
    top, left = (height - h) // 2, (width - w) // 2
    return left, top, left + w, top + h


class TrainSet(Dataset):
    """Indexed by (image index, sample seed): the crop depends only on that seed."""

    def __init__(self, items: Sequence[Item], size: int, scale: tuple[float, float],
                 ratio: tuple[float, float], resample: Image.Resampling) -> None:
        self.items, self.size, self.scale, self.ratio = items, size, scale, ratio
        self.resample = resample

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, seed = key
        path, label = self.items[index]
        im = _open(path)
        box = random_resized_crop_box(im.width, im.height, np.random.default_rng(seed),
                                      self.scale, self.ratio)
        im = im.resize((self.size, self.size), self.resample, box=box)
        return _to_tensor(im), label


class EvalSet(Dataset):
    """Resize the short side to size / crop_ratio, then take the centred size x size."""

    def __init__(self, items: Sequence[Item], size: int, crop_ratio: float,
                 resample: Image.Resampling) -> None:
        self.items, self.size, self.resample = items, size, resample
        self.short = int(round(size / crop_ratio))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[index]
        im = _open(path)
        w, h = im.size
        if w <= h:
            nw, nh = self.short, int(self.short * h / w)
        else:
            nw, nh = int(self.short * w / h), self.short
        im = im.resize((nw, nh), self.resample)
        left, top = int(round((nw - self.size) / 2)), int(round((nh - self.size) / 2))
        im = im.crop((left, top, left + self.size, top + self.size))
        return _to_tensor(im), label


def collate(samples: list[tuple[torch.Tensor, int]]) -> Batch:
    return (torch.stack([s[0] for s in samples]),
            torch.tensor([s[1] for s in samples], dtype=torch.int64))


def _unwrap_worker_errors(loader: DataLoader) -> Iterator[Batch]:
    """A UserError raised in a worker comes back wrapped in a traceback; keep its one line."""
    try:
        yield from loader
    except UserError as e:
        lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else str(e)
        prefix = f"{UserError.__module__}.{UserError.__qualname__}: "
        raise UserError(last.removeprefix(prefix)) from None


class ImageFolderData(Data):
    """Train/val JPEG trees decoded on the fly; nothing is held in memory but paths."""

    def __init__(self, *, root: str | None, num_classes: int, image_size: int, workers: int,
                 crop_scale: tuple[float, float], crop_ratio: tuple[float, float],
                 eval_crop_ratio: float, interpolation: str,
                 mean: tuple[float, ...], std: tuple[float, ...], name: str = "imagenet") -> None:
        classes, train, val = scan(root)
        if len(classes) != num_classes:
            raise UserError(f"{root}/train has {len(classes)} class folders but "
                            f"data.num_classes={num_classes}; set data.num_classes="
                            f"{len(classes)} or point data.root at the full tree")
        if interpolation not in RESAMPLE:
            raise UserError(f"data.interpolation must be one of {', '.join(RESAMPLE)}, "
                            f"got {interpolation!r}")
        super().__init__(name=name, num_classes=num_classes, image_size=image_size,
                         train_size=len(train), test_size=len(val), mean=mean, std=std)
        self.classes = classes
        self.workers = workers
        resample = RESAMPLE[interpolation]
        self.train_set = TrainSet(train, image_size, crop_scale, crop_ratio, resample)
        self.eval_set = EvalSet(val, image_size, eval_crop_ratio, resample)

    def _loader(self, dataset: Dataset, generator: torch.Generator | None,
                **kwargs: object) -> DataLoader:
        return DataLoader(dataset, num_workers=self.workers, collate_fn=collate,
                          generator=generator, **kwargs)

    def train_batches(self, epoch: int, seed: int, batch_size: int) -> Iterator[Batch]:
        steps = self.steps_per_epoch(batch_size)
        g = epoch_generator(seed, epoch)
        n = steps * batch_size
        order = torch.randperm(self.train_size, generator=g)[:n].tolist()
        seeds = torch.randint(0, 2**62, (n,), generator=g).tolist()
        keys = list(zip(order, seeds, strict=True))
        batches = [keys[i:i + batch_size] for i in range(0, n, batch_size)]
        # The loader's own generator only seeds the workers' global RNGs, which no
        # transform here reads; it is fixed anyway so nothing can depend on the clock.
        loader = self._loader(self.train_set, epoch_generator(seed, epoch, STREAM_CROPS),
                              batch_sampler=batches)
        return _unwrap_worker_errors(loader)

    def test_batches(self, batch_size: int) -> Iterator[Batch]:
        if batch_size < 1:
            raise UserError(f"eval batch size must be a positive integer, got {batch_size}")
        loader = self._loader(self.eval_set, None, batch_size=batch_size, shuffle=False)
        return _unwrap_worker_errors(loader)
