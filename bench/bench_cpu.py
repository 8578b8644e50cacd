"""CPU training speed of the tiny and mini pairs, every figure a ratio of two things timed
in this run (about 6 minutes on 2 quiet cores).

    python bench/bench_cpu.py [--rounds 7] [--compile vitp_tiny,vitp_mini] [--no-compile]

The cores may be shared (a study training beside the bench), so no absolute time is
compared across runs: each figure alternates its sides (A B, B A, A B, ...) and reports
the median of the per-round ratios. Every process of the bench first settles glibc's
malloc (``settled_malloc``) as a trial's own allocations settle it.

0. The machine's fp32 peak: a 1024³ GEMM through PyTorch's matmul (MKL) and through
   oneDNN (``torch.ops.mkldnn._linear_pointwise``), and the model's own GEMM shapes. MKL
   dispatches its AVX-512 kernels only on Intel CPUs (an AMD EPYC with AVX-512 gets its
   AVX2 path, about half oneDNN's rate), so the peak is the faster of the two, measured
   in the same rounds as every figure that is a fraction of it.
1. A trial's training step (the project's ViT with its oneDNN linears, channels-last
   stem and fused AdamW, as ``sweep.engine.trainer`` builds them) against a plain ViT of
   the same shape built from PyTorch's ``nn.TransformerEncoder`` (norm_first, GELU,
   dropout 0; the same stem, class token, position embedding and head) trained with a
   stock ``torch.optim.AdamW``, one step at batch 128 (fwd + bwd + step), at 1 thread
   (how study trials run) for all four models and at 2 threads for one of each pair; at
   1 thread also against last round's step (``nn.Linear``, NCHW stem, unfused AdamW: the
   same model); and each step's fraction of the fp32 peak (flops: 3 × forward
   multiply-adds × 2 from ``complexity()``).
2. ``torch.compile`` (inductor) of the model against eager (vitp_mini unless
   ``--compile`` names others; a cold compile costs ~40-60 s each): steady-state speed,
   the compile time of a fresh process from an empty cache and of another with that
   cache warm (what later trials pay), the loss difference from the same weights, and
   the net speed over a 60-s trial with the compile time included.
3. Thread layout: 2 processes × 1 thread against 1 process × 2 threads, total images/s.
4. Evaluation (precise BN, then model and EMA on the test set) against one training
   epoch, at the demo's sizes (conf/preset/demo.yaml), with the trainer's own functions.
5. The parts of a training step as fractions of it: data and augmentation, fwd + bwd,
   optimizer, EMA.
6. A whole trial of the Fashion-MNIST lr/wd study (conf/experiment/fmnist-lr_wd.yaml:
   5,000 training and 2,000 test images, 5 epochs, 1 thread; ``run_trial`` from build
   to result, data loading included) as a fraction of the fp32 peak timed just before
   and after it. Its useful flops: each epoch's training (3 × forward) and the
   evaluation of the model and its EMA (1 × forward each); precise BN counts as zero.
   The synthetic set stands in, said so, where the Fashion-MNIST files are missing.
   ``--profile-json PATH`` also writes where a step's time goes (torch.profiler, by op).
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from itertools import pairwise
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sweep.data import build_data, epoch_generator
from sweep.data.base import STREAM_AUGMENT
from sweep.engine.config import architecture, compose, load_model
from sweep.engine.recipe import build_optimizer, update_ema
from sweep.engine.trainer import (
    Trial,
    build,
    evaluate,
    forward_backward,
    refresh_bn,
    run_trial,
    train_epoch,
)
from sweep.errors import UserError
from sweep.models import ViT
from sweep.models.linear import Linear, backward_kernel, cpu_vendor, onednn_available

PAIRS = {"tiny": ("vitp_tiny", "vitc_tiny"), "mini": ("vitp_mini", "vitc_mini")}
BATCH = 128
TRIAL_S = 60.0  # the trial length that compile time is weighed against


def settled_malloc() -> None:
    """Keep glibc's malloc from unmapping freed blocks up to 32 MB (and from trimming the
    heap). A bare training loop in a fresh process otherwise page-faults its activations
    in afresh every step (7,000-28,000 faults a step for these models, costing 1.03-1.24x
    of a 1-thread step), while in a trial the data generation and the first evaluation
    raise glibc's own thresholds (1,000-4,000 faults a step in its first epoch, 0-270
    after). The bench times that settled state; the trainer needs no such setting."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD, its 64-bit maximum
    mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD


