"""Training throughput of the tiny pair on this CPU, against the machine's own matmul peak.

    python bench/bench_models.py [--batch 64] [--threads 2]

Prints forward+backward images/s per model and the achieved fraction of the fp32 GEMM
rate measured in the same run (3 × forward multiply-adds × 2 flops per image).
"""

from __future__ import annotations

import argparse
import time

import torch

from sweep.engine.config import load_model, model_spec
from sweep.models import ViT


def matmul_peak_gflops(n: int = 1024, reps: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def train_images_per_s(name: str, batch: int, steps: int = 20) -> tuple[float, int]:
    cfg = load_model(name)
    spec = model_spec(cfg)
    model = ViT(spec, image_size=cfg.image_size, num_classes=cfg.num_classes)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn(batch, 3, cfg.image_size, cfg.image_size)
    y = torch.randint(0, cfg.num_classes, (batch,))

    def step() -> None:
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    flops = ViT.complexity(spec, image_size=cfg.image_size, num_classes=cfg.num_classes).flops
    return batch * steps / (time.perf_counter() - t), flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("models", nargs="*", default=["vitp_tiny", "vitc_tiny"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak = matmul_peak_gflops()
    print(f"fp32 GEMM peak here: {peak:.1f} GFLOP/s ({args.threads} threads)")
    for name in args.models:
        ips, macs = train_images_per_s(name, args.batch)
        achieved = ips * 3 * macs * 2 / 1e9
        print(f"{name:<10} batch {args.batch}: {ips:7.0f} images/s fwd+bwd, "
              f"{achieved:5.1f} GFLOP/s = {achieved / peak:.2f} of peak")


if __name__ == "__main__":
    main()
