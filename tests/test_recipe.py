"""The recipe against the reference code (pycls): weight-decay groups, warmup + cosine,
EMA, precise BN, divergence, AutoAugment v0, and configs that must not be mixed."""

from __future__ import annotations

import copy
import math
import re

import pytest
import torch
from omegaconf import OmegaConf

from sweep.data import epoch_generator
from sweep.data.augment import BatchAugment
from sweep.data.base import STREAM_PRECISE_BN
from sweep.driver import record, studies
from sweep.engine import trainer
from sweep.engine.config import architecture, compose, load_model
from sweep.engine.recipe import build_ema, build_scheduler, decayed_names, update_ema
from sweep.errors import UserError
from sweep.models import model_class

TINY = ["data.train_size=256", "data.test_size=64", "data.batch_size=64", "optimizer.lr=1e-3",
        "optimizer.wd=0.05",
        "data.eval_batch_size=64", "schedule.epochs=5", "threads=1", "precise_bn_images=128"]


def build_model(name: str, image_size: int = 32):
    cfg = load_model(name)
    spec_ = architecture(cfg)
    return model_class(spec_)(spec_, image_size=image_size, num_classes=10)


def pycls_name(name: str) -> str:
    """vitstab's parameter name as pycls's ViT names the same parameter."""
    name = re.sub(r"^blocks\.(\d+)\.norm(\d)\.", r"encoder.block_\1.ln_\2.", name)
    name = re.sub(r"^norm\.", "encoder.ln.", name)
    return re.sub(r"^stem\.convs\.(\d+)\.", lambda m: f"stem.cstem{m[1]}_"
                  + ("bn." if int(m[1]) % 3 == 1 else "conv."), name)


def default_decay() -> dict:
    """The weight-decay kinds of the shipped optimizer configs (adamw and sgd agree)."""
    keys = ("bn_wd", "ln_wd", "bias_wd", "decay_embeddings")
    found = [{k: compose("train", [f"optimizer={o}"]).optimizer[k] for k in keys}
             for o in ("adamw", "sgd")]
    assert found[0] == found[1]
    return found[0]


def test_decayed_set_is_the_authors_grouping_for_vitc_1gf():
    model = build_model("vitc_1gf")
    # pycls/core/optimizer.py: the first of "bn", "ln", "bias", "" found in the name; the
    # authors' vitconv_baselines configs give BN, LN and bias 0 wd, the rest the trial's.
    wds = {0: False, 1: False, 2: False, 3: True}
    expected = set()
    for n, _ in model.named_parameters():
        ks = [k for k, x in enumerate(["bn", "ln", "bias", ""]) if x in pycls_name(n)]
        if wds[ks[0]]:
            expected.add(n)
    assert {"pos_embedding", "class_token", "stem.convs.0.weight"} <= expected
    decayed = decayed_names(model, **default_decay())
    assert decayed == expected
    stem_bn = {n for n, _ in model.named_parameters()
               if n.startswith("stem.convs.") and int(n.split(".")[2]) % 3 == 1}
    assert len(stem_bn) == 2 * 4  # weight and bias of each of the stem's 4 BatchNorms
    assert not stem_bn & decayed
    old = decayed_names(model, bn_wd=0.0, decay_embeddings=False)
    assert old == {n for n, p in model.named_parameters()
                   if p.ndim > 1 and n not in ("pos_embedding", "class_token")}


def test_default_schedule_ends_at_min_lr_0_005_of_base():
    cfg = compose("train", [*TINY, "model=vitc_tiny", "optimizer.lr=1e-3",
                            "optimizer.wd=0.05"])
    assert cfg.schedule.min_lr == 0.005
    trial = trainer.build(cfg)
    base = trial.optimizer.param_groups[0]["initial_lr"]
    total = trial.data.steps_per_epoch(trial.batch_size) * trial.epochs
    for _ in range(total):
        trial.optimizer.step()
        trial.scheduler.step()
    assert trial.optimizer.param_groups[0]["lr"] == pytest.approx(0.005 * base, rel=1e-12)


def test_lr_schedule_is_pycls_warmup_times_whole_run_cosine():
    total, warmup, base = 100, 10, 0.5
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    sched = build_scheduler(opt, total_steps=total, warmup_steps=warmup, warmup_factor=0.1,
                            min_lr=0.01)
    lrs = []
    for _ in range(total + 1):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()

    def ref(step):  # pycls get_epoch_lr with lr_fun_cos, per step
        lr = 0.5 * (1.0 + math.cos(math.pi * step / total))
        lr = ((1.0 - 0.01) * lr + 0.01) * base
        if step < warmup:
            a = step / warmup
            lr *= 0.1 * (1.0 - a) + a
        return lr

    assert lrs[0] == pytest.approx(0.1 * base)
    assert lrs[warmup] == pytest.approx(ref(warmup)) and lrs[warmup] < base
    assert lrs[total - 1] == pytest.approx(ref(total - 1))
    assert lrs[total] == pytest.approx(0.01 * base)
    assert all(a == pytest.approx(ref(i)) for i, a in enumerate(lrs))


def test_ema_copies_during_warmup_then_averages():
    model = torch.nn.Linear(2, 2)
    ema = build_ema(model)
    with torch.no_grad():
        model.weight.fill_(1.0)
    update_ema(ema, model, step=3, iteration=3, alpha=0.1, period=1, warmup_steps=5)
    assert torch.equal(ema.module.weight, model.weight)
    with torch.no_grad():
        model.weight.fill_(2.0)
    update_ema(ema, model, step=5, iteration=5, alpha=0.1, period=1, warmup_steps=5)
    assert torch.allclose(ema.module.weight, torch.full((2, 2), 1.1))
    update_ema(ema, model, step=7, iteration=7, alpha=0.1, period=2, warmup_steps=5)  # off
    assert torch.allclose(ema.module.weight, torch.full((2, 2), 1.1))
    # pycls counts the period within the epoch: iteration 0 of a new epoch updates even
    # when the run's step count is off-period.
    update_ema(ema, model, step=9, iteration=0, alpha=0.1, period=4, warmup_steps=5)
    assert torch.allclose(ema.module.weight, torch.full((2, 2), 1.19))


def test_precise_bn_equals_cumulative_average_over_the_same_batches():
    cfg = compose("train", [*TINY, "model=vitc_tiny"])
    trial = trainer.build(cfg)
    trainer.train_epoch(trial, 0)
    manual = copy.deepcopy(trial.model)
    trainer.refresh_bn(trial, 0)
    bns = [m for m in manual.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    gen = epoch_generator(trial.seed, 0, STREAM_PRECISE_BN)
    order = int(torch.randint(0, 2**62, (1,), generator=gen).item())
    manual.train()
    with torch.no_grad():
        for i, (x, _) in enumerate(trial.data.train_batches(epoch=0, seed=order,
                                                            batch_size=64)):
            if i == 2:
                break
            manual(trial.aug.train_images(x, generator=gen))
    got = [m for m in trial.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for a, b in zip(got, bns, strict=True):
        assert torch.allclose(a.running_mean, b.running_mean, atol=1e-6)
        assert torch.allclose(a.running_var, b.running_var, atol=1e-6)
        assert a.momentum == 0.1
    # The EMA got its own statistics; a model without BatchNorm is left alone.
    ema_bn = next(m for m in trial.ema.module.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert int(ema_bn.num_batches_tracked) == 2
    vitp = trainer.build(compose("train", [*TINY, "model=vitp_tiny"]))
    trainer.refresh_bn(vitp, 0)


def test_late_divergence_keeps_the_best_completed_epoch(tmp_path, monkeypatch):
    real = trainer.train_epoch

    def blow_up_in_epoch_3(trial, epoch):
        return None if epoch == 2 else real(trial, epoch)

    monkeypatch.setattr(trainer, "train_epoch", blow_up_in_epoch_3)
    cfg = compose("train", [*TINY, "model=vitp_tiny"])
    result = trainer.run_trial(cfg, workdir=tmp_path, log=None)
    assert result["diverged"] is True and result["epochs_run"] == 2
    assert result["best_error"] == min(h["ema_error"] for h in result["history"])
    assert result["error"] == result["history"][-1]["error"]


def test_a_high_loss_must_persist_diverge_patience_steps():
    over = ["diverge_factor=0.01"]  # every step's loss is "high"
    cfg = compose("train", [*TINY, *over, "model=vitp_tiny", "diverge_patience=100"])
    assert trainer.train_epoch(trainer.build(cfg), 0) is not None
    cfg = compose("train", [*TINY, *over, "model=vitp_tiny", "diverge_patience=2"])
    assert trainer.train_epoch(trainer.build(cfg), 0) is None


def test_autoaugment_v0_builds_and_draws_per_generator():
    aug = BatchAugment(num_classes=10, image_size=32, mean=[0.5] * 3, std=[0.25] * 3,
                       crop_padding=0, flip=False, autoaugment=True, autoaugment_policy="v0",
                       lighting=0.0, mixup=0.0, cutmix=0.0, mixup_switch_prob=0.5, mix_prob=1.0,
                       label_smoothing=0.0)
    assert len(aug._policies) == 25
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    a = aug.train_images(x, torch.Generator().manual_seed(1))
    b = aug.train_images(x, torch.Generator().manual_seed(1))
    c = aug.train_images(x, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert compose("train", ["data=imagenet"]).data.augment.autoaugment_policy == "v0"


TINY_PAIR = "sweep.models=[vitp_tiny,vitc_tiny]"


def test_optimizer_override_reaches_every_group():
    cfg = compose("run", [TINY_PAIR, "optimizer.nesterov=false", "optimizer.eps=1e-6"])
    groups = studies.group_configs(cfg)
    assert groups["vitc_tiny-sgd"]["optimizer"]["nesterov"] is False
    assert groups["vitc_tiny-sgd"]["optimizer"]["name"] == "sgd"
    assert groups["vitp_tiny-adamw"]["optimizer"]["eps"] == 1e-6
    plain = studies.group_configs(compose("run", [TINY_PAIR]))
    assert plain["vitc_tiny-sgd"]["optimizer"]["nesterov"] is True


def test_model_override_reaches_every_group_and_its_record(tmp_path):
    cfg = compose("run", [TINY_PAIR, "model.depth=3"])
    groups = studies.group_configs(cfg)
    assert {g["model"]["depth"] for g in groups.values()} == {3}
    record.save(cfg, tmp_path, [0])
    saved = OmegaConf.to_container(OmegaConf.load(tmp_path / record.CONFIG))
    assert saved["groups"]["vitp_tiny-sgd"]["model"]["depth"] == 3
    with pytest.raises(UserError, match="groups.vitc_tiny-adamw.model.depth: 3 -> 5"):
        record.sample_starts(compose("run", [TINY_PAIR]), tmp_path)
    # One that no model of the sweep can take is refused in one line, naming it.
    with pytest.raises(UserError, match="conv stem ends at width 64, not the model width 96"):
        studies.group_configs(compose("run", [TINY_PAIR, "model.width=96"]))


def test_changed_group_config_blocks_resume(tmp_path, monkeypatch):
    cfg = compose("run", [TINY_PAIR])
    record.save(cfg, tmp_path, [0])
    assert "groups" in OmegaConf.load(tmp_path / record.CONFIG)
    assert record.sample_starts(cfg, tmp_path) == [0]
    real = studies.load_model

    def edited(name, overrides=None):  # as if conf/model/vitc_tiny.yaml were edited
        m = real(name, overrides)
        if name == "vitc_tiny":
            m.depth = m.depth + 1
        return m

    monkeypatch.setattr(studies, "load_model", edited)
    with pytest.raises(UserError, match="groups.vitc_tiny-adamw.model.depth"):
        record.sample_starts(cfg, tmp_path)
    monkeypatch.undo()
    with pytest.raises(UserError, match="nesterov"):
        record.sample_starts(compose("run", [TINY_PAIR, "optimizer.nesterov=false"]), tmp_path)


def test_train_refuses_a_different_config_in_the_same_out(cli, tmp_path):
    args = ["sweep.train", *TINY, "schedule.epochs=1", "model=vitp_tiny", "optimizer.lr=1e-3",
            "optimizer.wd=0.05", f"out={tmp_path}"]
    cli(*args)
    again = cli(*args[:-2], "optimizer.wd=0.1", args[-1], check=False)
    assert again.returncode == 2 and "another config" in again.stderr
    assert "optimizer.wd" in again.stderr and len(again.stderr.strip().splitlines()) == 1


def test_paper_model_needs_data_root_and_its_resolution(cli, tmp_path):
    # A dry run reads no data: it plans the study and says, in one line, what a real
    # run still needs. The real run refuses before it writes anything.
    proc = cli("sweep.run", "sweep.models=[vitp_4gf]", "dry_run=true",
               f"results={tmp_path}", check=False, env={"VITSTAB_DATA": ""})
    assert proc.returncode == 0 and "a real run needs data.root" in proc.stdout
    assert "VITSTAB_DATA" in proc.stdout and "gpu-hours" in proc.stdout.lower()
    proc = cli("sweep.run", "sweep.models=[vitp_4gf]", f"results={tmp_path}", check=False,
               env={"VITSTAB_DATA": ""})
    assert proc.returncode == 2 and "data.root" in proc.stderr and "VITSTAB_DATA" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not any(tmp_path.iterdir())
    proc = cli("sweep.train", "model=vitp_1gf", "optimizer.lr=1e-3", "optimizer.wd=0.05",
               f"out={tmp_path / 'r'}", check=False)
    assert proc.returncode == 2 and "allow_resolution=true" in proc.stderr


def test_paper_model_dry_run_on_an_imagenet_folder(cli, tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        for cls in ("n01", "n02"):
            d = tmp_path / "inet" / split / cls
            d.mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (40, 30), (i * 90, 60, 120)).save(d / f"{i}.JPEG")
    proc = cli("sweep.run", "sweep.models=[vitp_4gf]", "dry_run=true",
               f"data.root={tmp_path / 'inet'}", f"results={tmp_path / 'res'}")
    assert "128 trials" in proc.stdout and "224 px" in proc.stdout
    rows = [ln.split() for ln in proc.stdout.splitlines() if ln.startswith("vitp_4gf-")]
    assert len(rows) == 128 and {r[4] for r in rows} == {"50"}


def test_a_trial_leaves_the_cached_synthetic_data_as_generated(tmp_path):
    """A reused Ray actor's next trial takes the same synthetic tensors from the cache, so a
    trial (training, precise BN, evaluation of model and EMA) must never write into them."""
    from sweep.data.synthetic import generate, generate_cached

    cfg = compose("train", [*TINY, "model=vitc_tiny", "schedule.epochs=1"])
    first = trainer.build(cfg).data
    trainer.run_trial(cfg, workdir=tmp_path, log=None)
    again = trainer.build(cfg).data
    assert again.train_images is first.train_images  # a cache hit, not a second rendering
    kw = {"seed": int(cfg.data.seed), "image_size": int(cfg.data.image_size),
          "num_classes": int(cfg.data.num_classes)}
    for split, images in (("train", again.train_images), ("test", again.test_images)):
        assert torch.equal(images, generate(len(images), split=split, **kw)[0])
    assert generate_cached.cache_info().hits >= 2