# -- timing --------------------------------------------------------------------------------

def interleave(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds of each function per round, alternating them (the order flips every round
    so neither side always runs after the other); one untimed call of each first."""
    for f in fns.values():
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(rounds):
        for k in (list(fns) if r % 2 == 0 else list(reversed(fns))):
            t = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - t)
    return times


def speedup(times: dict[str, list[float]], a: str, b: str) -> float:
    """How much faster ``a`` ran than ``b``: the median over rounds of time(b) / time(a)."""
    return statistics.median(tb / ta for ta, tb in zip(times[a], times[b], strict=True))


GEMM_N, GEMM_REPS = 1024, 4
GEMM_FLOPS = 2 * GEMM_N**3 * GEMM_REPS
# The mini pair's own GEMM shapes (batch 128 × 17 tokens; width 128, MLP 512).
MODEL_SHAPES = ((2176, 128, 512), (2176, 512, 128), (2176, 128, 384))


def gemm(kernel: str = "mkl", m: int = GEMM_N, k: int = GEMM_N,
         n: int = GEMM_N) -> Callable[[], None]:
    """An (m×k)·(k×n) fp32 GEMM, GEMM_REPS per call: PyTorch's matmul (MKL) or oneDNN's."""
    a, w = torch.randn(m, k), torch.randn(n, k)
    wt = w.t().contiguous()

    def run() -> None:
        for _ in range(GEMM_REPS):
            if kernel == "mkl":
                a @ wt
            else:
                torch.ops.mkldnn._linear_pointwise(a, w, None, "none", [], "")
    return run


def peak_gemms() -> dict[str, Callable[[], None]]:
    """The two 1024³ GEMMs whose faster rate each round is the fp32 peak."""
    return {"gemm": gemm("mkl"), "onednn": gemm("onednn")} if onednn_available() \
        else {"gemm": gemm("mkl")}


def peak_times(times: dict[str, list[float]]) -> list[float]:
    """Per round, the faster of the peak GEMMs' times."""
    keys = [k for k in ("gemm", "onednn") if k in times]
    return [min(ts) for ts in zip(*(times[k] for k in keys), strict=True)]


def gemm_fraction(times: dict[str, list[float]], key: str, flops_per_call: float) -> float:
    """Median over rounds of (achieved flop rate of ``key``) / (fp32 peak that round)."""
    return statistics.median((flops_per_call / t) / (GEMM_FLOPS / g)
                             for t, g in zip(times[key], peak_times(times), strict=True))


def bench_peak(rounds: int) -> None:
    """MKL's and oneDNN's fp32 GEMM rates, at 1024³ and at the model's shapes."""
    print("0. fp32 GEMM peak, 1 thread: MKL (torch.matmul) vs oneDNN; GFLOP/s, median of "
          f"{rounds} rounds (CPU: {cpu_vendor() or 'unknown vendor'}; linear backward "
          f"kernel: {backward_kernel()})")
    if not onednn_available():
        print("   this torch build has no oneDNN linear: the peak is MKL's")
    for m, k, n in ((GEMM_N, GEMM_N, GEMM_N), *MODEL_SHAPES):
        fns = {"mkl": gemm("mkl", m, k, n)}
        if onednn_available():
            fns["onednn"] = gemm("onednn", m, k, n)
        t = interleave(fns, rounds)
        rate = {key: 2 * m * k * n * GEMM_REPS / statistics.median(v) / 1e9
                for key, v in t.items()}
        pair = "  ".join(f"{key} {r:6.1f}" for key, r in rate.items())
        ratio = f"  oneDNN/MKL {speedup(t, 'onednn', 'mkl'):.2f}" if "onednn" in t else ""
        print(f"   {m}×{k}×{n:<5} {pair}{ratio}")


# -- models --------------------------------------------------------------------------------

class PlainViT(nn.Module):
    """The baseline: the project ViT's stem, class token, position embedding and head
    around PyTorch's own pre-LN ``nn.TransformerEncoder`` of the same width, depth, heads
    and MLP size."""

    def __init__(self, vit: ViT) -> None:
        super().__init__()
        s = vit.spec
        self.stem = copy.deepcopy(vit.stem)
        self.class_token = nn.Parameter(vit.class_token.detach().clone())
        self.pos_embedding = nn.Parameter(vit.pos_embedding.detach().clone())
        layer = nn.TransformerEncoderLayer(s.width, s.heads, s.mlp_dim, dropout=0.0,
                                           activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, s.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(s.width)
        self.head = copy.deepcopy(vit.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.head(self.norm(self.encoder(x + self.pos_embedding))[:, 0])


def last_round(vit: ViT) -> ViT:
    """A copy of ``vit`` (same weights and function) as last round trained it: its linears
    ``nn.Linear`` (MKL's addmm) and its stem in NCHW."""
    m = copy.deepcopy(vit)
    for module in m.modules():
        if isinstance(module, Linear):
            module.__class__ = nn.Linear
    return m


def project_vit(name: str) -> tuple[ViT, torch.Tensor, torch.Tensor, float]:
    """The model (seeded, head drawn small so gradients reach the body), a batch, and the
    training flops per image."""
    cfg = load_model(name)
    spec = architecture(cfg)
    torch.manual_seed(0)
    vit = ViT(spec, image_size=cfg.image_size, num_classes=cfg.num_classes)
    nn.init.normal_(vit.head.weight, std=0.02)
    x = torch.randn(BATCH, 3, cfg.image_size, cfg.image_size)
    y = torch.randint(0, cfg.num_classes, (BATCH,))
    macs = ViT.complexity(spec, image_size=cfg.image_size, num_classes=cfg.num_classes).flops
    return vit, x, y, 3 * macs * 2


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
               forward: nn.Module | None = None, trial: bool = False) -> Callable[[], float]:
    """One AdamW step (fwd + bwd + step) on a fixed batch; returns the loss. ``trial``:
    as a trial builds it (the recipe's fused AdamW, the stem in channels-last); else a
    stock ``torch.optim.AdamW`` and NCHW."""
    if trial:
        opt = build_optimizer(model, name="adamw", lr=1e-4, wd=0.05)
        model.stem.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    forward = model if forward is None else forward

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(x), y)
        loss.backward()
        opt.step()
        return loss.item()
    return step


# -- 1. a trial's step vs nn.TransformerEncoder, and the fp32 peak ---------------------------

def bench_models(names: list[str], rounds: int, names2: list[str]) -> dict:
    """``names`` at 1 thread, ``names2`` at 2 threads (slow on shared cores: 2 rounds).
    Returns {model: step/plain} at 1 thread."""
    print("1. training step, AdamW, batch 128 (images/s ratios, same rounds; of peak = "
          "fraction of the fp32 peak of section 0, timed in those rounds)")
    print(f"   {'model':<10} {'thr':>3}  {'ViT/plain':>9}  {'ViT/last round':>14}  "
          f"{'ViT of peak':>11}  {'plain of peak':>13}")
    out = {}
    for threads, models, n in ((1, names, rounds), (2, names2, 2)):
        torch.set_num_threads(threads)
        for name in models:
            vit, x, y, flops = project_vit(name)
            fns = {"vit": train_step(copy.deepcopy(vit), x, y, trial=True),
                   "plain": train_step(PlainViT(vit), x, y), **peak_gemms()}
            if threads == 1:  # this round's changes, where trials run
                fns["last"] = train_step(last_round(vit), x, y)
            t = interleave(fns, n)
            was = f"{speedup(t, 'vit', 'last'):14.2f}" if "last" in t else f"{'':>14}"
            if threads == 1:
                out[name] = speedup(t, "vit", "plain")
            print(f"   {name:<10} {threads:>3}  {speedup(t, 'vit', 'plain'):9.2f}  {was}  "
                  f"{gemm_fraction(t, 'vit', flops * BATCH):11.2f}  "
                  f"{gemm_fraction(t, 'plain', flops * BATCH):13.2f}")
    torch.set_num_threads(1)
    return out


# -- 2. torch.compile ----------------------------------------------------------------------

def timed_first_step(step: Callable[[], float]) -> tuple[float, float]:
    t = time.perf_counter()
    loss = step()
    return time.perf_counter() - t, loss


def _compile_seconds(name: str, conn: Connection) -> None:
    """In a fresh process, as a trial would: seconds the first compiled step takes beyond
    an eager first step (the inductor cache is whatever the parent's folder holds)."""
    settled_malloc()
    torch.set_num_threads(1)
    vit, x, y = project_vit(name)[:3]
    eager_s = timed_first_step(train_step(copy.deepcopy(vit), x, y))[0]
    m = copy.deepcopy(vit)
    conn.send(timed_first_step(train_step(m, x, y, forward=torch.compile(m)))[0] - eager_s)


def receive(conn: Connection, proc: BaseProcess) -> object:
    """The child's answer; an error, not a hang, if the child died first."""
    while not conn.poll(1.0):
        if not proc.is_alive():
            raise RuntimeError(f"bench process {proc.pid} exited ({proc.exitcode})")
    return conn.recv()


def compile_seconds(name: str) -> float:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_compile_seconds, args=(name, child), daemon=True)
    p.start()
    seconds = receive(parent, p)
    p.join()
    return seconds


