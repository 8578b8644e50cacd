"""Datasets behind one interface: ``build_data(cfg.data, seed=...)`` returns a ``Data``
that serves uint8 CPU batches whose order depends only on (seed, epoch).

``synthetic`` (the embedded default) is generated from ``data.seed``; ``cifar10``,
``fashion_mnist``, ``mnist`` and ``imagenet`` read local files under ``data.root``. Every
setting comes from ``conf/data/<name>.yaml``; nothing is defaulted here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweep.data.base import Data, TensorData, check_keys, epoch_generator, epoch_seed, triple
from sweep.errors import UserError

__all__ = ["KEYS", "Data", "TensorData", "build_data", "epoch_generator", "epoch_seed", "to_dict"]

COMMON = {"name", "root", "image_size", "num_classes", "batch_size", "eval_batch_size",
          "workers", "seed", "mean", "std", "augment", "micro_batch"}
KEYS = {
    "synthetic": COMMON | {"train_size", "test_size"},
    "cifar10": COMMON,
    "fashion_mnist": COMMON | {"train_size", "test_size"},
    "mnist": COMMON | {"train_size", "test_size"},
    "imagenet": COMMON | {"crop", "crop_scale", "crop_ratio", "test_image_size",
                          "interpolation",
                          "decoder"},
}


def to_dict(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """A resolved plain dict from an omegaconf node or any mapping."""
    if isinstance(cfg, DictConfig):
        out = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(out, dict)
        return out
    return dict(cfg)


def _int(cfg: Mapping[str, Any], key: str, low: int) -> int:
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"data.{key} must be an integer >= {low}, got {value!r}")
    return value


def _pair(cfg: Mapping[str, Any], key: str) -> tuple[float, float]:
    value = cfg[key]
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise UserError(f"data.{key} must be a list [low, high], got {value!r}") from None
    if not 0 < lo <= hi:
        raise UserError(f"data.{key} must satisfy 0 < low <= high, got {value!r}")
    return lo, hi


def build_data(cfg: DictConfig | Mapping[str, Any], *, seed: int | None = None) -> Data:
    """The dataset named by ``cfg.name``. ``seed`` generates the synthetic set (default
    ``cfg.seed``); it is the same for every trial of a study so trials differ only in
    their own seeds, never in their data."""
    c = to_dict(cfg)
    name = c.get("name")
    if name not in KEYS:
        raise UserError(f"unknown data.name {name!r}; use one of {', '.join(KEYS)}")
    check_keys(c, KEYS[name], "data")
    # data.micro_batch is the trainer's, not the loader's: batches are always drawn
    # whole, then split on the device.
    micro = c["micro_batch"]
    if micro is not None and (isinstance(micro, bool) or not isinstance(micro, int)
                              or micro < 1):
        raise UserError(f"data.micro_batch must be null or an integer >= 1, got {micro!r}")
    if not isinstance(c["augment"], Mapping):
        raise UserError(f"data.augment must be a mapping of augmentation settings, "
                        f"got {c['augment']!r}")
    for key in ("batch_size", "eval_batch_size"):
        _int(c, key, 1)
    _int(c, "workers", 0)
    num_classes = _int(c, "num_classes", 2)
    image_size = _int(c, "image_size", 8)
    mean, std = triple(c["mean"], "data.mean"), triple(c["std"], "data.std")
    if min(std) <= 0:
        raise UserError(f"data.std must be positive, got {list(std)}")
    seed = _int(c, "seed", 0) if seed is None else int(seed)
    if seed < 0:
        raise UserError(f"the data seed must be a non-negative integer, got {seed}")

    if name == "synthetic":
        from sweep.data.synthetic import CLASS_NAMES, generate_cached

        if num_classes > len(CLASS_NAMES):
            raise UserError(f"synthetic has {len(CLASS_NAMES)} classes; set "
                            f"data.num_classes <= {len(CLASS_NAMES)}, got {num_classes}")
        if image_size < 16:
            raise UserError(f"synthetic images need data.image_size >= 16, got {image_size}")
        train_size, test_size = _int(c, "train_size", 1), _int(c, "test_size", 1)
        kw = {"seed": seed, "image_size": image_size, "num_classes": num_classes}
        return TensorData(name=name, train=generate_cached(train_size, split="train", **kw),
                          test=generate_cached(test_size, split="test", **kw),
                          num_classes=num_classes, mean=mean, std=std)

    if name == "cifar10":
        from sweep.data import cifar10

        if num_classes != 10 or image_size != 32:
            raise UserError("cifar10 has 10 classes of 32x32 images; keep data.num_classes=10 "
                            f"and data.image_size=32 (got {num_classes} and {image_size})")
        train, test = cifar10.load(c["root"])
        return TensorData(name=name, train=train, test=test, num_classes=10, mean=mean, std=std)

    if name in ("fashion_mnist", "mnist"):
        from sweep.data import idx
        return idx.build(name, root=c["root"], seed=seed, train_size=c["train_size"],
                         test_size=c["test_size"], num_classes=num_classes,
                         image_size=image_size, mean=mean, std=std)

    return _imagenet(c, num_classes=num_classes, image_size=image_size, mean=mean, std=std)


def _imagenet(c: dict[str, Any], *, num_classes: int, image_size: int,
              mean: tuple[float, ...], std: tuple[float, ...]) -> Data:
    from sweep.data.imagenet import CROPS, ImageFolderData

    test_size = c["test_image_size"]
    if test_size is not None:
        test_size = _int(c, "test_image_size", 1)
    if c["crop"] not in CROPS:
        raise UserError(f"data.crop must be one of {', '.join(CROPS)}, got {c['crop']!r}")
    scale = _pair(c, "crop_scale")
    if scale[1] > 1:
        raise UserError(f"data.crop_scale is a fraction of the image area; keep it within "
                        f"(0, 1], got {list(scale)}")
    return ImageFolderData(root=c["root"], num_classes=num_classes, image_size=image_size,
                           workers=c["workers"], crop_scale=scale,
                           crop_ratio=_pair(c, "crop_ratio"),
                           test_image_size=test_size or round(image_size / 0.875),
                           crop=c["crop"],
                           interpolation=str(c["interpolation"]), mean=mean, std=std,
                           decoder=c["decoder"])
