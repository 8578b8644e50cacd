"""Fashion-MNIST and MNIST from their four IDX files (gzipped or raw, told apart by their
first bytes), as Debian's ``dataset-fashion-mnist`` package installs them.

The decoded 28x28 greyscale arrays are kept once per process (a sweep's reused actor
does not decode again) and never written to: they are read-only numpy arrays. Each batch
is brought to the model's input on the fly, so a trial holds 28x28 bytes per image, not
3 x S x S: the 28x28 frame is padded with 2 black pixels to 32x32 (LeNet-5's MNIST
frame; the background is black already), resized bilinearly to S when S != 32, and its
one channel repeated to three.
"""

from __future__ import annotations

import functools
import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sweep.data.base import Batch, Data, epoch_generator
from sweep.errors import UserError

SIDE = 28  # IDX image side of (Fashion-)MNIST
FRAME = 32  # the side after padding, before any resize
GZIP_MAGIC = b"\x1f\x8b"
UBYTE = 0x08  # the IDX type code of unsigned bytes
SPLITS = {"train": 0, "test": 1}
STEMS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# How to get (or repair) each dataset's files: the fix every error message ends with.
SOURCES = {
    "fashion_mnist": "install Debian's package (apt-get install dataset-fashion-mnist, "
                     "files in /usr/share/datasets/fashion-mnist) or pass data.root=FOLDER "
                     "holding the four IDX files",
    "mnist": "pass data.root=FOLDER holding MNIST's four IDX files (gzipped or not)",
}


class IdxError(ValueError):
    """A file that is not the IDX array it should be; the message names the file."""


# -- files ---------------------------------------------------------------------------------


def find_file(folder: Path, stem: str) -> Path | None:
    """``stem`` as distributed (``.gz``), gunzipped, or with the ``.idx`` dot some
    copies of MNIST use (``train-images.idx3-ubyte``); the first that exists."""
    dotted = stem.replace("-idx", ".idx")
    for name in (f"{stem}.gz", stem, f"{dotted}.gz", dotted):
        if (folder / name).is_file():
            return folder / name
    return None


