"""Command-line input the config schemas cannot see (``sweep.engine.schema`` checks the
values): list keys given as one bare name, and folders that must be writable."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sweep.errors import UserError

# Hydra list options a user may pass as one bare name (sweep.models=vitp_tiny).
LIST_KEYS = ("sweep.models", "sweep.optimizers", "sweep.seeds", "sweep.epochs")


def listify_overrides(overrides: list[str]) -> list[str]:
    """``sweep.models=vitp_tiny`` means ``sweep.models=[vitp_tiny]`` (a bare comma list
    would be Hydra's multirun syntax, which a compose refuses)."""
    out = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and key.lstrip("+") in LIST_KEYS and value and not value.startswith("["):
            item = f"{key}=[{value}]"
        out.append(item)
    return out


def check_writable(path: Path, what: str) -> None:
    """``path`` is (or can be made) a folder this process can write into: probed by
    creating and removing a temporary file in the nearest existing ancestor, so nothing
    is left behind (root passes ``os.access`` everywhere, so it is not enough)."""
    path = Path(path).absolute()
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UserError(f"{what}={path}: {probe} is a file, not a folder; pass a folder path")
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        raise UserError(f"{what}={path} is not writable ({e.strerror}); pass a folder you "
                        "can write to") from e
