"""The dry run's GPU-hours for a named GPU."""

from __future__ import annotations

import re

import pytest
from PIL import Image

from sweep.driver.plan import gpu_hours


def _tiny_imagenet(root):
    for split in ("train", "val"):
        for c in ("n01440764", "n01443537"):
            folder = root / split / c
            folder.mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (40, 32), (60 * i, 90, 120)).save(folder / f"{c}_{i}.JPEG")
    return root


def test_gpu_hours_formula():
    # 1e18 multiply-adds = 2e18 FLOPs at 50% of 1000 TFLOPS: 4000 s.
    assert gpu_hours(1e18, peak_tflops=1000, utilization=0.5) == pytest.approx(4000 / 3600)


def test_dry_run_prints_gpu_hours(cli, tmp_path):
    root = _tiny_imagenet(tmp_path / "imagenet")
    args = ["sweep.models=[vitp_4gf,vitc_4gf]", "data=imagenet", f"data.root={root}",
            "dry_run=true", f"results={tmp_path / 'results'}", "sweep.n=2"]
    out = cli("sweep.run", *args).stdout
    assert "data imagenet (" in out  # the paper preset (batch 2048) estimates 1.28M
    pmac = float(re.search(r"([\d.]+) PMAC of training", out)[1])
    line = next(x for x in out.splitlines() if "GPU-hours" in x)
    assert "h100" in line and "989" in line and "35%" in line and "on 1 GPU" in line
    hours = float(re.search(r"([\d.,]+) GPU-hours", line)[1].replace(",", ""))
    assert hours == pytest.approx(gpu_hours(pmac * 1e15, peak_tflops=989, utilization=0.35),
                                  abs=0.05)
    out = cli("sweep.run", *args, "gpu.name=a100", "gpu.count=8", "gpu.utilization=0.5").stdout
    assert "a100 (312 TFLOPS" in out and "50% utilization" in out and "on 8 GPUs" in out
    bad = cli("sweep.run", *args, "gpu.name=tpu", check=False)
    assert bad.returncode == 2 and "gpu.peak_tflops.tpu" in bad.stderr
