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

from sweep.data.base import Data, TensorData, epoch_generator, epoch_seed
from sweep.engine.schema import data_config

__all__ = ["Data", "TensorData", "build_data", "epoch_generator", "epoch_seed", "to_dict"]


def to_dict(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """A resolved plain dict from an omegaconf node or any mapping."""
    if isinstance(cfg, DictConfig):
        out = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(out, dict)
        return out
    return dict(cfg)


def build_data(cfg: DictConfig | Mapping[str, Any], *, seed: int | None = None) -> Data:
    """The dataset named by ``cfg.name``, its settings checked by its schema (a composed
    config was checked already; a plain dict is checked here). ``seed`` generates the
    synthetic set and picks subsets (default ``cfg.seed``); it is the same for every trial
    of a study so trials differ only in their own seeds, never in their data."""
    c = data_config(cfg)
    seed = c.seed if seed is None else int(seed)
    common = {"num_classes": c.num_classes, "mean": tuple(c.mean), "std": tuple(c.std)}
    if c.name == "synthetic":
        from sweep.data.synthetic import generate_cached

        kw = {"seed": seed, "image_size": c.image_size, "num_classes": c.num_classes}
        return TensorData(name=c.name, train=generate_cached(c.train_size, split="train", **kw),
                          test=generate_cached(c.test_size, split="test", **kw), **common)
    if c.name == "cifar10":
        from sweep.data import cifar10

        train, test = cifar10.load(c.root)
        return TensorData(name=c.name, train=train, test=test, **common)
    if c.name in ("fashion_mnist", "mnist"):
        from sweep.data import idx

        return idx.build(c.name, root=c.root, seed=seed, train_size=c.train_size,
                         test_size=c.test_size, image_size=c.image_size, **common)
    from sweep.data.imagenet import ImageFolderData

    return ImageFolderData(root=c.root, image_size=c.image_size, workers=c.workers,
                           crop_scale=tuple(c.crop_scale), crop_ratio=tuple(c.crop_ratio),
                           test_image_size=c.test_image_size or round(c.image_size / 0.875),
                           crop=c.crop, interpolation=c.interpolation, decoder=c.decoder,
                           **common)