def bench_compile(names: list[str], rounds: int) -> None:
    """Inductor on the CPU: the compile time of a fresh process from an empty cache (a
    temporary folder), then of another with that cache warm (what every later trial
    pays); steady-state speed and losses against eager on the same weights and batch."""
    print("2. torch.compile (inductor, CPU, 1 thread) vs eager; net = speed over a "
          f"{TRIAL_S:.0f}-s eager trial, compile time included")
    print(f"   {'model':<10} {'steady':>6}  {'cold s':>6}  {'warm s':>6}  {'|Δloss|':>8}  "
          f"{'net cold':>8}  {'net warm':>8}")
    torch.set_num_threads(1)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_cpu_inductor_")
    for name in names:
        cold, warm = compile_seconds(name), compile_seconds(name)
        vit, x, y = project_vit(name)[:3]
        eager = train_step(copy.deepcopy(vit), x, y)
        model = copy.deepcopy(vit)
        compiled = train_step(model, x, y, forward=torch.compile(model))
        diff = max(abs(eager() - compiled()) for _ in range(3))
        ratio = speedup(interleave({"eager": eager, "compiled": compiled}, rounds),
                        "compiled", "eager")

        def net(compile_s: float, ratio: float = ratio) -> float:
            return TRIAL_S / (compile_s + TRIAL_S / ratio)
        print(f"   {name:<10} {ratio:6.2f}  {cold:6.1f}  {warm:6.1f}  {diff:8.1e}  "
              f"{net(cold):8.2f}  {net(warm):8.2f}")
        torch._dynamo.reset()


