"""GPU figures: training throughput and MFU of the paper's 1GF and 4GF ViT_P / ViT_C, and
checks that trials and sweeps really run on the GPU.

    python bench/bench_gpu.py [--batch 128] [--steps 20] [--skip-sweeps]   (make bench-gpu)

On whatever CUDA device is present it prints:
  * images/s and MFU of a bf16 training step (SDPA attention, AdamW), eager and with
    torch.compile, for vitp_1gf, vitc_1gf, vitp_4gf, vitc_4gf; MFU is against a bf16
    GEMM measured in the same run (FLOPs = 3 × forward multiply-adds × 2 per image);
  * one short trial (`sweep.train` on synthetic 224 px data): max_memory_allocated > 0;
  * a 2-trial sweep with resources.gpus_per_trial set (2 when 2+ GPUs: data-parallel),
    and 4 tiny trials packed on one GPU at gpus_per_trial=0.25, watching nvidia-smi for
    the trials' processes.
Without CUDA it prints one line saying so and exits 0.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("vitp_1gf", "vitc_1gf", "vitp_4gf", "vitc_4gf")


def bf16_gemm_tflops(n: int = 8192, reps: int = 50) -> float:
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e12


def train_step_rate(name: str, *, batch: int, steps: int, compile: bool) -> tuple[float, float]:
    """(images/s, training TFLOPS) of bf16-autocast AdamW steps of model ``name``."""
    from sweep.engine.config import architecture, load_model
    from sweep.models import model_class

    cfg = load_model(name)
    spec = architecture(cfg)
    arch = model_class(spec)
    model = arch(spec, image_size=cfg.image_size, num_classes=cfg.num_classes).cuda()
    model.stem.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if compile else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    x = torch.randn(batch, 3, cfg.image_size, cfg.image_size, device="cuda")
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, cfg.num_classes, (batch,), device="cuda")

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = forward(x)
        torch.nn.functional.cross_entropy(logits.float(), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(5 if compile else 3):
        step()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    rate = batch * steps / (time.perf_counter() - t)
    macs = arch.complexity(spec, image_size=cfg.image_size, num_classes=cfg.num_classes).flops
    torch.cuda.empty_cache()
    return rate, rate * 3 * macs * 2 / 1e12


class GpuProcesses:
    """Polls nvidia-smi: the most compute processes seen on the GPUs at once."""

    def __init__(self) -> None:
        self.most, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid",
                                      "--format=csv,noheader"], capture_output=True,
                                     text=True, timeout=10).stdout
                self.most = max(self.most, len([x for x in out.split() if x.strip()]))
            except (OSError, subprocess.SubprocessError):
                pass
            self._stop.wait(0.5)

    def __enter__(self) -> GpuProcesses:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def short_trial() -> None:
    from sweep.engine.config import compose
    from sweep.engine.trainer import run_trial

    cfg = compose("train", ["model=vitp_1gf", "data.image_size=224", "data.train_size=512",
                            "data.test_size=256", "data.batch_size=128", "schedule.epochs=1",
                            "device=cuda", "threads=4", "optimizer.lr=1e-3",
                            "optimizer.wd=0.05", "allow_resolution=true"])
    torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        result = run_trial(cfg, workdir=Path(d), log=None)
    used = torch.cuda.max_memory_allocated()
    print(f"trial vitp_1gf (synthetic 224 px, 512 images, 1 epoch): "
          f"{time.perf_counter() - t:.1f} s, error {result['error']:.1f}%, "
          f"max_memory_allocated {used / 2**30:.2f} GiB "
          f"-> {'GPU used' if used > 0 else 'GPU NOT USED'}")


def sweep(name: str, *overrides: str) -> None:
    with tempfile.TemporaryDirectory() as d, GpuProcesses() as seen:
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "sweep.run", "sweep.models=[vitp_tiny]",
             "sweep.optimizers=[adamw]", "schedule.epochs=2", "data.train_size=2048",
             "data.test_size=512", "data.batch_size=128", "analyze=false", f"results={d}",
             "sweep.name=gpu", "device=cuda", "sweep.interval={lr:[1e-3,1e-2],wd:[0.01,0.1]}",
             *overrides], cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t
    status = "ok" if proc.returncode == 0 else f"FAILED ({proc.returncode}): {proc.stderr[-800:]}"
    print(f"{name}: {wall:.0f} s, at most {seen.most} GPU processes at once, {status}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--skip-sweeps", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA device; it would measure bf16 training images/s and MFU of "
              f"{', '.join(MODELS)} (eager and torch.compile), a GPU trial, a "
              "gpus_per_trial sweep and 4 trials packed at gpus_per_trial=0.25")
        return 0
    gpus = torch.cuda.device_count()
    peak = bf16_gemm_tflops()
    print(f"{torch.cuda.get_device_name()} × {gpus}: bf16 GEMM {peak:.0f} TFLOPS "
          "(measured, the MFU baseline)")
    print(f"{'model':<10} {'compile':>7} {'img/s':>8} {'TFLOPS':>7} {'MFU':>6}")
    for name in MODELS:
        for compile in (False, True):
            try:
                rate, tflops = train_step_rate(name, batch=args.batch, steps=args.steps,
                                               compile=compile)
                print(f"{name:<10} {str(compile):>7} {rate:>8.0f} {tflops:>7.1f} "
                      f"{tflops / peak:>6.1%}")
            except Exception as e:  # noqa: BLE001 (a compile failure is a result too)
                print(f"{name:<10} {str(compile):>7} failed: {type(e).__name__}: {e}"[:200])
    short_trial()
    if args.skip_sweeps:
        return 0
    per_trial = 2 if gpus >= 2 else 1
    sweep(f"sweep, 2 trials at gpus_per_trial={per_trial}", "sweep.n=2",
          f"resources.gpus_per_trial={per_trial}", "resources.cpus_per_trial=2")
    sweep("sweep, 4 trials packed at gpus_per_trial=0.25", "sweep.n=4",
          "resources.gpus_per_trial=0.25", "resources.cpus_per_trial=2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
