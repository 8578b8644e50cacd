"""How fast can one CPU core feed ImageNet crops? Writes its own ImageNet-style folder of
photo-like JPEGs (smooth colour + shapes + texture and grain, ~500x375, quality 90, ~110
KiB like ImageNet's train files) plus a few 1024x768 ones to a temp dir, then times
decode + RandomResizedCrop(224) + horizontal flip per image in one process (what one
DataLoader worker does, minus the IPC) for the original full-decode Pillow path and each
faster path, as ratios against the original measured in the same run; the eval transform
(resize 256 + centre crop 224) likewise. Files come from the page cache, so disk and
network reads are not counted. Ends with the cores one GPU would need for ViT-4GF at a
stated, assumed GPU throughput. About two minutes on a slow shared core.

    .venv/bin/python bench/bench_jpeg.py [--images 1500] [--rounds 2] [--mfu 0.25]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from sweep.data.imagenet import (
    EvalSet,
    PilFile,
    TrainSet,
    _simplejpeg,
    crop_box,
    dct_scale,
)

SIZES = [(500, 375), (500, 333), (375, 500), (500, 400), (640, 480), (400, 300), (500, 500)]


def photo(rng: np.random.Generator, size: tuple[int, int], grain: np.ndarray) -> Image.Image:
    """Smooth colour fields, a few soft-edged shapes and sensor-like grain: close to a
    photo in JPEG cost (entropy per pixel), unlike flat colour or white noise."""
    w, h = size
    base = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    im = Image.fromarray(base).resize((w, h), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(4, 12))):
        x0, y0 = int(rng.integers(-w // 4, w)), int(rng.integers(-h // 4, h))
        x1, y1 = x0 + int(rng.integers(20, w // 2)), y0 + int(rng.integers(20, h // 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    im = im.filter(ImageFilter.GaussianBlur(1.2))
    oy, ox = int(rng.integers(0, grain.shape[0] - h)), int(rng.integers(0, grain.shape[1] - w))
    arr = np.asarray(im, dtype=np.int16) + grain[oy:oy + h, ox:ox + w]
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def texture(rng: np.random.Generator, side: int = 1024) -> np.ndarray:
    """Mid-frequency texture (std 40, correlated over ~3 px) plus white grain (std 14), as
    int16 offsets; tuned so q90 files of 500x375 average ~110 KiB like ImageNet's train set."""
    low = rng.normal(0, 40, (side // 3, side // 3, 3)).astype(np.float32)
    mid = np.stack([np.asarray(Image.fromarray(low[..., c]).resize(
        (side, side), Image.Resampling.BICUBIC)) for c in range(3)], -1)
    return (rng.normal(0, 14, (side, side, 3)) + mid).astype(np.int16)


def write_tree(root: Path, n: int, seed: int = 0, classes: int = 10,
               sizes: list[tuple[int, int]] = SIZES) -> list[tuple[str, int]]:
    rng = np.random.default_rng(seed)
    grain = texture(rng, 2 * max(max(s) for s in sizes))
    items = []
    for i in range(n):
        c = i % classes
        folder = root / "train" / f"n{c:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"img_{i:05d}.JPEG"
        photo(rng, sizes[int(rng.integers(len(sizes)))], grain).save(path, quality=90)
        items.append((str(path), c))
    return items


def rate(fn: Callable[[int], object], n: int) -> float:
    """Images per CPU-second of this (single-threaded) process: per-core throughput,
    and less disturbed by other load on a shared machine than wall time."""
    t0 = time.process_time()
    for i in range(n):
        fn(i)
    return n / (time.process_time() - t0)


def best_rates(paths: dict[str, Callable[[int], object]], n: int, rounds: int) -> dict:
    """images/s per path, the best of ``rounds`` interleaved passes (the machine is shared)."""
    out: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(rounds):
        for name, fn in paths.items():
            out[name].append(rate(fn, n))
    return {k: max(v) for k, v in out.items()}


def report(title: str, rates: dict[str, float], baseline: str) -> None:
    print(title)
    for name, r in rates.items():
        print(f"  {name:<30} {r:6.0f} images/s per core   x{r / rates[baseline]:.2f}")


def reduced_share(ds: TrainSet, seeds: list[int]) -> float:
    """Fraction of the crops that a reduced (1/2..1/8) decode serves."""
    hits = 0
    for i, seed in enumerate(seeds):
        box = crop_box(*PilFile(ds.items[i][0]).size, np.random.default_rng(seed),
                       style=ds.crop, scale=ds.scale, ratio=ds.ratio, size=ds.size)
        hits += dct_scale(box[2] - box[0], box[3] - box[1], ds.size) > 1
    return hits / len(seeds)


def train_paths(items: list[tuple[str, int]], seeds: list[int], size: int,
                simplejpeg: bool) -> tuple[dict[str, Callable[[int], object]], TrainSet]:
    kw = dict(size=size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
              resample=Image.Resampling.BILINEAR)

    def run(ds: TrainSet) -> Callable[[int], object]:
        return lambda i: torch.flip(ds[(i, seeds[i])][0], (2,))

    draft = TrainSet(items, **kw)
    paths = {CURRENT: run(TrainSet(items, reduce=False, **kw)), "pil + draft": run(draft)}
    if simplejpeg:
        paths["simplejpeg, full decode"] = run(TrainSet(items, decoder="simplejpeg",
                                                        reduce=False, **kw))
        paths["simplejpeg + scaled decode"] = run(TrainSet(items, decoder="simplejpeg", **kw))
    return paths, draft


CURRENT = "pil, full decode (current)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=1500)
    p.add_argument("--large-images", type=int, default=150)
    p.add_argument("--eval-images", type=int, default=500)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--peak-tflops", type=float, default=989.0,
                   help="dense bf16 peak of the GPU (H100 SXM / H200: 989)")
    p.add_argument("--mfu", type=float, default=0.25,
                   help="assumed model-FLOPs utilization of ViT-4GF training in bf16")
    args = p.parse_args()
    torch.set_num_threads(1)
    sj = _simplejpeg()
    print(f"Pillow {Image.__version__}, simplejpeg {getattr(sj, '__version__', 'not installed')}"
          f"; per-core rates are images per CPU-second of one process, best of {args.rounds}")

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        items = write_tree(Path(tmp) / "a", args.images)
        large = write_tree(Path(tmp) / "b", args.large_images, seed=1, sizes=[(1024, 768)])
        kib = statistics.mean(os.path.getsize(path) for path, _ in items) / 1024
        print(f"wrote {len(items)} ImageNet-like JPEGs (~500x375, q90, mean {kib:.0f} KiB; "
              f"ImageNet train averages ~110 KiB) and {len(large)} of 1024x768 in "
              f"{time.perf_counter() - t0:.0f} s")
        seeds = np.random.default_rng(1).integers(0, 2**62, len(items)).tolist()

        paths, draft = train_paths(items, seeds, args.size, sj is not None)
        train_rates = best_rates(paths, len(items), args.rounds)
        report(f"train, ~500x375: decode + RandomResizedCrop({args.size}) + flip "
               f"(a reduced decode serves {reduced_share(draft, seeds):.0%} of crops)",
               train_rates, CURRENT)
        paths, draft = train_paths(large, seeds, args.size, sj is not None)
        report(f"train, 1024x768 (a reduced decode serves "
               f"{reduced_share(draft, seeds[:len(large)]):.0%} of crops)",
               best_rates(paths, len(large), args.rounds), CURRENT)

        short = int(round(args.size / 0.875))
        eval_paths = {}
        for name, src, kw in (("pil (current), ~500x375", items, dict(reduce=False)),
                              ("pil + draft, ~500x375", items, {}),
                              ("pil (current), 1024x768", large, dict(reduce=False)),
                              ("pil + draft, 1024x768", large, {})):
            ds = EvalSet(src[:args.eval_images], args.size, round(args.size / 0.875),
                         Image.Resampling.BILINEAR, **kw)
            eval_paths[name] = (lambda d: lambda i: d[i])(ds)
        ev = {k: max(rate(f, min(args.eval_images, len(large))) for _ in range(args.rounds))
              for k, f in eval_paths.items()}
        print(f"eval: decode + resize {short} + centre crop {args.size} (reduced only when "
              f"the short side is >= {2 * short})")
        for k, r in ev.items():
            base = ev[k.replace("pil + draft", "pil (current)")]
            print(f"  {k:<30} {r:6.0f} images/s per core   x{r / base:.2f}")

    from sweep.complexity import complexity_rows

    flops = complexity_rows(["vitc_4gf"])[0]["flops"]
    gpu = args.peak_tflops * 1e12 * args.mfu / (3 * flops)
    print(f"one GPU training ViT_C-4GF in bf16: {flops / 1e9:.2f} GF/image forward x 3 "
          f"(fwd + bwd) at {args.peak_tflops:.0f} TFLOPS peak x {args.mfu:.0%} utilization "
          f"(both assumed) = {gpu:,.0f} images/s; CPU cores needed (~500x375 images):")
    for name, r in train_rates.items():
        print(f"  {name:<30} {gpu / r:5.0f}")


if __name__ == "__main__":
    main()