# -- 3. thread layout ----------------------------------------------------------------------

def _worker(names: list[str], threads: int, conn: Connection, barrier: Barrier) -> None:
    """A process that trains one of ``names`` at ``threads`` on command ("run", name,
    steps, together) and answers (start, end)."""
    settled_malloc()
    torch.set_num_threads(threads)
    steps_of = {name: train_step(*project_vit(name)[:3]) for name in names}
    for step in steps_of.values():
        step()  # thread pool and first allocations
    while (msg := conn.recv()) is not None:
        _, name, steps, together = msg
        if together:
            barrier.wait()
        t0 = time.monotonic()
        for _ in range(steps):
            steps_of[name]()
        conn.send((t0, time.monotonic()))


class Workers:
    """Training processes of the models, idle between commands: 0 and 1 at 1 thread (as
    the study's trials), 2 at 2 threads."""

    THREADS = (1, 1, 2)

    def __init__(self, names: list[str]) -> None:
        ctx = mp.get_context("spawn")
        self.barrier = ctx.Barrier(2)  # held here: the children unpickle it after start
        pipes = [ctx.Pipe() for _ in self.THREADS]
        self.procs = [ctx.Process(target=_worker, args=(names, t, child, self.barrier),
                                  daemon=True)
                      for t, (_, child) in zip(self.THREADS, pipes, strict=True)]
        for p in self.procs:
            p.start()
        self.conns = [parent for parent, _ in pipes]

    def run(self, which: list[int], name: str, steps: int) -> list[tuple]:
        for i in which:
            self.conns[i].send(("run", name, steps, len(which) > 1))
        return [receive(self.conns[i], self.procs[i]) for i in which]

    def close(self) -> None:
        for c in self.conns:
            c.send(None)
        for p in self.procs:
            p.join()


