"""Is the synthetic set a real learning problem? Times generation of 10k images, then
fits a closed-form ridge linear probe on raw pixels and a small 3-layer CNN (CPU, a few
epochs, about two minutes in all) and prints their test accuracies.

    .venv/bin/python bench/bench_data.py [--train 10000] [--test 2000] [--epochs 4]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from sweep.data.synthetic import generate


def linear_probe(xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, yte: torch.Tensor,
                 num_classes: int) -> tuple[float, float]:
    """Ridge regression onto one-hot targets, the ridge chosen on a held-out fifth of train.
    Returns (best lambda, test accuracy %)."""
    a = xtr.flatten(1).float() / 255.0
    b = xte.flatten(1).float() / 255.0
    mu = a.mean(0)
    a, b = a - mu, b - mu
    t = F.one_hot(ytr, num_classes).float()
    t = t - t.mean(0)
    cut = len(a) * 4 // 5
    # Gram matrices in float32 (the costly part), solves in float64.
    gram_held = (a[cut:].T @ a[cut:]).double()
    gram_all = (a.T @ a).double()
    rhs_held = (a[cut:].T @ t[cut:]).double()
    rhs_all = (a.T @ t).double()
    eye = torch.eye(a.shape[1], dtype=torch.float64)

    def fit(gram: torch.Tensor, rhs: torch.Tensor, n: int, lam: float) -> torch.Tensor:
        return torch.linalg.solve(gram + lam * n * eye, rhs).float()

    lams = [10.0**e for e in range(-3, 2)]
    held = [((a[cut:] @ fit(gram_all - gram_held, rhs_all - rhs_held, cut, lam)).argmax(1)
             == ytr[cut:]).float().mean().item() for lam in lams]
    best = lams[max(range(len(lams)), key=held.__getitem__)]
    w = fit(gram_all, rhs_all, len(a), best)
    return best, 100.0 * ((b @ w).argmax(1) == yte).float().mean().item()


def small_cnn(num_classes: int) -> nn.Module:
    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2))
    return nn.Sequential(block(3, 32), block(32, 64), block(64, 128),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, num_classes))


def train_cnn(xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, yte: torch.Tensor,
              num_classes: int, epochs: int, batch: int = 128) -> list[float]:
    """Plain AdamW + one-cycle cosine, no augmentation; test accuracy (%) after each epoch."""
    torch.manual_seed(0)
    model = small_cnn(num_classes)
    steps = epochs * (len(xtr) // batch)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    norm = lambda x: (x.float() / 255.0 - 0.5) / 0.25  # noqa: E731
    accs = []
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(len(xtr) // batch):
            idx = perm[i * batch:(i + 1) * batch]
            loss = F.cross_entropy(model(norm(xtr[idx])), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(norm(xte[i:i + 500])).argmax(1)
                              for i in range(0, len(xte), 500)])
        accs.append(100.0 * (pred == yte).float().mean().item())
    return accs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=int, default=10000)
    p.add_argument("--test", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    t0 = time.perf_counter()
    xtr, ytr = generate(args.train, seed=args.seed, split="train")
    t1 = time.perf_counter()
    xte, yte = generate(args.test, seed=args.seed, split="test")
    print(f"generate: {args.train} train images in {t1 - t0:.2f} s "
          f"({args.test} test in {time.perf_counter() - t1:.2f} s), "
          f"{torch.get_num_threads()} torch threads")

    t0 = time.perf_counter()
    lam, acc = linear_probe(xtr, ytr, xte, yte, 10)
    print(f"linear probe (ridge on raw pixels, lambda={lam:g}): test acc {acc:.1f}% "
          f"({time.perf_counter() - t0:.1f} s); chance 10.0%")

    t0 = time.perf_counter()
    accs = train_cnn(xtr, ytr, xte, yte, 10, args.epochs)
    print(f"3-layer CNN, {args.epochs} epochs, no augmentation: test acc "
          + " ".join(f"{a:.1f}" for a in accs) + f" % ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
