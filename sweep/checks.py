"""Command-line input the config schemas cannot see (``sweep.engine.schema`` checks the
values): list keys given as one bare name, and folders that must be writable."""

from __future__ import annotations

import os
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


def check_sweep_folder(folder: Path) -> None:
    """Every folder and file of an existing sweep can be written again (a sweep folder
    that turned read-only stops a sweep; this says so on the next start, with the fix):
    folders by a probe file, files by ``os.access``."""
    folder = Path(folder).absolute()
    if not folder.is_dir():
        return
    for root, _dirs, files in os.walk(folder):
        try:
            with tempfile.TemporaryFile(dir=root):
                pass
        except OSError as e:
            raise UserError(unwritable_line(folder, Path(root), e.strerror)) from e
        for name in files:
            path = Path(root) / name
            if not path.is_symlink() and not os.access(path, os.W_OK):
                raise UserError(unwritable_line(folder, path, "a read-only file"))


def unwritable_line(folder: Path, where: Path, why: str | None) -> str:
    """The one line for a sweep folder that cannot be written: where, and the fix."""
    what = why or "denied"
    if where != folder:
        what = f"{where.relative_to(folder)}: {what}"
    return (f"the sweep folder {folder} is not writable ({what}); make it writable "
            f"again (chmod -R u+w {folder}) and run the same command to resume")
