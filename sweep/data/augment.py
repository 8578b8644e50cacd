"""Batch augmentation on the training device: pad-crop, flip, AutoAugment, normalisation,
label smoothing, and mixup/CutMix (one of the two per batch, like timm's ``Mixup`` in
batch mode), so no per-image Python loop sits between the loader and the GPU.

Every random draw comes from the ``torch.Generator`` passed to ``train``: for a given
generator state the output is exactly reproducible. kornia's AutoAugment reads the global
RNG, so it runs inside ``torch.random.fork_rng`` with the global RNG reseeded from that
generator; the caller's global RNG state is left untouched.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sweep.errors import UserError

AUGMENT_KEYS = ("crop_padding", "flip", "autoaugment", "autoaugment_policy", "lighting",
                "mixup", "cutmix", "mixup_switch_prob", "mix_prob", "label_smoothing")

# pycls's AutoAugment "policy_v0" (pycls/datasets/augment.py AUTOAUG_POLICY, timm's "v0"):
# (op, probability, magnitude in [0, 1]) per operation, two operations per sub-policy.
V0_POLICY = (
    (("equalize", 0.8, 0.1), ("shear_y", 0.8, 0.4)),
    (("color", 0.4, 0.9), ("equalize", 0.6, 0.3)),
    (("color", 0.4, 0.1), ("rotate", 0.6, 0.8)),
    (("solarize", 0.8, 0.3), ("equalize", 0.4, 0.7)),
    (("solarize", 0.4, 0.2), ("solarize", 0.6, 0.2)),
    (("color", 0.2, 0.0), ("equalize", 0.8, 0.8)),
    (("equalize", 0.4, 0.8), ("solarize_add", 0.8, 0.3)),
    (("shear_x", 0.2, 0.9), ("rotate", 0.6, 0.8)),
    (("color", 0.6, 0.1), ("equalize", 1.0, 0.2)),
    (("invert", 0.4, 0.9), ("rotate", 0.6, 0.0)),
    (("equalize", 1.0, 0.9), ("shear_y", 0.6, 0.3)),
    (("color", 0.4, 0.7), ("equalize", 0.6, 0.0)),
    (("posterize", 0.4, 0.6), ("auto_contrast", 0.4, 0.7)),
    (("solarize", 0.6, 0.8), ("color", 0.6, 0.9)),
    (("solarize", 0.2, 0.4), ("rotate", 0.8, 0.9)),
    (("rotate", 1.0, 0.7), ("trans_y", 0.8, 0.9)),
    (("shear_x", 0.0, 0.0), ("solarize", 0.8, 0.4)),
    (("shear_y", 0.8, 0.0), ("color", 0.6, 0.4)),
    (("color", 1.0, 0.0), ("rotate", 0.6, 0.2)),
    (("equalize", 0.8, 0.4), ("equalize", 0.0, 0.8)),
    (("equalize", 1.0, 0.4), ("auto_contrast", 0.6, 0.2)),
    (("shear_y", 0.4, 0.7), ("solarize_add", 0.6, 0.7)),
    (("posterize", 0.8, 0.2), ("solarize", 0.6, 1.0)),
    (("solarize", 0.6, 0.8), ("equalize", 0.6, 0.1)),
    (("color", 0.8, 0.6), ("rotate", 0.4, 0.5)),
)
# pycls's OP_RANGES: magnitude m in [0, 1] -> value lo + m (hi - lo), sign random if negate.
V0_RANGES = {
    "rotate": (0.0, 30.0, True), "posterize": (0.0, 4.0, False),
    "solarize": (0.0, 256.0, False), "solarize_add": (0.0, 110.0, False),
    "color": (0.1, 1.9, False), "shear_x": (0.0, 0.3, True), "shear_y": (0.0, 0.3, True),
    "trans_y": (0.0, 0.45, True),
}
POSTERIZE_MIN = 1  # pycls: at least one bit (0 would blank the image)

# AlexNet-style PCA lighting noise of ImageNet's RGB pixels (pycls datasets/imagenet.py
# _EIG_VALS, _EIG_VECS, from fb.resnet.torch), applied as pycls's ``lighting`` does.
EIG_VALS = (0.2175, 0.0188, 0.0045)
EIG_VECS = ((-0.5675, 0.7192, 0.4009),
            (-0.5808, -0.0045, -0.8140),
            (-0.5836, -0.6948, 0.4203))


def _v0_op(name: str, prob: float, magnitude: float) -> torch.nn.Module:
    """One pycls v0 operation as a kornia policy operation at pycls's exact value."""
    from kornia.augmentation.auto import operations as ops

    if name in ("equalize", "auto_contrast", "invert"):
        cls = {"equalize": ops.Equalize, "auto_contrast": ops.AutoContrast,
               "invert": ops.Invert}[name]
        return cls(prob)
    lo, hi, negate = V0_RANGES[name]
    v = magnitude * (hi - lo) + lo
    if name == "posterize":
        v = float(max(POSTERIZE_MIN, int(v)))
    elif name == "solarize":  # pycls keeps pixel i < int(v); images here are in [0, 1]
        v = int(v) / 255.0
        if v > 1.0:  # magnitude 1: no pixel is below 256, the op is the identity
            v, prob = 1.0, 0.0
    elif name == "solarize_add":
        v = v / 255.0
    cls = {"rotate": ops.Rotate, "posterize": ops.Posterize, "solarize": ops.Solarize,
           "solarize_add": ops.SolarizeAdd, "color": ops.Saturate, "shear_x": ops.ShearX,
           "shear_y": ops.ShearY, "trans_y": ops.TranslateY}[name]
    return cls(None, prob, magnitude_range=(v, v), symmetric_megnitude=negate) if negate \
        else cls(None, prob, magnitude_range=(v, v))


