"""CIFAR-10 from the standard python batches (``data_batch_1..5``, ``test_batch``) in a
local folder; no download, since trial machines may have no network."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sweep.errors import UserError

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
LAYOUT = ("expected the CIFAR-10 python batches data_batch_1..data_batch_5 and test_batch "
          "(from cifar-10-python.tar.gz) in data.root or data.root/cifar-10-batches-py")


class _ArrayUnpickler(pickle.Unpickler):
    """Loads only what a CIFAR batch holds (dicts, lists, numpy arrays), so a stray file
    in data.root cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def find_folder(root: str | None) -> Path:
    """The folder holding the batches: data.root itself or its cifar-10-batches-py."""
    if root is None or str(root) == "":
        raise UserError(f"data.root is not set for cifar10; pass data.root=/path ({LAYOUT})")
    path = Path(str(root)).expanduser()
    if not path.is_dir():
        raise UserError(f"data.root={path} is not a folder; {LAYOUT}")
    for folder in (path, path / "cifar-10-batches-py"):
        if all((folder / f).is_file() for f in TRAIN_FILES + TEST_FILES):
            return folder
    missing = [f for f in TRAIN_FILES + TEST_FILES if not (path / f).is_file()]
    raise UserError(f"data.root={path} lacks {', '.join(missing)}; {LAYOUT}")


def read_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One pickled batch as uint8 (N, 3, 32, 32) images and int64 labels."""
    try:
        with open(path, "rb") as fh:
            d = _ArrayUnpickler(fh, encoding="bytes").load()
        data = np.asarray(d[b"data"])
        labels = np.asarray(d[b"labels"], dtype=np.int64)
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError,
            IndexError, AttributeError, ImportError) as e:
        raise UserError(f"{path} is not a CIFAR-10 python batch ({type(e).__name__}: {e}); "
                        f"{LAYOUT}, each a pickled dict with b'data' (N x 3072 uint8) "
                        "and b'labels'") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise UserError(f"{path}: b'data' is {data.dtype} {data.shape}, expected uint8 "
                        "(N, 3072); re-extract cifar-10-python.tar.gz")
    out_of_range = labels.size > 0 and (labels.min() < 0 or labels.max() > 9)
    if labels.shape != (len(data),) or out_of_range:
        raise UserError(f"{path}: b'labels' must hold {len(data)} labels in 0..9; "
                        "re-extract cifar-10-python.tar.gz")
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return images, torch.from_numpy(labels)


def load(root: str | None) -> tuple[tuple[torch.Tensor, torch.Tensor],
                                     tuple[torch.Tensor, torch.Tensor]]:
    """(train, test) as uint8 image and int64 label tensors."""
    folder = find_folder(root)

    def cat(files: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [read_batch(folder / f) for f in files]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    return cat(TRAIN_FILES), cat(TEST_FILES)
