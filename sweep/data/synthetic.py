"""Shapes-and-textures: a 10-class image set generated from a seed, so the default study
needs no download and ships no file.

A class is fixed by *local* structure only (a shape or a texture patch) drawn at a random
position, scale, rotation and colour over a cluttered background (low-frequency colour
noise, soft blobs and thin line segments that are never class shapes). Because the class
object moves around and its colour is random relative to the background, a linear
classifier on pixels does poorly, while a small conv net, which is translation-equivariant
and can detect edges and periodic texture, does well. Rendering is vectorised in torch
over a chunk of images with soft (anti-aliased) signed-distance masks.

Images are generated in fixed chunks of ``CHUNK`` images, each from its own generator
seeded by ``(seed, split, chunk)``, so memory stays bounded and the train and test splits
come from disjoint random streams.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

CLASS_NAMES = (
    "disk", "ring", "cross", "triangle", "square_outline",
    "horizontal_stripes", "vertical_stripes", "checkerboard", "diagonal_stripes", "dot_grid",
)
CHUNK = 1024
SPLITS = {"train": 0, "test": 1}

# Geometry is specified for 32x32 images and scaled linearly for other sizes.
_REF_SIZE = 32.0


def generate(n: int, *, seed: int, split: str, image_size: int = 32,
             num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images uint8 (n, 3, S, S) and labels int64 (n,), every class within one image
    of n / num_classes. Deterministic in ``(seed, split, n, image_size, num_classes)``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    images = torch.empty(n, 3, image_size, image_size, dtype=torch.uint8)
    labels = torch.empty(n, dtype=torch.int64)
    for c, start in enumerate(range(0, n, CHUNK)):
        stop = min(start + CHUNK, n)
        state = np.random.SeedSequence([seed, SPLITS[split], c]).generate_state(2, np.uint32)
        g = torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))
        # Labels cycle through the classes over the whole split (so every class has
        # n // num_classes or one more images) and are shuffled within the chunk.
        y = torch.arange(start, stop) % num_classes
        y = y[torch.randperm(stop - start, generator=g)]
        images[start:stop] = _render(y, g, image_size)
        labels[start:stop] = y
    return images, labels


@functools.lru_cache(maxsize=2)
def generate_cached(n: int, *, seed: int, split: str, image_size: int = 32,
                    num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """``generate``, kept for the next trial of the same process: a sweep's actors are
    reused, and rendering the mini pair's 5,000 64-px images costs about 7 s of an 80-s
    trial. Callers must not write into the tensors (the trainer only reads them)."""
    return generate(n, seed=seed, split=split, image_size=image_size, num_classes=num_classes)


def _rand(g: torch.Generator, *shape: int, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    return torch.rand(*shape, generator=g) * (hi - lo) + lo


def _box(u: torch.Tensor, v: torch.Tensor, bu: torch.Tensor | float,
         bv: torch.Tensor | float) -> torch.Tensor:
    """Signed distance (pixels) to an axis-aligned box of half-sizes (bu, bv)."""
    qu, qv = u.abs() - bu, v.abs() - bv
    outside = torch.sqrt(qu.clamp(min=0) ** 2 + qv.clamp(min=0) ** 2)
    return outside + torch.maximum(qu, qv).clamp(max=0)


def _alpha(sdf: torch.Tensor) -> torch.Tensor:
    """Coverage of a pixel by the inside of a signed distance field (1-px soft edge)."""
    return (0.5 - sdf).clamp(0.0, 1.0)


def _stripes(t: torch.Tensor) -> torch.Tensor:
    """Sharp-edged 50% duty-cycle pattern from a sinusoid."""
    return (0.5 + 2.5 * t).clamp(0.0, 1.0)


def _render(y: torch.Tensor, g: torch.Generator, size: int) -> torch.Tensor:
    n = y.numel()
    f = size / _REF_SIZE
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    py, px = coords.view(1, size, 1), coords.view(1, 1, size)

    # Background: a random base colour plus smooth colour noise at two scales.
    base = _rand(g, n, 3, 1, 1, lo=0.15, hi=0.85)
    img = base
    for grid, amp in ((4, 0.2), (8, 0.1)):
        coarse = _rand(g, n, 3, grid, grid, lo=-amp, hi=amp)
        img = img + F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)

    # Distractors under the class object: soft Gaussian blobs and thin line segments.
    for _ in range(4):
        img = _blob(img, g, py, px, f)
    for _ in range(3):
        img = _line(img, g, py, px, f)

    # The class object: centre, half-size s, small rotation, colour contrasting the base.
    s = _rand(g, n, 1, 1, lo=4.0, hi=8.0) * f
    cy = s + _rand(g, n, 1, 1) * (size - 2 * s)
    cx = s + _rand(g, n, 1, 1) * (size - 2 * s)
    th = _rand(g, n, 1, 1, lo=-0.26, hi=0.26)
    extra = _rand(g, n, 1, 1)  # per-class free parameter (triangle turn, diagonal sign)
    period = _rand(g, n, 1, 1, lo=2.8, hi=3.8) * f
    sign = torch.where(base > 0.5, -1.0, 1.0)
    fg = base + sign * _rand(g, n, 3, 1, 1, lo=0.2, hi=0.5)
    u = (px - cx) * torch.cos(th) + (py - cy) * torch.sin(th)
    v = -(px - cx) * torch.sin(th) + (py - cy) * torch.cos(th)

    alpha = torch.zeros(n, size, size)
    for k in range(int(y.max()) + 1 if n else 0):
        m = y == k
        if m.any():
            alpha[m] = _shape(k, u[m], v[m], s[m], extra[m], period[m])
    img = img * (1 - alpha[:, None]) + fg * alpha[:, None]
    # One more line segment over the object, so it is sometimes partly occluded.
    img = _line(img, g, py, px, f)
    img = img + 0.04 * torch.randn(img.shape, generator=g)
    return (img.clamp(0, 1) * 255).round_().to(torch.uint8)


def _blob(img: torch.Tensor, g: torch.Generator, py: torch.Tensor, px: torch.Tensor,
          f: float) -> torch.Tensor:
    """Composite a soft Gaussian blob of random colour (present with probability 0.8)."""
    n, size = img.shape[0], img.shape[-1]
    cy, cx = _rand(g, n, 1, 1, hi=size), _rand(g, n, 1, 1, hi=size)
    sigma = _rand(g, n, 1, 1, lo=1.2, hi=3.0) * f
    on = (_rand(g, n, 1, 1) < 0.8).float()
    a = 0.75 * on * torch.exp(-((py - cy) ** 2 + (px - cx) ** 2) / (2 * sigma**2))
    return img * (1 - a[:, None]) + _rand(g, n, 3, 1, 1) * a[:, None]


def _line(img: torch.Tensor, g: torch.Generator, py: torch.Tensor, px: torch.Tensor,
          f: float) -> torch.Tensor:
    """Composite a thin line segment of random colour, angle and length (probability 0.7)."""
    n, size = img.shape[0], img.shape[-1]
    cy, cx = _rand(g, n, 1, 1, hi=size), _rand(g, n, 1, 1, hi=size)
    th = _rand(g, n, 1, 1, hi=math.pi)
    half = _rand(g, n, 1, 1, lo=3.0, hi=8.0) * f
    on = (_rand(g, n, 1, 1) < 0.7).float()
    along = (px - cx) * torch.cos(th) + (py - cy) * torch.sin(th)
    across = -(px - cx) * torch.sin(th) + (py - cy) * torch.cos(th)
    a = on * _alpha(_box(along, across, half, 0.45 * f))
    return img * (1 - a[:, None]) + _rand(g, n, 3, 1, 1) * a[:, None]


def _shape(k: int, u: torch.Tensor, v: torch.Tensor, s: torch.Tensor, extra: torch.Tensor,
           period: torch.Tensor) -> torch.Tensor:
    """Coverage mask of class ``k`` in object coordinates (pixels, centre at 0)."""
    two_pi = 2 * math.pi
    if k == 0:  # filled disk
        return _alpha(torch.sqrt(u**2 + v**2) - s)
    if k == 1:  # ring
        return _alpha((torch.sqrt(u**2 + v**2) - 0.72 * s).abs() - 0.24 * s)
    if k == 2:  # plus-shaped cross
        w = 0.26 * s
        return _alpha(torch.minimum(_box(u, v, s, w), _box(u, v, w, s)))
    if k == 3:  # filled triangle at any rotation
        turn = extra * two_pi
        d = torch.stack([u * torch.cos(turn + i * two_pi / 3) + v * torch.sin(turn + i * two_pi / 3)
                         for i in range(3)]).amax(0)
        return _alpha(d - 0.55 * s)
    if k == 4:  # square outline
        return _alpha(_box(u, v, s, s).abs() - 0.17 * s - 0.3)
    # Texture classes fill a square patch of half-size s.
    patch = _alpha(_box(u, v, s, s))
    if k == 5:  # horizontal stripes
        return patch * _stripes(torch.sin(two_pi * v / period))
    if k == 6:  # vertical stripes
        return patch * _stripes(torch.sin(two_pi * u / period))
    if k == 7:  # checkerboard
        return patch * _stripes(torch.sin(two_pi * u / period) * torch.sin(two_pi * v / period))
    if k == 8:  # diagonal stripes, either diagonal (so horizontal flips keep the class)
        d = torch.where(extra < 0.5, u + v, u - v) / math.sqrt(2)
        return patch * _stripes(torch.sin(two_pi * d / (1.1 * period)))
    if k == 9:  # 3x3 grid of dots
        step = 2 * s / 3
        du, dv = u - step * torch.round(u / step), v - step * torch.round(v / step)
        return patch * _alpha(torch.sqrt(du**2 + dv**2) - 0.3 * step)
    raise ValueError(f"no class {k}")