def layout_round(w: Workers, name: str, first_two: bool, steps: int) -> float:
    """Total images/s of workers 0 and 1 side by side at 1 thread over that of worker 2
    alone at 2 threads."""
    out = {}
    for two in ((True, False) if first_two else (False, True)):
        if two:
            spans = w.run([0, 1], name, steps)
            out[two] = 2 * steps / (max(e for _, e in spans) - min(s for s, _ in spans))
        else:
            (s, e), = w.run([2], name, steps)
            out[two] = steps / (e - s)
    return out[True] / out[False]


def bench_layout(names: list[str], rounds: int) -> None:
    """Two 1-thread processes side by side against one 2-thread process, alternating."""
    print("3. thread layout: 2 processes × 1 thread vs 1 process × 2 threads (total images/s)")
    w = Workers(names)
    for name in names:
        ratios = [layout_round(w, name, r % 2 == 0, steps=1) for r in range(rounds)]
        print(f"   {name:<10} 2×1 / 1×2 = {statistics.median(ratios):.2f}")
    w.close()


# -- 4 and 5. the trainer: evaluation and data per step --------------------------------------

def demo_trial(name: str) -> Trial:
    """A trial as the demo study builds it (preset=demo sizes), 1 thread."""
    size = load_model(name).image_size
    cfg = compose("run", ["preset=demo", f"model={name}", f"data.image_size={size}",
                          "device=cpu", "threads=1", "optimizer.lr=1e-3", "optimizer.wd=0.05"])
    return build(cfg)


def bench_eval(trial: Trial, name: str) -> None:
    """Seconds of precise BN + evaluation against one training epoch, as in run_trial:
    evaluation, epoch, evaluation (the two evaluations averaged)."""
    def one_eval() -> tuple[float, float]:
        t0 = time.perf_counter()
        refresh_bn(trial, 0)
        t1 = time.perf_counter()
        evaluate(trial)
        return t1 - t0, time.perf_counter() - t1
    first = one_eval()
    t = time.perf_counter()
    train_epoch(trial, 0)
    epoch = time.perf_counter() - t
    second = one_eval()
    bn, ev = (first[0] + second[0]) / 2, (first[1] + second[1]) / 2
    print(f"   {name:<10} eval / epoch = {(bn + ev) / epoch:.3f}  (precise BN {bn / epoch:.3f}, "
          f"model + EMA on {trial.data.test_size} test images {ev / epoch:.3f}; "
          f"epoch of {trial.data.steps_per_epoch(trial.batch_size)} steps)")


