"""GPU JPEG decoding of the ImageNet training crops with NVIDIA DALI (``data.decoder=dali``).

NOT RUN in this project's development or tests: DALI needs an NVIDIA GPU and its wheels
live on NVIDIA's index, not PyPI. It is written against the documented DALI 1.x API
(``fn.readers.file``, ``fn.decoders.image_random_crop`` with ``device="mixed"``,
``fn.resize``, ``DALIGenericIterator``); only the selection logic around it is tested
(``tests/test_data.py``, monkeypatched). Treat the first run on a GPU as its test.

What it does: the epoch's (seed, epoch)-determined order is handed to the reader as an
explicit file list (no reader shuffle, one shard: each trial is one process on one GPU),
nvJPEG decodes only the region of interest of a random-resized crop drawn by DALI's own
generator seeded from (seed, epoch), and the crop is resized to ``size`` and transposed to
uint8 NCHW, left on the GPU (the trainer's ``.to(device)`` is then a no-op). So the order
matches the CPU decoders exactly, and the crops are the same distribution and depend only
on (seed, epoch), but they are not the same draws as the CPU path's boxes.

The horizontal flip is *not* done here (no ``fn.flip``): ``sweep.augment.BatchAugment``
already flips every batch on the device when ``data.augment.flip`` is true, as it does
for the CPU decoders, so a flip here would only double it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from sweep.data.base import Batch
from sweep.errors import UserError

FIX = ("pip install --extra-index-url https://pypi.nvidia.com nvidia-dali-cuda120 "
       "(match your CUDA major version), or set data.decoder=auto")


def dali_train_batches(items: Sequence[tuple[str, int]], *, seed: int, batch_size: int,
                       size: int, scale: tuple[float, float], ratio: tuple[float, float],
                       threads: int, interpolation: str) -> Iterator[Batch]:
    """Full batches of ``items`` (path, label) in the given order, decoded on the GPU."""
    try:
        from nvidia.dali import fn, pipeline_def, types
        from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy
    except ImportError as e:
        raise UserError(f"data.decoder=dali cannot import NVIDIA DALI ({e}); {FIX}") from None
    if len(items) % batch_size:
        raise ValueError("dali_train_batches takes whole batches")
    interp = types.INTERP_CUBIC if interpolation == "bicubic" else types.INTERP_LINEAR

    @pipeline_def(batch_size=batch_size, num_threads=threads,
                  device_id=torch.cuda.current_device(), seed=seed % 2**31)
    def pipeline():  # type: ignore[no-untyped-def]
        jpegs, labels = fn.readers.file(files=[p for p, _ in items],
                                        labels=[label for _, label in items],
                                        random_shuffle=False, shard_id=0, num_shards=1,
                                        name="reader")
        images = fn.decoders.image_random_crop(
            jpegs, device="mixed", output_type=types.RGB, random_area=list(scale),
            random_aspect_ratio=list(ratio), num_attempts=10)
        images = fn.resize(images, resize_x=size, resize_y=size, interp_type=interp,
                           antialias=True)
        return fn.transpose(images, perm=[2, 0, 1]), labels.gpu()

    pipe = pipeline()
    pipe.build()
    loader = DALIGenericIterator([pipe], ["images", "labels"], reader_name="reader",
                                 last_batch_policy=LastBatchPolicy.DROP, auto_reset=False)
    for out in loader:
        yield out[0]["images"], out[0]["labels"].reshape(-1).long()
