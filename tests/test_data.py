"""Datasets: the synthetic generator, CIFAR-10 and ImageNet-tree readers (on tiny fixture
files written here), batch order reproducibility, and the bad-input messages."""

from __future__ import annotations

import dataclasses
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import data_yaml
from PIL import Image

from sweep.data import build_data, imagenet
from sweep.data.augment import BatchAugment
from sweep.data.synthetic import CLASS_NAMES, generate
from sweep.engine.schema import DATA_SCHEMAS
from sweep.errors import UserError

CONF = Path(__file__).resolve().parents[1] / "conf" / "data"


def conf(which: str, model: dict | None = None, **over: object) -> dict:
    return data_yaml(which, model, **over)


def small_synthetic(**over: object):
    return build_data(conf("synthetic", train_size=300, test_size=120, **over))


# -- config files -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["synthetic", "cifar10", "imagenet"])
def test_yaml_has_exactly_the_keys_and_a_valid_augment_block(name: str) -> None:
    cfg = conf(name)
    assert set(cfg) == {f.name for f in dataclasses.fields(DATA_SCHEMAS[name])}
    BatchAugment.from_config(cfg["augment"], num_classes=cfg["num_classes"],
                             image_size=cfg["image_size"], mean=cfg["mean"], std=cfg["std"])


def test_imagenet_yaml_is_the_paper_recipe() -> None:
    cfg = conf("imagenet", model={"image_size": 224, "test_image_size": 256})
    a = cfg["augment"]
    assert (cfg["image_size"], cfg["test_image_size"], cfg["batch_size"], cfg["workers"]) == (
        224, 256, 256, 8)
    assert cfg["crop"] == "pycls" and cfg["crop_scale"] == [0.08, 1.0]
    assert cfg["crop_ratio"] == pytest.approx([3 / 4, 4 / 3]) and a["lighting"] == 0.1
    assert (a["mixup"], a["cutmix"], a["label_smoothing"], a["autoaugment"]) == (0.8, 1.0, 0.1,
                                                                                True)


# -- synthetic ----------------------------------------------------------------------------


def test_synthetic_is_deterministic_in_the_seed() -> None:
    a, ya = generate(150, seed=3, split="train")
    b, yb = generate(150, seed=3, split="train")
    c, _ = generate(150, seed=4, split="train")
    assert torch.equal(a, b) and torch.equal(ya, yb)
    assert not torch.equal(a, c)


def test_synthetic_splits_are_disjoint_and_balanced() -> None:
    data = small_synthetic()
    train = {bytes(x.numpy()) for x in data.train_images}
    test = {bytes(x.numpy()) for x in data.test_images}
    assert len(train) == 300 and len(test) == 120 and not train & test
    for labels, n in ((data.train_labels, 300), (data.test_labels, 120)):
        counts = torch.bincount(labels, minlength=10)
        assert counts.max() - counts.min() <= 1 and counts.sum() == n


def test_synthetic_shapes_dtypes_and_metadata() -> None:
    data = small_synthetic(num_classes=4)
    assert (data.name, data.num_classes, data.image_size) == ("synthetic", 4, 32)
    assert (data.train_size, data.test_size) == (300, 120)
    assert data.chance_error == pytest.approx(75.0)
    x, y = next(data.train_batches(0, 0, 64))
    assert x.shape == (64, 3, 32, 32) and x.dtype == torch.uint8
    assert y.dtype == torch.int64 and int(y.max()) < 4
    assert x.float().std() > 20  # not a blank image


def test_synthetic_other_image_size() -> None:
    x, _ = generate(20, seed=0, split="test", image_size=48)
    assert x.shape == (20, 3, 48, 48)
    assert len(CLASS_NAMES) == 10


# -- batch order ---------------------------------------------------------------------------


def _epoch(data, epoch: int, seed: int, bs: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(data.train_batches(epoch, seed, bs))


def test_train_order_depends_only_on_seed_and_epoch() -> None:
    data = small_synthetic()
    fresh = _epoch(data, 2, 7, 64)
    for e in range(2):  # an uninterrupted run has consumed epochs 0 and 1 first
        _epoch(data, e, 7, 64)
    resumed = _epoch(data, 2, 7, 64)
    assert len(fresh) == data.steps_per_epoch(64) == 300 // 64
    for (x1, y1), (x2, y2) in zip(fresh, resumed, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    other_epoch, other_seed = _epoch(data, 3, 7, 64), _epoch(data, 2, 8, 64)
    assert not torch.equal(fresh[0][1], other_epoch[0][1])
    assert not torch.equal(fresh[0][1], other_seed[0][1])
    seen = torch.cat([y for _, y in fresh])
    assert len(seen) == 4 * 64  # the last incomplete batch is dropped


def test_test_batches_cover_all_in_a_fixed_order() -> None:
    data = small_synthetic()
    a = list(data.test_batches(50))
    assert [len(y) for _, y in a] == [50, 50, 20]
    assert torch.equal(torch.cat([x for x, _ in a]), data.test_images)


def test_batch_size_errors() -> None:
    data = small_synthetic()
    with pytest.raises(UserError, match="larger than the synthetic train set"):
        data.steps_per_epoch(301)
    with pytest.raises(UserError, match="positive"):
        data.steps_per_epoch(0)


# -- config errors --------------------------------------------------------------------------


@pytest.mark.parametrize("over, match", [
    ({"name": "svhn"}, "unknown data.name 'svhn'"),
    ({"train_size": 0}, "data.train_size must be >= 1, got 0"),
    ({"train_size": 1.5}, "data.train_size: Value .1.5. .* Integer"),
    ({"micro_batch": 100}, "data.micro_batch 100 does not divide data.batch_size 128"),
    ({"num_classes": 11}, "data.num_classes <= 10"),
    ({"mean": [0.5, 0.5]}, "data.mean must be a list of 3"),
    ({"std": [0.5, 0.0, 0.5]}, "data.std must be > 0, got 0.0"),
    ({"colour": 1}, "unknown key data.colour"),
])
def test_bad_config_is_a_user_error(over: dict, match: str) -> None:
    with pytest.raises(UserError, match=match):
        build_data(conf("synthetic", **over))


def test_missing_key_is_a_user_error() -> None:
    cfg = conf("synthetic")
    del cfg["test_size"]
    with pytest.raises(UserError, match="data.test_size is not set"):
        build_data(cfg)


# -- CIFAR-10 ----------------------------------------------------------------------------


def write_cifar(folder: Path, per_batch: int = 4, test: int = 6) -> dict[str, tuple]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    written = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = test if name == "test_batch" else per_batch
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        with open(folder / name, "wb") as fh:
            pickle.dump({b"batch_label": name.encode(), b"data": data, b"labels": labels,
                         b"filenames": [b"x.png"] * n}, fh)
        written[name] = (data, labels)
    return written


@pytest.mark.parametrize("nested", [False, True])
def test_cifar_reads_back(tmp_path: Path, nested: bool) -> None:
    written = write_cifar(tmp_path / "cifar-10-batches-py" if nested else tmp_path)
    data = build_data(conf("cifar10", root=str(tmp_path)))
    assert (data.train_size, data.test_size, data.num_classes) == (20, 6, 10)
    train_rows = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    train_labels = sum((written[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert data.train_images.shape == (20, 3, 32, 32) and data.train_images.dtype == torch.uint8
    # a row is the red plane, then green, then blue, each row-major 32x32
    assert data.train_images[5, 1, 2, 3] == train_rows[5, 1024 + 2 * 32 + 3]
    assert data.train_labels.tolist() == train_labels
    assert data.test_labels.tolist() == written["test_batch"][1]
    x, y = next(data.test_batches(4))
    assert x.shape == (4, 3, 32, 32) and y.dtype == torch.int64


def test_cifar_missing_root_and_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="data.root is not set"):
        build_data(conf("cifar10"))
    with pytest.raises(UserError, match=r"nope is not a folder; expected the CIFAR-10"):
        build_data(conf("cifar10", root=str(tmp_path / "nope")))
    write_cifar(tmp_path)
    (tmp_path / "test_batch").unlink()
    with pytest.raises(UserError, match="lacks test_batch; expected"):
        build_data(conf("cifar10", root=str(tmp_path)))


@pytest.mark.parametrize("payload, match", [
    (b"not a pickle at all", "is not a CIFAR-10 python batch"),
    (pickle.dumps({b"labels": [1]}), "is not a CIFAR-10 python batch"),
    (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}),
     r"expected uint8 \(N, 3072\)"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}),
     "labels in 0..9"),
    (pickle.dumps(Path("/")), "refusing to load"),
])
def test_cifar_malformed_batch(tmp_path: Path, payload: bytes, match: str) -> None:
    write_cifar(tmp_path)
    (tmp_path / "data_batch_3").write_bytes(payload)
    with pytest.raises(UserError, match=match) as err:
        build_data(conf("cifar10", root=str(tmp_path)))
    assert "data_batch_3" in str(err.value) and "\n" not in str(err.value)