def find_files(root: str | None, name: str) -> dict[str, tuple[Path, Path]]:
    """{split: (images, labels)} under ``data.root``, or one line saying what is missing
    and how to get it."""
    if root is None or str(root) == "":
        raise UserError(f"data.root is not set for {name}; {SOURCES[name]}")
    folder = Path(str(root)).expanduser()
    if not folder.is_dir():
        raise UserError(f"data.root={folder} is not a folder; {SOURCES[name]}")
    found = {s: tuple(find_file(folder, stem) for stem in STEMS[s]) for s in STEMS}
    missing = [stem for s in STEMS for stem, p in zip(STEMS[s], found[s], strict=True)
               if p is None]
    if missing:
        raise UserError(f"data.root={folder} lacks {', '.join(f'{m}[.gz]' for m in missing)}"
                        f"; {SOURCES[name]}")
    return found  # type: ignore[return-value]


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """A uint8 IDX file of ``ndim`` dimensions, gzipped or raw (by its first two bytes).
    Every defect (gzip damage, wrong magic number, short or long payload) is an
    ``IdxError`` naming the file."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise IdxError(f"{path} cannot be read ({e.strerror})") from None
    if not raw:
        raise IdxError(f"{path} is empty")
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise IdxError(f"{path} is a damaged gzip file ({e})") from None
    magic = bytes([0, 0, UBYTE, ndim])
    if raw[:4] != magic:
        raise IdxError(f"{path} has magic number 0x{raw[:4].hex()}, expected "
                       f"0x{magic.hex()} (an IDX file of {ndim}-d uint8 data)")
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise IdxError(f"{path} is truncated: {len(raw)} bytes, shorter than its header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    want = int(np.prod(shape))
    if len(raw) - head != want:
        state = "truncated" if len(raw) - head < want else "too long"
        raise IdxError(f"{path} is {state}: its header declares {'x'.join(map(str, shape))} "
                       f"= {want} bytes of data, the file holds {len(raw) - head}")
    return np.frombuffer(raw, np.uint8, offset=head).reshape(shape)


@functools.lru_cache(maxsize=4)
def _decode(images: Path, labels: Path, stamp: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    x, y = read_idx(images, 3), read_idx(labels, 1)
    if x.shape[1:] != (SIDE, SIDE):
        raise IdxError(f"{images} holds {x.shape[1]}x{x.shape[2]} images, expected "
                       f"{SIDE}x{SIDE}")
    if len(x) != len(y):
        raise IdxError(f"{images} holds {len(x)} images but {labels} holds {len(y)} labels")
    assert not (x.flags.writeable or y.flags.writeable)  # views of bytes: a write raises
    return x, y


def decode(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """One split's (N, 28, 28) images and (N,) labels, as read-only uint8 arrays kept for
    the next trial of this process (keyed on the files' size and mtime, so a replaced
    file is read again)."""
    stamp = tuple(v for p in (images, labels) for v in (p.stat().st_size, p.stat().st_mtime_ns))
    return _decode(images.resolve(), labels.resolve(), stamp)


# -- subsets and pixels ----------------------------------------------------------------------


def balanced_subset(labels: np.ndarray, n: int | None, *, num_classes: int, seed: int,
                    split: str) -> np.ndarray:
    """Sorted indices of ``n`` images (None: all), ``n // num_classes`` of every class; the
    ``n % num_classes`` left over go one each to the first classes of a seeded shuffle
    of the classes. Which images: a seeded shuffle within each class, so the subset
    depends only on (seed, split, n) and the labels, and a smaller one is nearly
    contained in a larger one."""
    if n is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), SPLITS[split]]))
    quota = np.full(num_classes, n // num_classes)
    quota[rng.permutation(num_classes)[:n % num_classes]] += 1
    picked = []
    for k in range(num_classes):
        members = np.flatnonzero(labels == k)
        if len(members) < quota[k]:
            raise UserError(f"data.{split}_size={n} needs {quota[k]} images of class {k} but "
                            f"the {split} split has {len(members)}; lower data.{split}_size "
                            "or set it to null for every image")
        picked.append(members[rng.permutation(len(members))[:quota[k]]])
    return np.sort(np.concatenate(picked))


def to_model(images: np.ndarray, size: int) -> torch.Tensor:
    """(B, 28, 28) uint8 -> (B, 3, size, size) uint8: pad to 32 with black, bilinear
    resize to ``size`` (antialiased when shrinking), the grey channel repeated."""
    pad = (FRAME - SIDE) // 2
    x = torch.from_numpy(np.pad(images, ((0, 0), (pad, pad), (pad, pad))))[:, None]
    if size != FRAME:
        x = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False,
                          antialias=size < FRAME).round_().clamp_(0, 255).to(torch.uint8)
    return x.expand(-1, 3, -1, -1).contiguous()


def pixel_stats(images: np.ndarray, size: int, chunk: int = 2000) -> tuple[float, float]:
    """Mean and std of the pixels (in [0, 1]) that a model of ``size`` px sees, before
    augmentation: what data.mean and data.std hold (the three channels are equal)."""
    total = sq = 0.0
    for i in range(0, len(images), chunk):
        x = to_model(images[i:i + chunk], size)[:, 0].double().div_(255.0)
        total, sq = total + x.sum().item(), sq + x.square().sum().item()
    count = len(images) * size * size
    mean = total / count
    return mean, (sq / count - mean * mean) ** 0.5


# -- the dataset -----------------------------------------------------------------------------


# Up to this many bytes per split, the images are resized to the model's size once and
# held (one grey channel) instead of resized per batch, every epoch: 0.27 s an epoch of
# the Fashion-MNIST study's 10 s. Bilinear resizing is per image, so the bytes served are
# the same either way. All 60,000 training images at 64 px take 246 MB.
SERVED_CACHE_BYTES = 256 << 20


class IdxData(Data):
    """A (Fashion-)MNIST subset held as 28x28 bytes, served at the model's size."""

    def __init__(self, *, name: str, train: tuple[np.ndarray, np.ndarray],
                 test: tuple[np.ndarray, np.ndarray], num_classes: int, image_size: int,
                 mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        (self.train_images, train_labels), (self.test_images, test_labels) = train, test
        super().__init__(name=name, num_classes=num_classes, image_size=image_size,
                         train_size=len(train_labels), test_size=len(test_labels), mean=mean,
                         std=std)
        self.train_labels = torch.from_numpy(train_labels.astype(np.int64))
        self.test_labels = torch.from_numpy(test_labels.astype(np.int64))
        self._served: dict[str, torch.Tensor | None] = {}

    def _images(self, split: str, index: np.ndarray | slice) -> torch.Tensor:
        """Images ``index`` of ``split`` as (B, 3, size, size) uint8: from the resized copy
        when it fits SERVED_CACHE_BYTES, else resized now."""
        raw = self.train_images if split == "train" else self.test_images
        if split not in self._served:
            fits = len(raw) * self.image_size ** 2 <= SERVED_CACHE_BYTES
            self._served[split] = torch.cat(
                [to_model(raw[i:i + 1000], self.image_size)[:, :1]
                 for i in range(0, len(raw), 1000)]) if fits and len(raw) else None
        served = self._served[split]
        if served is None:
            return to_model(raw[index], self.image_size)
        if isinstance(index, np.ndarray):
            index = torch.from_numpy(index)
        return served[index].expand(-1, 3, -1, -1).contiguous()

    def train_batches(self, epoch: int, seed: int, batch_size: int) -> Iterator[Batch]:
        steps = self.steps_per_epoch(batch_size)
        order = torch.randperm(self.train_size, generator=epoch_generator(seed, epoch))
        for i in range(steps):
            idx = order[i * batch_size:(i + 1) * batch_size]
            yield self._images("train", idx.numpy()), self.train_labels[idx]

    def test_batches(self, batch_size: int) -> Iterator[Batch]:
        if batch_size < 1:
            raise UserError(f"eval batch size must be a positive integer, got {batch_size}")
        for i in range(0, self.test_size, batch_size):
            yield (self._images("test", slice(i, i + batch_size)),
                   self.test_labels[i:i + batch_size])


def build(name: str, *, root: str | None, seed: int, train_size: int | None,
          test_size: int | None,
          num_classes: int, image_size: int, mean: tuple[float, ...],
          std: tuple[float, ...]) -> IdxData:
    """``data=fashion_mnist`` or ``data=mnist``: the files under ``root``, checked, and the
    class-balanced subsets that ``train_size``/``test_size`` ask for."""
    sizes = {"train": train_size, "test": test_size}
    splits = {}
    for split, (images, labels) in find_files(root, name).items():
        try:
            x, y = decode(images, labels)
        except IdxError as e:
            raise UserError(f"{e}; replace it: {SOURCES[name]}") from None
        if y.size and int(y.max()) >= num_classes:
            raise UserError(f"{labels} holds label {int(y.max())}, outside 0..{num_classes - 1}"
                            f" (data.num_classes={num_classes}); replace it: {SOURCES[name]}")
        if sizes[split] is not None and sizes[split] > len(y):
            raise UserError(f"data.{split}_size={sizes[split]} exceeds the {len(y)} images of "
                            f"{images}; lower it or set it to null for every image")
        keep = balanced_subset(y, sizes[split], num_classes=num_classes, seed=seed, split=split)
        splits[split] = (x if sizes[split] is None else x[keep], y[keep])
    return IdxData(name=name, train=splits["train"], test=splits["test"],
                   num_classes=num_classes, image_size=image_size, mean=mean, std=std)
