"""ImageNet-style folder-per-class JPEG trees (``root/train/<class>/*.JPEG``,
``root/val/<class>/*.JPEG``), decoded in DataLoader workers (Pillow or simplejpeg) or on
the GPU (NVIDIA DALI, ``sweep.data.dali``), chosen by ``data.decoder``.

Training crops are pycls's ``random_sized_crop`` (``data.crop: pycls``; torchvision's
RandomResizedCrop with ``torchvision``), on PIL because no CPU torchvision build exists
here; evaluation is pycls's resize-the-short-side-then-centre-crop.
Flip, AutoAugment, normalisation and mixing run batched on the training device
(``sweep.augment``). Each training sample carries its own seed drawn from (seed, epoch),
so the order *and* every crop of an epoch are reproducible whatever the worker count.

The crop box is drawn from the image's header size, in original-image coordinates,
*before* any pixel is decoded; the JPEG is then decoded at the smallest DCT scale
(1/2, 1/4, 1/8) that still leaves the box at least ``image_size`` pixels on each side,
and the box is scaled to match. So the box depends only on (seed, epoch) whichever CPU
decoder runs, and the reduced decode never upsamples what a full decode would not.
libjpeg-turbo decodes at 1/s in far less time than at full size (``bench/bench_jpeg.py``).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from sweep.data.base import STREAM_CROPS, STREAM_DALI, Batch, Data, epoch_generator, epoch_seed
from sweep.data.dali import FIX as DALI_FIX
from sweep.errors import UserError

EXTENSIONS = (".jpeg", ".jpg", ".png")
LAYOUT = ("expected data.root/train/<class>/*.JPEG and data.root/val/<class>/*.JPEG "
          "(one folder per class, the same class names in both)")
RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}
# data.decoder: auto picks dali on a CUDA machine with DALI installed, else the fastest
# CPU decoder importable here (simplejpeg, else Pillow).
DECODERS = ("auto", "pil", "simplejpeg", "dali")
CPU_DECODERS = ("pil", "simplejpeg")
DCT_SCALES = (8, 4, 2)  # the reductions libjpeg applies in the IDCT, largest first
SIMPLEJPEG_FIX = "pip install simplejpeg==1.9.0, or set data.decoder=auto"

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


def _decode_error(path: str, e: BaseException) -> UserError:
    return UserError(f"cannot decode image {path} ({e}); replace or delete it")


_BAD = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def dct_scale(width: int, height: int, size: int) -> int:
    """The largest s in (8, 4, 2) with a ``width`` x ``height`` region still at least
    ``size`` pixels on each side after decoding at 1/s; 1 when none is."""
    for s in DCT_SCALES:
        if width >= size * s and height >= size * s:
            return s
    return 1


def _reduced_by(full: tuple[int, int], got: tuple[int, int]) -> int:
    """Which 1/s decode produced ``got`` from ``full`` (libjpeg rounds sizes up)."""
    for s in (1, *DCT_SCALES):
        if got == (-(-full[0] // s), -(-full[1] // s)):
            return s
    raise RuntimeError(f"a decode of a {full} image gave {got}, not a 1/s reduction")


class PilFile:
    """An image opened with Pillow: its size is read from the header; ``decode(s)``
    decodes it to RGB, at 1/s through ``Image.draft`` when it is a JPEG."""

    def __init__(self, path: str, fp: io.BytesIO | None = None) -> None:
        self.path = path
        try:
            self.im = Image.open(fp if fp is not None else path)
        except _BAD as e:
            raise _decode_error(path, e) from None
        self.size: tuple[int, int] = self.im.size

    def decode(self, s: int = 1) -> tuple[Image.Image, int]:
        """(RGB image, the reduction s actually applied)."""
        im = self.im
        try:
            if s > 1 and im.format == "JPEG":
                im.draft("RGB", (self.size[0] // s, self.size[1] // s))
            out = im.convert("RGB")
        except _BAD as e:
            raise _decode_error(self.path, e) from None
        finally:
            im.close()
        return out, _reduced_by(self.size, out.size)


class TurboFile:
    """A JPEG decoded by simplejpeg (libjpeg-turbo's TurboJPEG API, scaled decoding).
    Anything it cannot turn into RGB (PNG, CMYK, a recoverable libjpeg warning) goes to
    Pillow, so both decoders accept and reject the same files."""

    def __init__(self, path: str, simplejpeg: object) -> None:
        self.path, self.sj = path, simplejpeg
        try:
            with open(path, "rb") as f:
                self.data = f.read()
        except OSError as e:
            raise _decode_error(path, e) from None
        self.pil: PilFile | None = None
        try:
            h, w, colour, _ = self.sj.decode_jpeg_header(self.data)  # type: ignore[attr-defined]
            if colour not in ("YCbCr", "Gray"):
                raise ValueError(colour)
            self.size = (int(w), int(h))
        except ValueError:
            self.pil = PilFile(path, io.BytesIO(self.data))
            self.size = self.pil.size

    def decode(self, s: int = 1) -> tuple[Image.Image, int]:
        if self.pil is None:
            w, h = self.size
            try:
                arr = self.sj.decode_jpeg(  # type: ignore[attr-defined]
                    self.data, colorspace="RGB", min_width=-(-w // s), min_height=-(-h // s),
                    min_factor=s)
                im = Image.fromarray(arr)
                return im, _reduced_by(self.size, im.size)
            except (ValueError, RuntimeError):
                self.pil = PilFile(self.path, io.BytesIO(self.data))
        return self.pil.decode(s)


def _simplejpeg() -> object | None:
    try:
        import simplejpeg
    except ImportError:
        return None
    return simplejpeg


def _dali_installed() -> bool:
    """Whether nvidia.dali imports (a wheel built for another CUDA fails here, not later)."""
    try:
        import nvidia.dali  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def resolve_decoder(name: object) -> str:
    """``data.decoder`` to a concrete decoder, or one UserError line naming the fix."""
    if name not in DECODERS:
        raise UserError(f"data.decoder must be one of {', '.join(DECODERS)}, got {name!r}")
    if name == "auto":
        if torch.cuda.is_available() and _dali_installed():
            return "dali"
        return "simplejpeg" if _simplejpeg() is not None else "pil"
    if name == "simplejpeg" and _simplejpeg() is None:
        raise UserError(f"data.decoder=simplejpeg but simplejpeg is not installed; "
                        f"{SIMPLEJPEG_FIX}")
    if name == "dali":
        if not _dali_installed():
            raise UserError(f"data.decoder=dali but NVIDIA DALI (nvidia.dali) is not "
                            f"installed; {DALI_FIX}")
        if not torch.cuda.is_available():
            raise UserError("data.decoder=dali decodes on the GPU but CUDA is not available "
                            "here; set data.decoder=auto (or pil / simplejpeg)")
    return str(name)


def open_image(path: str, decoder: str) -> PilFile | TurboFile:
    if decoder == "simplejpeg":
        sj = _simplejpeg()
        if sj is not None:
            return TurboFile(path, sj)
    return PilFile(path)


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


def pycls_scale(width: int, height: int, short: int) -> tuple[int, int]:
    """The size pycls's ``scale_and_center_crop`` resizes to: the short side to ``short``,
    the long side truncated (``int``), unchanged when the short side already is."""
    if width < height and width != short:
        return short, int(height / width * short)
    if height <= width and height != short:
        return int(width / height * short), short
    return width, height


def centre_offsets(width: int, height: int, crop: int) -> tuple[int, int]:
    """pycls's centre crop: (left, top) rounded up (``ceil``)."""
    return math.ceil((width - crop) / 2), math.ceil((height - crop) / 2)


def pycls_crop_box(width: int, height: int, rng: np.random.Generator,
                   scale: tuple[float, float], ratio: tuple[float, float],
                   size: int) -> tuple[float, float, float, float]:
    """pycls's ``random_sized_crop`` (datasets/transforms.py) as a box in original-image
    coordinates: area uniform in ``scale`` of the image, aspect *uniform* in ``ratio``,
    width and height swapped with probability 1/2, ten tries; then its fallback, the
    centre ``size`` crop of the image resized to a short side of ``size``."""
    area = width * height
    for _ in range(10):
        target = rng.uniform(scale[0], scale[1]) * area
        aspect = rng.uniform(ratio[0], ratio[1])
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if rng.uniform() < 0.5:
            w, h = h, w
        if 0 < h <= height and 0 < w <= width:
            top = 0 if h == height else int(rng.integers(0, height - h))
            left = 0 if w == width else int(rng.integers(0, width - w))
            return left, top, left + w, top + h
    nw, nh = pycls_scale(width, height, size)
    left, top = centre_offsets(nw, nh, size)
    sx, sy = width / nw, height / nh
    return left * sx, top * sy, (left + size) * sx, (top + size) * sy


CROPS = ("pycls", "torchvision")


def crop_box(width: int, height: int, rng: np.random.Generator, *, style: str,
             scale: tuple[float, float], ratio: tuple[float, float],
             size: int) -> tuple[float, float, float, float]:
    """The training crop box of ``data.crop``: pycls's (the reference) or torchvision's
    RandomResizedCrop (log-uniform aspect, no swap, a ratio-clamped centre fallback)."""
    if style == "pycls":
        return pycls_crop_box(width, height, rng, scale, ratio, size)
    return random_resized_crop_box(width, height, rng, scale, ratio)


class TrainSet(Dataset):
    """Indexed by (image index, sample seed): the crop depends only on that seed.

    ``reduce=False`` decodes every image at full size (the original path, kept for the
    benchmark and the tests that compare against it)."""

    def __init__(self, items: Sequence[Item], size: int, scale: tuple[float, float],
                 ratio: tuple[float, float], resample: Image.Resampling,
                 decoder: str = "pil", reduce: bool = True, crop: str = "pycls") -> None:
        self.items, self.size, self.scale, self.ratio = items, size, scale, ratio
        self.resample, self.decoder, self.reduce, self.crop = resample, decoder, reduce, crop

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, seed = key
        path, label = self.items[index]
        f = open_image(path, self.decoder)
        box = crop_box(*f.size, np.random.default_rng(seed), style=self.crop,
                       scale=self.scale, ratio=self.ratio, size=self.size)
        s = dct_scale(box[2] - box[0], box[3] - box[1], self.size) if self.reduce else 1
        im, s = f.decode(s)
        fbox = box if s == 1 else tuple(v / s for v in box)
        im = im.resize((self.size, self.size), self.resample, box=fbox)
        return _to_tensor(im), label


class EvalSet(Dataset):
    """pycls's ``scale_and_center_crop``: resize the short side to ``short`` (pycls
    TEST.IM_SIZE), then take the centred size x size (TRAIN.IM_SIZE). The decode is
    reduced only while the short side stays >= ``short``."""

    def __init__(self, items: Sequence[Item], size: int, short: int,
                 resample: Image.Resampling, decoder: str = "pil", reduce: bool = True) -> None:
        if short < size:
            raise UserError(f"data.test_image_size {short} is smaller than the crop {size}; "
                            "evaluation resizes the short side to test_image_size, then crops")
        self.items, self.size, self.resample = items, size, resample
        self.decoder, self.reduce, self.short = decoder, reduce, short

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[index]
        f = open_image(path, self.decoder)
        w, h = f.size
        nw, nh = pycls_scale(w, h, self.short)
        im, s = f.decode(dct_scale(min(w, h), min(w, h), self.short) if self.reduce else 1)
        if s == 1:
            im = im.resize((nw, nh), self.resample)
        else:
            im = im.resize((nw, nh), self.resample, box=(0.0, 0.0, w / s, h / s))
        left, top = centre_offsets(nw, nh, self.size)
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
                 test_image_size: int, interpolation: str, crop: str = "pycls",
                 mean: tuple[float, ...], std: tuple[float, ...], decoder: str = "auto",
                 name: str = "imagenet") -> None:
        decoder = resolve_decoder(decoder)
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
        self.decoder = decoder
        # DALI decodes the training crops on the GPU; evaluation (resize + centre crop,
        # a few seconds per epoch) stays on the fastest CPU decoder.
        cpu = decoder if decoder in CPU_DECODERS else (
            "simplejpeg" if _simplejpeg() is not None else "pil")
        resample = RESAMPLE[interpolation]
        self.train_set = TrainSet(train, image_size, crop_scale, crop_ratio, resample, cpu,
                                  crop=crop)
        self.eval_set = EvalSet(val, image_size, test_image_size, resample, cpu)
        self.interpolation = interpolation

    def _loader(self, dataset: Dataset, generator: torch.Generator | None,
                **kwargs: object) -> DataLoader:
        return DataLoader(dataset, num_workers=self.workers, collate_fn=collate,
                          generator=generator, **kwargs)

    def epoch_keys(self, epoch: int, seed: int, batch_size: int) -> list[tuple[int, int]]:
        """(image index, sample seed) for every sample of the epoch, in order: the whole
        of an epoch's randomness, a function of (seed, epoch) only."""
        n = self.steps_per_epoch(batch_size) * batch_size
        g = epoch_generator(seed, epoch)
        order = torch.randperm(self.train_size, generator=g)[:n].tolist()
        seeds = torch.randint(0, 2**62, (n,), generator=g).tolist()
        return list(zip(order, seeds, strict=True))

    def train_batches(self, epoch: int, seed: int, batch_size: int) -> Iterator[Batch]:
        keys = self.epoch_keys(epoch, seed, batch_size)
        if self.decoder == "dali":
            from sweep.data.dali import dali_train_batches

            ts = self.train_set
            return dali_train_batches(
                [ts.items[i] for i, _ in keys], seed=epoch_seed(seed, epoch, STREAM_DALI),
                batch_size=batch_size, size=self.image_size, scale=ts.scale,
                ratio=ts.ratio, threads=max(1, self.workers), interpolation=self.interpolation)
        batches = [keys[i:i + batch_size] for i in range(0, len(keys), batch_size)]
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