def policy_modules(policy: str) -> list[torch.nn.Module]:
    """The sub-policies of an AutoAugment policy as kornia modules: ``v0`` (pycls's)
    built from kornia's operations at pycls's magnitudes, or one of kornia's presets."""
    from kornia.augmentation.auto import AutoAugment
    from kornia.augmentation.auto.operations.policy import PolicySequential

    if policy == "v0":
        return [PolicySequential(*[_v0_op(*op) for op in sub]) for sub in V0_POLICY]
    return [m for _, m in AutoAugment(policy).named_children()]


class BatchAugment:
    """Turns uint8 (N, 3, H, W) batches into normalised float images and soft targets.

    Settings mirror ``data.augment`` in conf/data/*.yaml; there are no defaults here.
    ``mixup``/``cutmix`` are Beta(α, α) parameters (0 turns each off); when both are on,
    CutMix is used for a batch with probability ``mixup_switch_prob``; ``mix_prob`` is
    the chance a batch is mixed at all. Partners are the batch reversed (timm's pairing).
    """

    def __init__(self, *, num_classes: int, image_size: int, mean: Sequence[float],
                 std: Sequence[float], crop_padding: int, flip: bool, autoaugment: bool,
                 autoaugment_policy: str, lighting: float, mixup: float, cutmix: float,
                 mixup_switch_prob: float, mix_prob: float, label_smoothing: float) -> None:
        self.num_classes, self.image_size = num_classes, image_size
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.crop_padding, self.flip = crop_padding, flip
        self.autoaugment_policy = autoaugment_policy if autoaugment else None
        self.lighting = float(lighting)
        self.mixup, self.cutmix = float(mixup), float(cutmix)
        self.mixup_switch_prob, self.mix_prob = float(mixup_switch_prob), float(mix_prob)
        self.label_smoothing = float(label_smoothing)
        self._consts: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._policies: list[torch.nn.Module] = []
        if autoaugment:
            self._policies = policy_modules(autoaugment_policy)
        # What the last train() call mixed: ("mixup" | "cutmix", lambda) or None.
        self.last_mix: tuple[str, float] | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], *, num_classes: int,
                    image_size: int | None = None, mean: Sequence[float] | None = None,
                    std: Sequence[float] | None = None,
                    device: torch.device | str | None = None) -> BatchAugment:
        """From ``cfg.data`` (image_size, mean and std are then read from it unless given)
        or from ``cfg.data.augment`` plus explicit image_size, mean and std; the settings
        are checked by their schema. ``device`` only pre-places the normalisation
        constants there."""
        from sweep.data import to_dict
        from sweep.engine.schema import AugmentConfig, typed

        c = to_dict(cfg)
        if "augment" in c:
            image_size = c.get("image_size") if image_size is None else image_size
            mean = c.get("mean") if mean is None else mean
            std = c.get("std") if std is None else std
            c = to_dict(c["augment"])
        if image_size is None or mean is None or std is None:
            raise TypeError("from_config(cfg.data.augment, ...) needs image_size, mean and std; "
                            "or pass cfg.data itself")
        settings = typed(AugmentConfig, c, "data.augment")
        if settings.crop_padding >= image_size:
            raise UserError(f"data.augment.crop_padding {settings.crop_padding} must be below "
                            f"the image size {image_size}")
        aug = cls(num_classes=num_classes, image_size=int(image_size), mean=list(mean),
                  std=list(std), **{k: settings[k] for k in AUGMENT_KEYS})
        if device is not None:
            aug._constants(torch.device(device))
        return aug

    @property
    def mixing(self) -> bool:
        return self.mix_prob > 0 and (self.mixup > 0 or self.cutmix > 0)

    # -- public entry points -------------------------------------------------------------

    def train(self, x: torch.Tensor, y: torch.Tensor,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented normalised float images and (N, num_classes) soft targets."""
        self._check(x)
        if y.shape != (x.shape[0],):
            raise ValueError(f"labels must have shape ({x.shape[0]},), got {tuple(y.shape)}")
        x = self.train_images(x, generator)
        target = self.soft_targets(y)
        self.last_mix = None
        if self.mixing:
            x, target = self._mix(x, target, generator)
        return x, target

    def train_images(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The per-image part of ``train`` (crop, flip, AutoAugment, normalisation), no
        mixing: what pycls's training loader serves (precise BN statistics use it)."""
        self._check(x)
        x = self._crop_flip(x, generator)
        if not self._policies and not self.lighting:
            return self._normalize(x.float(), scale=255.0)
        x = x.float().div_(255.0)
        if self._policies:
            x = self._autoaugment(x, generator)
        if self.lighting:  # after AutoAugment, before normalisation, as pycls's loader
            x = self._lighting(x, generator)
        return self._normalize(x, scale=1.0)

    def eval(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised float images, no randomness."""
        self._check(x)
        return self._normalize(x.float(), scale=255.0)

    def soft_targets(self, y: torch.Tensor) -> torch.Tensor:
        """One-hot targets with label smoothing: ε/K off the true class, 1-ε+ε/K on it."""
        off = self.label_smoothing / self.num_classes
        return F.one_hot(y.long(), self.num_classes).float() * (1.0 - self.label_smoothing) + off

    # -- pieces --------------------------------------------------------------------------

    def _check(self, x: torch.Tensor) -> None:
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected uint8 images (N, 3, H, W), got {x.dtype} "
                             f"{tuple(x.shape)}")

    def _constants(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) as (1, 3, 1, 1) tensors on ``device``, made once per device."""
        key = str(device)
        if key not in self._consts:
            self._consts[key] = (torch.tensor(self.mean, device=device).view(1, 3, 1, 1),
                                 torch.tensor(self.std, device=device).view(1, 3, 1, 1))
        return self._consts[key]

    def _normalize(self, x: torch.Tensor, scale: float) -> torch.Tensor:
        """In place on a fresh float tensor; ``scale`` is 255 for raw pixel values."""
        mean, std = self._constants(x.device)
        return x.sub_(mean * scale).div_(std * scale)

    def _crop_flip(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Random crop from the zero-padded image and/or horizontal flip, one gather."""
        p, n = self.crop_padding, x.shape[0]
        if p == 0 and not self.flip:
            return x
        dev = g.device
        if p == 0:
            flip = (torch.rand(n, generator=g, device=dev) < 0.5).to(x.device)
            return torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
        h, w = x.shape[-2:]
        oy = torch.randint(0, 2 * p + 1, (n,), generator=g, device=dev).to(x.device)
        ox = torch.randint(0, 2 * p + 1, (n,), generator=g, device=dev).to(x.device)
        padded = F.pad(x, (p, p, p, p))
        if self.flip:
            flip = (torch.rand(n, generator=g, device=dev) < 0.5).to(x.device)
        if x.device.type == "cpu":
            # A window copy per image: 7.5x faster on the CPU than one advanced-index
            # gather (1.1 against 8.5 ms for 128 images at 64 px), the same bytes.
            out = torch.empty_like(x)
            flips = flip.tolist() if self.flip else [False] * n
            for i, (a, b, f) in enumerate(zip(oy.tolist(), ox.tolist(), flips, strict=True)):
                window = padded[i, :, a:a + h, b:b + w]
                out[i] = window.flip(2) if f else window
            return out
        rows = oy[:, None] + torch.arange(h, device=x.device)
        cols = ox[:, None] + torch.arange(w, device=x.device)
        if self.flip:
            cols = torch.where(flip[:, None], cols.flip(1), cols)
        i = torch.arange(n, device=x.device).view(n, 1, 1, 1)
        c = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
        return padded[i, c, rows[:, None, :, None], cols[:, None, None, :]]

    def _lighting(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """pycls's ``lighting``: per image, alpha ~ N(0, lighting) for each principal
        component, and the offset sum_j vec[:, j] alpha_j val_j added to every pixel
        (x float in [0, 1], RGB)."""
        alpha = torch.randn(x.shape[0], 3, generator=g, device=g.device).to(x.device)
        vals = torch.tensor(EIG_VALS, device=x.device)
        vecs = torch.tensor(EIG_VECS, device=x.device)
        rgb = (alpha * self.lighting * vals) @ vecs.T
        return x.add_(rgb.view(-1, 3, 1, 1))

    def _autoaugment(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """AutoAugment with one sub-policy drawn *per image* (as timm does), run as one
        kornia call per distinct sub-policy in the batch; x is float in [0, 1]."""
        n = x.shape[0]
        choice = torch.randint(0, len(self._policies), (n,), generator=g, device=g.device)
        choice = choice.cpu()
        out = torch.empty_like(x)
        with _seeded_global_rng(x.device, _draw_seed(g)):
            for k in torch.unique(choice).tolist():
                idx = torch.nonzero(choice == k).squeeze(1).to(x.device)
                out[idx] = self._policies[k](x[idx]).clamp_(0.0, 1.0)
        return out

    def _mix(self, x: torch.Tensor, target: torch.Tensor,
             g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix each image with its partner in the reversed batch; the targets get the
        exact pixel fraction (CutMix boxes clipped at the border correct lambda)."""
        rng = np.random.default_rng(_draw_seed(g))
        if rng.random() >= self.mix_prob:
            return x, target
        cutmix = self.cutmix > 0 and (self.mixup <= 0 or rng.random() < self.mixup_switch_prob)
        alpha = self.cutmix if cutmix else self.mixup
        lam = float(rng.beta(alpha, alpha))
        partner = x.flip(0)
        if cutmix:
            (y0, y1, x0, x1), lam = cutmix_box(x.shape[-2], x.shape[-1], lam, rng)
            x = x.clone()
            x[:, :, y0:y1, x0:x1] = partner[:, :, y0:y1, x0:x1]
        else:
            x = x.mul(lam).add_(partner, alpha=1.0 - lam)
        self.last_mix = ("cutmix" if cutmix else "mixup", lam)
        return x, target.mul(lam).add_(target.flip(0), alpha=1.0 - lam)


def cutmix_box(h: int, w: int, lam: float,
               rng: np.random.Generator) -> tuple[tuple[int, int, int, int], float]:
    """A box of area about (1 - lam) of the image, centred uniformly, clipped to the image;
    returns (y0, y1, x0, x1) and the lambda that the clipped box really leaves."""
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
    y0, y1 = int(np.clip(cy - ch // 2, 0, h)), int(np.clip(cy + ch // 2, 0, h))
    x0, x1 = int(np.clip(cx - cw // 2, 0, w)), int(np.clip(cx + cw // 2, 0, w))
    return (y0, y1, x0, x1), 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)


def _draw_seed(g: torch.Generator) -> int:
    return int(torch.randint(0, 2**62, (1,), generator=g, device=g.device).item())


@contextmanager
def _seeded_global_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Run a block that reads the global RNG (kornia) from ``seed``, restoring the
    caller's CPU and device RNG state afterwards."""
    cuda = device.type == "cuda"
    index = (device.index if device.index is not None else torch.cuda.current_device()) \
        if cuda else None
    with torch.random.fork_rng(devices=[index] if cuda else [], device_type="cuda"):
        torch.random.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield
