"""Fashion-MNIST / MNIST from IDX files: small gzipped and raw files written here, the
geometry a model sees, class-balanced subsets, the per-process cache, every bad-file
message, and the command line on a bad folder."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import data_yaml

from sweep.data import build_data, idx
from sweep.data.augment import BatchAugment
from sweep.engine.schema import DATA_SCHEMAS
from sweep.errors import UserError

CONF = Path(__file__).resolve().parents[1] / "conf" / "data"
DEBIAN = Path("/usr/share/datasets/fashion-mnist")
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte")


def conf(which: str = "fashion_mnist", size: int = 32, **over: object) -> dict:
    """A data yaml resolved as a trial of a ``size``-px model composes it."""
    return data_yaml(which, {"image_size": size}, **over)


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file's bytes: magic (0, 0, uint8, ndim), big-endian sizes, the data."""
    head = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return head + array.astype(np.uint8).tobytes()


def write_set(folder: Path, *, gz: bool, train: int = 40, test: int = 20,
              seed: int = 0) -> dict[str, np.ndarray]:
    """Four IDX files of random 28x28 images with labels cycling 0..9."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in (("train", train), ("t10k", test)):
        arrays[f"{prefix}-images-idx3-ubyte"] = rng.integers(0, 256, (n, 28, 28), np.uint8)
        arrays[f"{prefix}-labels-idx1-ubyte"] = rng.permutation(np.arange(n) % 10).astype(
            np.uint8)
    for stem, array in arrays.items():
        data = idx_bytes(array)
        (folder / (stem + ".gz" if gz else stem)).write_bytes(gzip.compress(data) if gz
                                                              else data)
    return arrays


def stem_path(folder: Path, stem: str) -> Path:
    path = idx.find_file(folder, stem)
    assert path is not None
    return path


# -- config files ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist"])
def test_yaml_has_exactly_the_keys_and_a_valid_augment_block(name: str) -> None:
    cfg = conf(name, size=64)
    assert set(cfg) == {f.name for f in dataclasses.fields(DATA_SCHEMAS[name])}
    assert cfg["image_size"] == 64
    a = cfg["augment"]
    assert not a["autoaugment"] and a["mixup"] == a["cutmix"] == a["label_smoothing"] == 0
    assert cfg["mean"][0] == cfg["mean"][1] == cfg["mean"][2]  # grey: identical channels
    BatchAugment.from_config(cfg, num_classes=10)


def test_root_defaults_to_debian_unless_vitstab_data(monkeypatch) -> None:
    monkeypatch.delenv("VITSTAB_DATA", raising=False)
    assert conf()["root"] == str(DEBIAN)
    monkeypatch.setenv("VITSTAB_DATA", "/data/fm")
    assert conf()["root"] == "/data/fm"
    assert conf("mnist")["root"] is None  # mnist names its folder itself


# -- reading ------------------------------------------------------------------------------


def test_gzipped_and_raw_read_the_same_and_the_name_does_not_decide(tmp_path: Path) -> None:
    written = write_set(tmp_path / "gz", gz=True)
    write_set(tmp_path / "raw", gz=False)
    stem = "train-images-idx3-ubyte"
    a = idx.read_idx(stem_path(tmp_path / "gz", stem), 3)
    b = idx.read_idx(stem_path(tmp_path / "raw", stem), 3)
    assert np.array_equal(a, written[stem]) and np.array_equal(b, written[stem])
    liar = tmp_path / "raw-named-gz.gz"  # raw bytes under a .gz name: read by magic
    liar.write_bytes(idx_bytes(written[stem]))
    assert np.array_equal(idx.read_idx(liar, 3), written[stem])


def test_the_dotted_mnist_spelling_is_found(tmp_path: Path) -> None:
    write_set(tmp_path, gz=False)
    for stem in FILES:
        (tmp_path / stem).rename(tmp_path / stem.replace("-idx", ".idx"))
    data = build_data(conf("mnist", root=str(tmp_path)))
    assert (data.train_size, data.test_size) == (40, 20)


@pytest.mark.parametrize("size", [32, 64, 24])
def test_a_model_sees_the_padded_frame_at_its_size_in_three_equal_channels(
        tmp_path: Path, size: int) -> None:
    written = write_set(tmp_path, gz=True)
    data = build_data(conf(root=str(tmp_path), size=size))
    assert (data.name, data.image_size, data.num_classes) == ("fashion_mnist", size, 10)
    x, y = next(data.test_batches(8))
    assert x.shape == (8, 3, size, size) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])
    assert y.tolist() == written["t10k-labels-idx1-ubyte"][:8].tolist()
    source = torch.from_numpy(written["t10k-images-idx3-ubyte"][:8])
    if size == 32:  # the image itself inside a 2-px black border, no resampling
        assert torch.equal(x[:, 0, 2:30, 2:30], source)
        assert x[:, :, :2].sum() == 0 and x[:, :, :, 30:].sum() == 0
    else:
        padded = torch.nn.functional.pad(source.float(), (2, 2, 2, 2))
        # bilinear keeps the mean brightness within rounding and resampling error
        assert abs(x[:, 0].float().mean() - padded.mean()) < 2.0


# -- subsets ----------------------------------------------------------------------------------


def test_subsets_are_class_balanced_and_deterministic_in_the_seed() -> None:
    labels = np.random.default_rng(1).permutation(np.arange(500) % 10)
    pick = idx.balanced_subset(labels, 43, num_classes=10, seed=5, split="train")
    counts = np.bincount(labels[pick], minlength=10)
    assert len(pick) == len(set(pick.tolist())) == 43
    assert sorted(counts.tolist()) == [4] * 7 + [5] * 3  # 43 // 10 each, 3 left over
    again = idx.balanced_subset(labels, 43, num_classes=10, seed=5, split="train")
    other = idx.balanced_subset(labels, 43, num_classes=10, seed=6, split="train")
    test = idx.balanced_subset(labels, 43, num_classes=10, seed=5, split="test")
    assert np.array_equal(pick, again)
    assert not np.array_equal(pick, other) and not np.array_equal(pick, test)
    assert np.array_equal(idx.balanced_subset(labels, None, num_classes=10, seed=5,
                                              split="train"), np.arange(500))


def test_a_subset_of_unequal_classes_is_balanced_or_refused() -> None:
    labels = np.array([0] * 30 + [1] * 8 + [2] * 12)
    pick = idx.balanced_subset(labels, 24, num_classes=3, seed=0, split="train")
    assert np.bincount(labels[pick]).tolist() == [8, 8, 8]
    with pytest.raises(UserError, match="needs 9 images of class 1 but the train split has 8"):
        idx.balanced_subset(labels, 27, num_classes=3, seed=0, split="train")


def test_train_size_and_test_size_reach_the_data(tmp_path: Path) -> None:
    write_set(tmp_path, gz=True)
    data = build_data(conf(root=str(tmp_path), train_size=20, test_size=10))
    assert (data.train_size, data.test_size) == (20, 10)
    assert np.bincount(data.train_labels.numpy()).tolist() == [2] * 10
    seen = torch.cat([y for _, y in data.train_batches(0, 3, 10)])
    assert sorted(seen.tolist()) == sorted(data.train_labels.tolist())
    with pytest.raises(UserError, match="data.train_size=41 exceeds the 40 images"):
        build_data(conf(root=str(tmp_path), train_size=41))
    with pytest.raises(UserError, match="data.test_size must be >= 1, got 0"):
        build_data(conf(root=str(tmp_path), test_size=0))


def test_train_order_depends_only_on_seed_and_epoch(tmp_path: Path) -> None:
    write_set(tmp_path, gz=False)
    data = build_data(conf(root=str(tmp_path), size=64))
    first = [y for _, y in data.train_batches(2, 7, 16)]
    list(data.train_batches(0, 7, 16))
    again = [y for _, y in data.train_batches(2, 7, 16)]
    assert len(first) == 40 // 16
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], next(data.train_batches(3, 7, 16))[1])


def test_images_resized_once_are_the_bytes_resized_per_batch(tmp_path: Path,
                                                             monkeypatch) -> None:
    """A split small enough is resized to the model's size once and held; what it serves
    equals resizing each batch afresh (the path of splits too large to hold)."""
    write_set(tmp_path, gz=True)
    held = build_data(conf(root=str(tmp_path), size=64))
    next(held.train_batches(0, 0, 16)), next(held.test_batches(7))  # resized and held
    monkeypatch.setattr(idx, "SERVED_CACHE_BYTES", 0)
    fresh = idx.IdxData(name=held.name, num_classes=10, image_size=64, mean=held.mean,
                        std=held.std, train=(held.train_images, held.train_labels.numpy()),
                        test=(held.test_images, held.test_labels.numpy()))
    for a, b in zip(held.train_batches(1, 3, 16), fresh.train_batches(1, 3, 16), strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    for a, b in zip(held.test_batches(7), fresh.test_batches(7), strict=True):
        assert a[0].shape == (len(a[1]), 3, 64, 64) and torch.equal(a[0], b[0])
    assert held._served["train"] is not None and fresh._served["train"] is None


# -- the per-process cache ---------------------------------------------------------------------


def test_a_second_build_does_not_decode_and_nothing_writes_the_cache(tmp_path: Path) -> None:
    write_set(tmp_path, gz=True)
    build_data(conf(root=str(tmp_path)))
    hits = idx._decode.cache_info().hits
    data = build_data(conf(root=str(tmp_path), size=64))
    assert idx._decode.cache_info().hits == hits + 2  # train and test, from memory
    cached, _ = idx.decode(stem_path(tmp_path, FILES[0]), stem_path(tmp_path, FILES[1]))
    before = cached.copy()
    for x, _ in data.train_batches(0, 0, 8):
        x.fill_(7)  # a trial scribbling on its batch ...
    for x, _ in data.test_batches(8):
        x.fill_(7)
    assert np.array_equal(cached, before)  # ... leaves the cache as decoded
    with pytest.raises(ValueError, match="read-only"):
        cached[0, 0, 0] = 1


def test_a_replaced_file_is_read_again(tmp_path: Path) -> None:
    write_set(tmp_path, gz=True, seed=0)
    a = build_data(conf(root=str(tmp_path))).test_labels.clone()
    write_set(tmp_path, gz=True, seed=1, test=30)
    b = build_data(conf(root=str(tmp_path))).test_labels
    assert len(a) == 20 and len(b) == 30


# -- bad folders and files ---------------------------------------------------------------------


def test_missing_files_name_the_package_and_data_root(tmp_path: Path) -> None:
    for root in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(UserError, match="apt-get install dataset-fashion-mnist") as e:
            build_data(conf(root=str(root)))
        assert "data.root" in str(e.value)
    write_set(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError, match=r"lacks t10k-labels-idx1-ubyte\[\.gz\]; install"):
        build_data(conf(root=str(tmp_path)))
    with pytest.raises(UserError, match="data.root is not set for mnist"):
        build_data(conf("mnist"))


def _corrupt(folder: Path, how: str, gz: bool) -> Path:
    """Damage one file of a written set the way ``how`` says; returns its path."""
    arrays = write_set(folder, gz=gz)
    stem = "t10k-labels-idx1-ubyte" if how in ("count", "label") else "train-images-idx3-ubyte"
    data = idx_bytes(arrays[stem])
    if how == "magic":
        data = bytes([0, 0, 8, 1]) + data[4:]  # says labels (1-d), holds images
    elif how == "truncated":
        data = data[:-100]
    elif how == "long":
        data = data + b"\0" * 5
    elif how == "count":
        data = idx_bytes(arrays[stem][:-1])
    elif how == "label":
        labels = arrays[stem].copy()
        labels[3] = 10
        data = idx_bytes(labels)
    elif how == "empty":
        data = b""
    elif how == "shape":
        data = idx_bytes(np.zeros((40, 32, 32), np.uint8))
    path = stem_path(folder, stem)
    path.write_bytes(gzip.compress(data) if gz and data else data)
    return path


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("how, match", [
    ("magic", "has magic number 0x00000801, expected 0x00000803"),
    ("truncated", "is truncated: its header declares 40x28x28 = 31360 bytes"),
    ("long", "is too long"),
    ("count", "t10k-images-idx3-ubyte(.gz)? holds 20 images but .* holds 19 labels"),
    ("label", "holds label 10, outside 0..9"),
    ("shape", "holds 32x32 images, expected 28x28"),
    ("empty", "is empty"),
])
def test_a_bad_file_is_one_line_naming_it(tmp_path: Path, gz: bool, how: str,
                                          match: str) -> None:
    path = _corrupt(tmp_path, how, gz)
    with pytest.raises(UserError, match=match) as e:
        build_data(conf(root=str(tmp_path)))
    message = str(e.value)
    assert str(path) in message and "\n" not in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_a_cut_off_gzip_stream_is_one_line_naming_it(tmp_path: Path) -> None:
    write_set(tmp_path, gz=True)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])  # a download that stopped early
    with pytest.raises(UserError, match="is a damaged gzip file") as e:
        build_data(conf(root=str(tmp_path)))
    assert str(path) in str(e.value)


# -- the command line --------------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["missing", "truncated"])
def test_train_on_a_bad_folder_is_one_error_line(cli, tmp_path: Path, folder: str) -> None:
    root = tmp_path / "data"
    if folder == "truncated":
        _corrupt(root, "truncated", gz=True)
    proc = cli("sweep.train", "data=fashion_mnist", f"data.root={root}", "optimizer.lr=0.01",
               "optimizer.wd=0.05", f"out={tmp_path / 'out'}", check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "result.json").exists()


def test_train_runs_on_small_idx_files(cli, tmp_path: Path) -> None:
    write_set(tmp_path / "data", gz=False, train=64, test=20)
    proc = cli("sweep.train", "data=fashion_mnist", f"data.root={tmp_path / 'data'}",
               "data.batch_size=32", "optimizer.lr=0.01", "optimizer.wd=0.05",
               "schedule.epochs=1", "precise_bn_images=32", f"out={tmp_path / 'out'}")
    assert "done: error" in proc.stdout and (tmp_path / "out" / "result.json").exists()


# -- the real files, where Debian's package is installed ------------------------------------------


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_debian_files_load_and_the_yaml_mean_std_are_theirs() -> None:
    data = build_data(conf(size=64, train_size=10000, test_size=1000))
    assert (data.train_size, data.test_size) == (10000, 1000)
    assert np.bincount(data.test_labels.numpy()).tolist() == [100] * 10
    mean, std = idx.pixel_stats(data.train_images, 64)  # a 10,000-image sample of the split
    cfg = conf(size=64)
    assert mean == pytest.approx(cfg["mean"][0], abs=3e-3)
    assert std == pytest.approx(cfg["std"][0], abs=3e-3)