# -- ImageNet tree --------------------------------------------------------------------------

COLOURS = {"n01": (220, 30, 30), "n02": (30, 220, 30), "n03": (30, 30, 220)}
SIZES = [(40, 30), (30, 52), (64, 64)]


def write_tree(root: Path, val_per_class: int = 1) -> None:
    for split, count in (("train", 3), ("val", val_per_class)):
        for c, colour in COLOURS.items():
            (root / split / c).mkdir(parents=True)
            for i in range(count):
                im = Image.new("RGB", SIZES[i], colour)
                im.save(root / split / c / f"{c}_{i}.JPEG", quality=95)


def tree_conf(root: Path, **over: object) -> dict:
    small = {"root": str(root), "num_classes": 3, "image_size": 16, "workers": 0}
    return conf("imagenet", **{**small, **over})


def test_imagenet_tree_reads_back(tmp_path: Path) -> None:
    write_tree(tmp_path)
    data = build_data(tree_conf(tmp_path))
    assert (data.train_size, data.test_size, data.classes) == (9, 3, sorted(COLOURS))
    for batches in (data.train_batches(0, 0, 3), data.test_batches(2)):
        for x, y in batches:
            assert x.dtype == torch.uint8 and x.shape[1:] == (3, 16, 16)
            for img, label in zip(x, y.tolist(), strict=True):
                colour = img.float().mean((1, 2))
                expect = torch.tensor(COLOURS[data.classes[label]], dtype=torch.float32)
                assert (colour - expect).abs().max() < 12  # JPEG is lossy


def test_imagenet_eval_is_deterministic_and_centre_cropped(tmp_path: Path) -> None:
    write_tree(tmp_path)
    (tmp_path / "val" / "n01" / "n01_0.JPEG").unlink()
    im = np.zeros((40, 80, 3), np.uint8)  # a wide image: left half black, right half white
    im[:, 40:] = 255
    Image.fromarray(im).save(tmp_path / "val" / "n01" / "wide.png")
    data = build_data(tree_conf(tmp_path, test_image_size=32))
    a = torch.cat([x for x, _ in data.test_batches(2)])
    b = torch.cat([x for x, _ in data.test_batches(3)])
    assert torch.equal(a, b)
    # short side 40 -> 32, so 64x32, centre 16x16 spans columns 24..39: half black, half white
    # (pycls's offsets: ceil((64 - 16) / 2) = 24)
    wide = a[0, 0].float()
    assert wide[:, :7].max() < 30 and wide[:, 9:].min() > 225


def test_imagenet_train_crops_depend_only_on_seed_and_epoch(tmp_path: Path) -> None:
    write_tree(tmp_path)
    for c in COLOURS:  # textured images so different crops give different pixels
        path = tmp_path / "train" / c / f"{c}_2.JPEG"
        noise = np.random.default_rng(len(c)).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(noise).save(path)
    data = build_data(tree_conf(tmp_path))
    run = lambda epoch, seed: list(data.train_batches(epoch, seed, 4))  # noqa: E731

    def same(p: list, q: list) -> bool:
        return len(p) == len(q) and all(
            torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(p, q, strict=True))

    a = run(1, 5)
    assert len(a) == 2
    assert same(a, run(1, 5))
    assert not same(a, run(2, 5))
    data.workers = 2  # same batches whatever the worker count
    assert same(a, run(1, 5))


