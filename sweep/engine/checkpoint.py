"""Atomic per-epoch checkpoints, so a killed trial resumes and never loses an epoch."""

from __future__ import annotations

import os
import pickle
import random
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sweep.errors import UserError

CHECKPOINT = "checkpoint.pt"


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Write through a temporary file in the same folder and rename it into place, so a
    reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp makes 0600 files
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def rng_states() -> dict:
    """Every RNG's state as tensors and plain Python values, so a checkpoint loads with
    ``weights_only=True`` (numpy's state holds an array, which that loader refuses)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    states = {"torch": torch.get_rng_state(),
              "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos),
                        int(has_gauss), float(cached)],
              "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos,
                         has_gauss, cached))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save(path: Path, state: dict) -> None:
    atomic_write_bytes(path, lambda f: torch.save(state, f))


def load(path: Path) -> dict | None:
    """The checkpoint at ``path``, or None when there is none. A file that is not one
    (cut short, overwritten, not a torch archive) is refused with the fix: delete it."""
    if not path.exists():
        return None
    fix = "delete it and the trial restarts from scratch"
    # torch.save writes a zip archive; anything else is a damaged file, whatever error
    # the unpickler would give for its first bytes.
    if not zipfile.is_zipfile(path):
        raise UserError(f"checkpoint {path} is corrupt: not a torch checkpoint (a file cut "
                        f"short or overwritten); {fix}")
    try:
        # Tensors and plain types only: a checkpoint is data, and unpickling arbitrary
        # objects would run whatever code the file names.
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise UserError(f"checkpoint {path} holds objects other than tensors and plain "
                        f"values (refused, not executed); {fix}") from e
    except Exception as e:
        raise UserError(f"checkpoint {path} is corrupt: unreadable as a torch checkpoint "
                        f"({type(e).__name__}); {fix}") from e
