"""BatchAugment: soft targets, label smoothing, mixup/CutMix fractions, pad-crop/flip,
AutoAugment, generator determinism and the eval normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sweep.data.augment import AUGMENT_KEYS, BatchAugment
from sweep.errors import UserError

MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
OFF = {"crop_padding": 0, "flip": False, "autoaugment": False, "autoaugment_policy": "imagenet",
       "lighting": 0.0, "mixup": 0.0, "cutmix": 0.0, "mixup_switch_prob": 0.5, "mix_prob": 1.0,
       "label_smoothing": 0.0}


def make(**over: object) -> BatchAugment:
    return BatchAugment.from_config({**OFF, **over}, num_classes=10, image_size=16,
                                    mean=MEAN, std=STD)


def batch(n: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 16, 16), generator=g, dtype=torch.uint8)
    # the partner of i is n-1-i; give partners different labels
    y = torch.arange(n) % 10
    return x, y


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_eval_normalises_per_channel() -> None:
    aug = make()
    x, _ = batch()
    out = aug.eval(x)
    expect = (x.float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(
        STD).view(1, 3, 1, 1)
    assert out.dtype == torch.float32 and torch.allclose(out, expect, atol=1e-5)
    assert torch.allclose(aug.train(x, torch.zeros(16, dtype=torch.long), gen())[0], expect,
                          atol=1e-5)  # everything off: train equals eval


def test_label_smoothing_values() -> None:
    aug = make(label_smoothing=0.1)
    x, y = batch()
    _, t = aug.train(x, y, gen())
    assert torch.allclose(t.sum(1), torch.ones(16))
    assert torch.allclose(t[torch.arange(16), y], torch.full((16,), 0.9 + 0.01))
    off = t.clone()
    off[torch.arange(16), y] = 0.01
    assert torch.allclose(off, torch.full_like(off, 0.01))


def test_mixup_mixes_images_and_targets_by_the_same_lambda() -> None:
    aug = make(mixup=0.8)
    x, y = batch()
    out, t = aug.train(x, y, gen(1))
    kind, lam = aug.last_mix
    assert kind == "mixup" and 0 < lam < 1
    xf = aug.eval(x)
    assert torch.allclose(out, lam * xf + (1 - lam) * xf.flip(0), atol=1e-5)
    assert torch.allclose(t[torch.arange(16), y], torch.full((16,), lam))
    assert torch.allclose(t.sum(1), torch.ones(16))


def test_cutmix_target_weight_is_the_pasted_pixel_fraction() -> None:
    aug = make(cutmix=1.0, label_smoothing=0.1)
    x, y = batch()
    xf = aug.eval(x)
    for seed in range(6):
        out, t = aug.train(x, y, gen(seed))
        kind, lam = aug.last_mix
        assert kind == "cutmix"
        own = (out == xf).all(1).float().mean((1, 2))  # fraction of each image kept
        pasted = (out == xf.flip(0)).all(1).float().mean((1, 2))
        assert torch.allclose(own, torch.full((16,), lam))
        assert torch.allclose(pasted, torch.full((16,), 1 - lam))
        # soft targets: lam of the own smoothed label, 1 - lam of the partner's
        smooth = aug.soft_targets(y)
        assert torch.allclose(t, lam * smooth + (1 - lam) * smooth.flip(0), atol=1e-6)
        assert torch.allclose(t.sum(1), torch.ones(16))


@pytest.mark.parametrize("switch, kinds", [(0.0, {"mixup"}), (1.0, {"cutmix"}),
                                           (0.5, {"mixup", "cutmix"})])
def test_switch_prob_picks_one_of_the_two_per_batch(switch: float, kinds: set) -> None:
    aug = make(mixup=0.8, cutmix=1.0, mixup_switch_prob=switch)
    x, y = batch(4)
    g, seen = gen(), set()
    for _ in range(40):
        aug.train(x, y, g)
        seen.add(aug.last_mix[0])
    assert seen == kinds


def test_mix_prob_zero_disables_mixing() -> None:
    aug = make(mixup=0.8, cutmix=1.0, mix_prob=0.0)
    x, y = batch()
    out, t = aug.train(x, y, gen())
    assert aug.last_mix is None and torch.equal(t, aug.soft_targets(y))


def test_pad_crop_is_a_shift_with_zero_fill() -> None:
    aug = make(crop_padding=4)
    x, y = batch()
    out, _ = aug.train(x, y, gen(3))
    zero = aug.eval(torch.zeros(1, 3, 1, 1, dtype=torch.uint8)).view(3)
    padded = torch.nn.functional.pad(aug.eval(x), (4, 4, 4, 4))
    padded += zero.view(1, 3, 1, 1) * (torch.nn.functional.pad(
        torch.zeros(1, 1, 16, 16), (4, 4, 4, 4), value=1.0))
    shifts = set()
    for i in range(16):
        found = [(dy, dx) for dy in range(9) for dx in range(9)
                 if torch.allclose(out[i], padded[i, :, dy:dy + 16, dx:dx + 16])]
        assert found, f"image {i} is not a crop of its padded input"
        shifts.add(found[0])
    assert len(shifts) > 4


def test_crop_and_flip_serve_the_bytes_of_one_indexed_gather() -> None:
    """The CPU's per-image window copies give exactly what one advanced-index gather of
    the padded batch (the device path) gives, for the same draws."""
    aug = make(crop_padding=4, flip=True)
    x, _ = batch(32)
    out = aug._crop_flip(x, gen(5))
    g = gen(5)
    oy, ox = (torch.randint(0, 9, (32,), generator=g) for _ in range(2))
    flip = torch.rand(32, generator=g) < 0.5
    cols = ox[:, None] + torch.arange(16)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    rows = oy[:, None] + torch.arange(16)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    ref = padded[torch.arange(32).view(32, 1, 1, 1), torch.arange(3).view(1, 3, 1, 1),
                 rows[:, None, :, None], cols[:, None, None, :]]
    assert torch.equal(out, ref)


def test_flip_mirrors_some_images_only() -> None:
    aug = make(flip=True)
    x, y = batch(32)
    out, _ = aug.train(x, y, gen())
    xf = aug.eval(x)
    same = [torch.equal(out[i], xf[i]) for i in range(32)]
    mirrored = [torch.equal(out[i], xf[i].flip(2)) for i in range(32)]
    assert all(a or b for a, b in zip(same, mirrored, strict=True))
    assert 4 < sum(mirrored) < 28


def test_everything_on_is_reproducible_from_the_generator_alone() -> None:
    aug = make(crop_padding=2, flip=True, autoaugment=True, mixup=0.8, cutmix=1.0,
               label_smoothing=0.1)
    x, y = batch(24)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = aug.train(x, y, gen(7))
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is left alone
    torch.manual_seed(999)  # a different global state must not matter
    b = aug.train(x, y, gen(7))
    c = aug.train(x, y, gen(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert torch.allclose(a[1].sum(1), torch.ones(24))
    assert torch.isfinite(a[0]).all()


def test_autoaugment_changes_images_and_stays_in_range() -> None:
    aug = make(autoaugment=True)
    x, y = batch(32)
    out, _ = aug.train(x, y, gen(2))
    xf = aug.eval(x)
    changed = (out - xf).abs().flatten(1).amax(1) > 1e-3
    assert changed.float().mean() > 0.3
    lo, hi = aug.eval(torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 3, 1,
                                                                                       1))
    assert (out >= lo.view(1, 3, 1, 1) - 1e-4).all() and (out <= hi.view(1, 3, 1, 1) + 1e-4).all()


@pytest.mark.parametrize("over, match", [
    ({"mixup": -1.0}, "data.augment.mixup must be >= 0, got -1.0"),
    ({"mixup_switch_prob": 1.5}, "mixup_switch_prob must be >= 0 and <= 1, got 1.5"),
    ({"label_smoothing": 1.0}, "label_smoothing must be >= 0 and < 1"),
    ({"crop_padding": 2.5}, "data.augment.crop_padding: Value .2.5. .* Integer"),
    ({"flip": "maybe"}, "data.augment.flip: Value .maybe. is not a valid bool"),
    ({"autoaugment_policy": "rand"}, "autoaugment_policy must be one of"),
    ({"mixpu": 0.8}, "unknown key data.augment.mixpu"),
])
def test_bad_settings_are_user_errors(over: dict, match: str) -> None:
    with pytest.raises(UserError, match=match):
        make(**over)


def test_missing_setting_is_a_user_error() -> None:
    cfg = dict(OFF)
    del cfg["cutmix"]
    with pytest.raises(UserError, match="data.augment.cutmix is not set"):
        BatchAugment.from_config(cfg, num_classes=10, image_size=16, mean=MEAN, std=STD)
    assert set(AUGMENT_KEYS) == set(OFF)


def test_wrong_input_dtype() -> None:
    with pytest.raises(ValueError, match="expected uint8"):
        make().eval(torch.zeros(2, 3, 16, 16))


def test_from_the_whole_data_config() -> None:
    data_cfg = {"image_size": 16, "mean": list(MEAN), "std": list(STD), "augment": dict(OFF)}
    aug = BatchAugment.from_config(data_cfg, num_classes=10, device="cpu")
    x, _ = batch()
    assert torch.allclose(aug.eval(x), make().eval(x))


def pycls_lighting(im: np.ndarray, alpha_std: float, eig_val, eig_vec,
                   alpha: np.ndarray) -> np.ndarray:
    """pycls/datasets/transforms.py ``lighting`` (HWC float RGB), with its
    ``np.random.normal(0, alpha_std, size=(1, 3))`` draw passed in as ``alpha``."""
    alpha = np.repeat(alpha * alpha_std, 3, axis=0)
    eig_val = np.repeat(np.array(eig_val), 3, axis=0)
    rgb = np.sum(np.array(eig_vec) * alpha * eig_val, axis=1)
    for i in range(3):
        im[:, :, i] = im[:, :, i] + rgb[i]
    return im


def test_lighting_is_pyclss_pca_noise() -> None:
    from sweep.data.augment import EIG_VALS, EIG_VECS

    aug = make(lighting=0.1)
    x, y = batch(n=8)
    out = aug.train_images(x, gen(3))
    alpha = torch.randn(8, 3, generator=gen(3)).numpy()  # the same draw, same generator
    for i in range(8):
        im = x[i].permute(1, 2, 0).numpy().astype(np.float32) / 255
        ref = pycls_lighting(im, 0.1, [EIG_VALS], EIG_VECS, alpha[i:i + 1])
        ref = (ref - np.array(MEAN)) / np.array(STD)
        np.testing.assert_allclose(out[i].permute(1, 2, 0).numpy(), ref, atol=1e-5)
    assert not torch.allclose(out, make().train_images(x, gen(3)))  # it does something