class Recorder:
    """An np.random stand-in for pycls's code that replays a Generator's draws."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def uniform(self, lo: float = 0.0, hi: float = 1.0) -> float:
        return self.rng.uniform(lo, hi)

    def randint(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi))


def pycls_random_sized_crop(h: int, w: int, size: int, random: Recorder,
                            area_frac: float = 0.08, max_iter: int = 10) -> tuple:
    """pycls/datasets/transforms.py (branch vitconfigs) ``random_sized_crop`` and its
    ``scale_and_center_crop`` fallback, with the image reduced to its shape: returns the
    crop as (x, y, w, h) in original pixels, or ("centre", x, y, new_w, new_h) in the
    resized image's pixels for the fallback."""
    area = h * w
    for _ in range(max_iter):
        target_area = random.uniform(area_frac, 1.0) * area
        aspect_ratio = random.uniform(3.0 / 4.0, 4.0 / 3.0)
        w_crop = round(math.sqrt(target_area * aspect_ratio))
        h_crop = round(math.sqrt(target_area / aspect_ratio))
        if random.uniform() < 0.5:
            w_crop, h_crop = h_crop, w_crop
        if h_crop <= h and w_crop <= w:
            y = 0 if h_crop == h else random.randint(0, h - h_crop)
            x = 0 if w_crop == w else random.randint(0, w - w_crop)
            return x, y, w_crop, h_crop
    if w < h and w != size:
        w, h = size, int(h / w * size)
    elif h <= w and h != size:
        w, h = int(w / h * size), size
    return "centre", math.ceil((w - size) / 2), math.ceil((h - size) / 2), w, h


def test_train_crop_is_pyclss_random_sized_crop() -> None:
    fallbacks = 0
    for i, (w, h) in enumerate([(500, 375), (375, 500), (224, 224), (1000, 40), (40, 900),
                                (333, 250)] * 40):
        ref = pycls_random_sized_crop(h, w, 224, Recorder(i))
        box = imagenet.crop_box(w, h, np.random.default_rng(i), style="pycls",
                                scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), size=224)
        if ref[0] == "centre":  # the fallback: the centre 224 of the resized image
            fallbacks += 1
            _, x, y, nw, nh = ref
            expect = (x * w / nw, y * h / nh, (x + 224) * w / nw, (y + 224) * h / nh)
        else:
            x, y, cw, ch = ref
            expect = (x, y, x + cw, y + ch)
        assert box == pytest.approx(expect)
    assert fallbacks >= 20  # the thin images exercise the fallback


def test_random_resized_crop_box_stays_inside() -> None:
    rng = np.random.default_rng(0)
    for style in imagenet.CROPS:
        for w, h in ((500, 375), (30, 300), (300, 30), (1, 1)):
            for _ in range(50):
                l, t, r, b = imagenet.crop_box(w, h, rng, style=style, scale=(0.08, 1.0),
                                               ratio=(0.75, 4 / 3), size=16)
                assert 0 <= l < r <= w + 1e-9 and 0 <= t < b <= h + 1e-9


def test_imagenet_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="data.root is not set for imagenet"):
        build_data(conf("imagenet"))
    with pytest.raises(UserError, match="missing is not a folder; expected data.root/train"):
        build_data(tree_conf(tmp_path / "missing"))
    with pytest.raises(UserError, match=r"train is not a folder; expected"):
        build_data(tree_conf(tmp_path))
    write_tree(tmp_path)
    with pytest.raises(UserError, match="has 3 class folders but data.num_classes=1000"):
        build_data(conf("imagenet", root=str(tmp_path)))
    (tmp_path / "val" / "n09").mkdir()
    with pytest.raises(UserError, match="n09 not in"):
        build_data(tree_conf(tmp_path))
    (tmp_path / "val" / "n09").rmdir()
    for f in (tmp_path / "val").glob("*/*"):
        f.unlink()
    with pytest.raises(UserError, match=r"val holds no .JPEG"):
        build_data(tree_conf(tmp_path))
    for f in (tmp_path / "train" / "n02").glob("*"):
        f.unlink()
    with pytest.raises(UserError, match=r"n02 holds no .JPEG"):
        build_data(tree_conf(tmp_path))