def bench_step_parts(trial: Trial, name: str, steps: int = 10) -> None:
    """Each step of the trainer's loop timed in parts: data (drawing the batch) +
    augmentation, fwd + bwd, optimizer + schedule, EMA; fractions of the whole step
    (medians over steps)."""
    gen = epoch_generator(trial.seed, 1, STREAM_AUGMENT)
    batches = trial.data.train_batches(epoch=1, seed=trial.seed, batch_size=trial.batch_size)
    parts: list[list[float]] = []
    for i in range(steps + 1):
        t = [time.perf_counter()]
        x, y = next(batches)
        x, target = trial.aug.train(x, y, generator=gen)
        t.append(time.perf_counter())
        forward_backward(trial, x, target)
        t.append(time.perf_counter())
        trial.optimizer.step()
        trial.scheduler.step()
        t.append(time.perf_counter())
        update_ema(trial.ema, trial.model, step=i, iteration=i, alpha=trial.ema_alpha,
                   period=trial.ema_period, warmup_steps=0, warmup_copy=False)
        t.append(time.perf_counter())
        if i:  # the first step warms up
            parts.append([b - a for a, b in pairwise(t)])
    frac = [statistics.median(p[k] / sum(p) for p in parts) for k in range(4)]
    print(f"   {name:<10} data+aug {frac[0]:.3f}  fwd+bwd {frac[1]:.3f}  "
          f"optimizer {frac[2]:.3f}  EMA {frac[3]:.3f}  (batch {trial.batch_size})")


def bench_trainer(names: list[str]) -> None:
    print("4. evaluation cost at the demo's sizes (the trainer's functions, 1 thread)")
    trials = {name: demo_trial(name) for name in names}
    for name, trial in trials.items():
        bench_eval(trial, name)
    print("5. parts of a training step (fractions of the step, 1 thread)")
    for name, trial in trials.items():
        bench_step_parts(trial, name)


# -- 6. a whole Fashion-MNIST trial against the peak ----------------------------------------

FMNIST = ["data=fashion_mnist", "data.train_size=5000", "data.test_size=2000",
          "schedule.epochs=5", "precise_bn_images=1024", "optimizer.lr=0.03",
          "optimizer.wd=0.05"]


def _whole_trial(name: str, conn: Connection) -> None:
    """In a fresh process, as a sweep's worker runs it (no malloc settling): one trial of
    the Fashion-MNIST study, timed from build to result; sends (data, seconds, flops)."""
    torch.set_num_threads(1)
    base = [f"model={name}", "threads=1", "device=cpu", "keep_weights=false"]
    try:
        cfg = compose("train", base + FMNIST + ["out=unused"])
        build_data(cfg.data, seed=int(cfg.data.seed))  # one line if the files are missing
    except UserError:
        cfg = compose("train", base + [o for o in FMNIST if not o.startswith("data=")]
                      + ["out=unused"])
    t = time.perf_counter()
    res = run_trial(cfg, workdir=Path(tempfile.mkdtemp()), log=None)
    seconds = time.perf_counter() - t
    fwd = 2 * res["gflops"] * 1e9  # flops of one image's forward
    per_epoch = (int(cfg.data.train_size) * 3 * fwd  # training: forward + backward
                 + 2 * int(cfg.data.test_size) * fwd)  # the model and its EMA, evaluated
    conn.send((cfg.data.name, seconds, per_epoch * int(cfg.schedule.epochs)))


def bench_whole_trial(names: list[str]) -> dict:
    """Each trial's useful flop rate over the fp32 peak (the mean of the peak just
    before and just after it)."""
    print("6. a whole trial of the Fashion-MNIST lr/wd study (5,000 / 2,000 images, 5 "
          "epochs, 1 thread, build to result) as a fraction of the fp32 peak")
    ctx = mp.get_context("spawn")
    out = {}
    for name in names:
        before = statistics.median(peak_times(interleave(peak_gemms(), 3)))
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_whole_trial, args=(name, child), daemon=True)
        p.start()
        data, seconds, flops = receive(parent, p)
        p.join()
        after = statistics.median(peak_times(interleave(peak_gemms(), 3)))
        peak = GEMM_FLOPS / ((before + after) / 2)
        out[name] = flops / seconds / peak
        note = "" if data == "fashion_mnist" else \
            " (Fashion-MNIST files missing: synthetic data of the same sizes)"
        print(f"   {name:<10} {seconds:6.1f} s, {flops / seconds / 1e9:5.1f} GFLOP/s of "
              f"{peak / 1e9:5.1f}: {out[name]:.2f} of the peak{note}")
    return out


def profile_steps(names: list[str], path: str, steps: int = 5) -> None:
    """Where a trial's training step spends its time: self CPU time per op (torch.profiler,
    ``steps`` steps at 1 thread), as fractions of the step, written as JSON."""
    from torch.profiler import ProfilerActivity, profile

    summary = {}
    for name in names:
        vit, x, y, _ = project_vit(name)
        step = train_step(vit, x, y, trial=True)
        for _ in range(2):
            step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                step()
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        ops = sorted(((e.key, e.self_cpu_time_total / total) for e in events),
                     key=lambda kv: -kv[1])
        gemm_share = sum(f for k, f in ops if k in ("aten::mm", "aten::addmm", "aten::bmm")
                         or k.startswith("mkldnn::_linear_pointwise"))
        summary[name] = {"step_ms": total / steps / 1e3, "gemm_fraction": gemm_share,
                         "ops": {k: round(f, 4) for k, f in ops[:25]}}
    Path(path).write_text(json.dumps(summary, indent=1) + "\n")
    print(f"   profile of a step by op written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--models", default=",".join(m for p in PAIRS.values() for m in p))
    parser.add_argument("--threads2", default="vitp_tiny,vitp_mini",
                        help="models also timed at 2 threads (1)")
    parser.add_argument("--compile", default="vitp_mini",
                        help="models to torch.compile (2; each costs a cold compile, ~40 s)")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--layout", default="vitp_tiny,vitp_mini",
                        help="models for the thread layout (3)")
    parser.add_argument("--trainer", default="vitc_tiny,vitc_mini",
                        help="models for the trainer figures (4, 5)")
    parser.add_argument("--trial", default="vitp_mini,vitc_mini",
                        help="models for the whole-trial figure (6)")
    parser.add_argument("--sections", default="0,1,2,3,4,5,6")
    parser.add_argument("--profile-json", default=None,
                        help="also write a by-op profile of the --trial models' step")
    args = parser.parse_args()
    t0 = time.perf_counter()
    torch.set_num_threads(1)
    settled_malloc()
    sections = {0: lambda: bench_peak(args.rounds),
                1: lambda: bench_models(args.models.split(","), args.rounds,
                                        args.threads2.split(",")),
                2: lambda: bench_compile(args.compile.split(","), args.rounds),
                3: lambda: bench_layout(args.layout.split(","), 3),
                4: lambda: bench_trainer(args.trainer.split(",")),
                6: lambda: bench_whole_trial(args.trial.split(","))}
    chosen = {int(k) for k in args.sections.split(",")}
    if args.no_compile:
        chosen.discard(2)
    for i, section in sections.items():
        if i not in chosen:
            continue
        t = time.perf_counter()
        section()
        print(f"   ({time.perf_counter() - t:.0f} s)")
    if args.profile_json:
        profile_steps(args.trial.split(","), args.profile_json)
    print(f"bench_cpu: {time.perf_counter() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