@pytest.mark.parametrize("workers", [0, 1])
def test_imagenet_corrupt_jpeg_names_the_file(tmp_path: Path, workers: int) -> None:
    write_tree(tmp_path)
    bad = tmp_path / "val" / "n02" / "n02_0.JPEG"
    bad.write_bytes(b"\xff\xd8 truncated")
    data = build_data(tree_conf(tmp_path, workers=workers))
    with pytest.raises(UserError, match=r"cannot decode image .*n02_0.JPEG") as err:
        list(data.test_batches(3))
    assert "\n" not in str(err.value)


# -- ImageNet decoders: reduced-size decode, simplejpeg, DALI selection ------------------

CPU_DECODERS = ["pil"] + (["simplejpeg"] if imagenet._simplejpeg() is not None else [])


def smooth_photo(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Smooth colour fields: content whose reduced and full decodes should nearly agree."""
    low = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    return Image.fromarray(low).resize((w, h), Image.Resampling.BICUBIC)


def write_big_tree(root: Path) -> None:
    """3 classes x 3 train images large enough that crops to 16 px decode at 1/2..1/8."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 3), ("val", 1)):
        for c in COLOURS:
            (root / split / c).mkdir(parents=True)
            for i in range(count):
                w, h = ((200, 150), (150, 210), (256, 256))[i]
                smooth_photo(rng, w, h).save(root / split / c / f"{c}_{i}.JPEG", quality=92)


def test_dct_scale_keeps_the_crop_at_least_the_output_size() -> None:
    assert imagenet.dct_scale(500, 375, 224) == 1
    assert imagenet.dct_scale(448, 448, 224) == 2
    assert imagenet.dct_scale(447, 900, 224) == 1
    assert imagenet.dct_scale(1000, 900, 224) == 4
    assert imagenet.dct_scale(2000, 1792, 224) == 8
    assert imagenet.dct_scale(5000, 5000, 224) == 8


@pytest.mark.parametrize("decoder", CPU_DECODERS)
def test_reduced_decode_is_close_to_the_full_decode(tmp_path: Path, decoder: str) -> None:
    write_big_tree(tmp_path)
    data = build_data(tree_conf(tmp_path, decoder=decoder))
    ts = data.train_set
    full = imagenet.TrainSet(ts.items, ts.size, ts.scale, ts.ratio, ts.resample, decoder,
                             reduce=False)
    reduced = 0
    for index, seed in data.epoch_keys(0, 3, 3) * 4:
        seed += index  # more distinct crops than one epoch of 9 images gives
        a, la = ts[(index, seed)]
        b, lb = full[(index, seed)]
        assert a.shape == b.shape == (3, 16, 16) and a.dtype == b.dtype == torch.uint8
        assert la == lb
        assert (a.float() - b.float()).abs().mean() < 3.0
        box = imagenet.crop_box(*Image.open(ts.items[index][0]).size,
                                np.random.default_rng(seed), style=ts.crop, scale=ts.scale,
                                ratio=ts.ratio, size=ts.size)
        reduced += imagenet.dct_scale(box[2] - box[0], box[3] - box[1], 16) > 1
    assert reduced >= 10  # the comparison really exercised reduced decodes


@pytest.mark.parametrize("decoder", CPU_DECODERS)
def test_reduced_eval_is_close_to_the_full_decode(tmp_path: Path, decoder: str) -> None:
    write_big_tree(tmp_path)
    data = build_data(tree_conf(tmp_path, decoder=decoder, test_image_size=64))
    es = data.eval_set
    full = imagenet.EvalSet(es.items, es.size, 64, es.resample, decoder, reduce=False)
    for i in range(len(es)):
        a, b = es[i][0], full[i][0]
        assert a.shape == b.shape == (3, 16, 16)
        assert (a.float() - b.float()).abs().mean() < 3.0


def test_order_and_crops_depend_only_on_seed_and_epoch_whichever_decoder(tmp_path: Path) -> None:
    write_big_tree(tmp_path)
    runs = {d: build_data(tree_conf(tmp_path, decoder=d)) for d in CPU_DECODERS}
    pil = runs["pil"]
    keys = pil.epoch_keys(2, 7, 4)
    assert keys == pil.epoch_keys(2, 7, 4) and keys != pil.epoch_keys(3, 7, 4)
    ref = list(pil.train_batches(2, 7, 4))
    for data in runs.values():
        assert data.epoch_keys(2, 7, 4) == keys
        out = list(data.train_batches(2, 7, 4))
        assert len(out) == len(ref) == 2
        for (x, y), (rx, ry) in zip(out, ref, strict=True):
            assert torch.equal(y, ry)
            assert (x.float() - rx.float()).abs().mean() < 1.0  # same boxes, same libjpeg


@pytest.mark.skipif("simplejpeg" not in CPU_DECODERS, reason="simplejpeg not installed")
def test_simplejpeg_hands_what_it_cannot_decode_to_pillow(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cmyk, png = tmp_path / "cmyk.JPEG", tmp_path / "png.JPEG"
    smooth_photo(rng, 64, 48).convert("CMYK").save(cmyk, quality=95)
    smooth_photo(rng, 64, 48).save(png, format="PNG")
    for path in (cmyk, png):
        a, sa = imagenet.open_image(str(path), "simplejpeg").decode(2)
        b, sb = imagenet.open_image(str(path), "pil").decode(2)
        assert sa == sb and np.array_equal(np.asarray(a), np.asarray(b))


def _no_gpu_stack(monkeypatch: pytest.MonkeyPatch, *, cuda: bool, dali: bool,
                  simplejpeg: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(imagenet, "_dali_installed", lambda: dali)
    if not simplejpeg:
        monkeypatch.setattr(imagenet, "_simplejpeg", lambda: None)


@pytest.mark.parametrize(("cuda", "dali", "sj", "expect"), [
    (True, True, True, "dali"), (True, True, False, "dali"),
    (True, False, True, "simplejpeg"), (False, True, True, "simplejpeg"),
    (False, True, False, "pil"), (False, False, False, "pil")])
def test_auto_decoder(monkeypatch: pytest.MonkeyPatch, cuda: bool, dali: bool, sj: bool,
                      expect: str) -> None:
    if sj and "simplejpeg" not in CPU_DECODERS:
        monkeypatch.setattr(imagenet, "_simplejpeg", lambda: object())
    _no_gpu_stack(monkeypatch, cuda=cuda, dali=dali, simplejpeg=sj)
    assert imagenet.resolve_decoder("auto") == expect
    assert imagenet.resolve_decoder("pil") == "pil"


@pytest.mark.parametrize(("cuda", "dali", "sj", "name", "match"), [
    (True, False, True, "dali", r"nvidia.dali\) is not installed; pip install "
                                r"--extra-index-url https://pypi.nvidia.com .*data.decoder=auto"),
    (False, True, True, "dali", "CUDA is not available here; set data.decoder=auto"),
    (False, False, False, "simplejpeg", "pip install simplejpeg==1.9.0, or set "
                                        "data.decoder=auto"),
    (False, False, True, "turbo", "data.decoder must be one of auto, pil, simplejpeg, dali")])
def test_unavailable_decoder_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         cuda: bool, dali: bool, sj: bool, name: str,
                                         match: str) -> None:
    _no_gpu_stack(monkeypatch, cuda=cuda, dali=dali, simplejpeg=sj)
    write_tree(tmp_path)
    with pytest.raises(UserError, match=match) as err:
        build_data(tree_conf(tmp_path, decoder=name))
    assert "\n" not in str(err.value)


def test_dali_gets_the_epoch_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wiring only: DALI itself is never run here (no GPU; not on PyPI)."""
    from sweep.data import dali

    _no_gpu_stack(monkeypatch, cuda=True, dali=True, simplejpeg=True)
    seen = {}

    def fake(items, **kw):
        seen.update(kw, items=items)
        return iter(())

    monkeypatch.setattr(dali, "dali_train_batches", fake)
    write_tree(tmp_path)
    data = build_data(tree_conf(tmp_path, workers=3))
    assert data.decoder == "dali" and data.eval_set.decoder in CPU_DECODERS
    assert list(data.train_batches(1, 5, 4)) == []
    keys = data.epoch_keys(1, 5, 4)
    assert seen["items"] == [data.train_set.items[i] for i, _ in keys]
    assert (seen["batch_size"], seen["size"], seen["threads"]) == (4, 16, 3)
    assert seen["scale"] == (0.08, 1.0)
    first = seen["seed"]
    list(data.train_batches(1, 5, 4))
    assert seen["seed"] == first
    list(data.train_batches(2, 5, 4))
    assert seen["seed"] != first
