"""CIFAR-10's official python format: the ``cifar-10-python.tar.gz`` archive (md5-verified before
anything in it is read) or its extracted ``cifar-10-batches-py`` folder (each file md5-verified),
read directly from the pickled batches. The torchvision and local sources read it."""

from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ...errors import UserError
from ...files import file_digest
from .raw import CIFAR10_LICENCE, RawData

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
# md5 of each extracted file, as published with the archive (the same table torchvision checks).
CIFAR10_FILE_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}


class _BatchUnpickler(pickle.Unpickler):
    """The CIFAR-10 batches are Python 2 pickles of dicts holding a numpy array and lists. Only the
    few globals those need may be loaded, so a tampered file cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"): ("numpy", "ndarray"),
        ("numpy", "dtype"): ("numpy", "dtype"),
        ("_codecs", "encode"): ("_codecs", "encode"),  # how Python 3 writes bytes at protocol 2
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        return super().find_class(*self._ALLOWED[(module, name)])


def _load_batch(f: BinaryIO, name: str, where: Path) -> dict[bytes, Any]:
    try:
        batch = _BatchUnpickler(f, encoding="bytes").load()
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        zlib.error,
        OSError,
    ) as e:
        raise UserError(
            f"{where}: {name} is not a readable CIFAR-10 batch ({e}); "
            f"download the archive again from {CIFAR10_URL}"
        ) from None
    if not isinstance(batch, dict):
        raise UserError(
            f"{where}: {name} is not a CIFAR-10 batch (a dict); download the archive again"
        )
    return batch


def _batch_arrays(
    batch: dict[bytes, Any], name: str, where: Path, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """b"data" uint8 [N, 3072] (each row: the 1024 red, then green, then blue pixels of a 32x32
    image, row-major) -> uint8 [N, 32, 32, 3]; b"labels" -> int64 [N]."""
    if b"data" not in batch or b"labels" not in batch:
        raise UserError(
            f"{where}: {name} has no b'data'/b'labels' (keys: {sorted(batch)}); "
            "it is not a CIFAR-10 python batch; download the archive again"
        )
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if (
        data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3 * 32 * 32
        or len(labels) != len(data)
    ):
        raise UserError(
            f"{where}: {name} holds data {data.dtype} {list(data.shape)} with {len(labels)} "
            "labels; "
            "expected uint8 [N, 3072] and N labels; download the archive again"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise UserError(
            f"{where}: {name} has labels outside 0..{n_classes - 1}; download the archive again"
        )
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def _read_batches(
    open_member, where: Path
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Class names, train and test arrays from the seven files of ``cifar-10-batches-py``;
    ``open_member(name)`` returns a binary file for one of them."""
    meta = _load_batch(open_member("batches.meta"), "batches.meta", where)
    names = meta.get(b"label_names")
    if not isinstance(names, list) or not names:
        raise UserError(f"{where}: batches.meta has no b'label_names'; download the archive again")
    classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    parts = [
        _batch_arrays(_load_batch(open_member(n), n, where), n, where, len(classes))
        for n in (*CIFAR10_TRAIN_BATCHES, "test_batch")
    ]
    train_x = np.concatenate([p[0] for p in parts[:-1]])
    train_y = np.concatenate([p[1] for p in parts[:-1]])
    return classes, train_x, train_y, parts[-1][0], parts[-1][1]


def read_cifar_archive(archive: Path, *, md5: str | None = None) -> RawData:
    """The official ``cifar-10-python.tar.gz``, verified against ``md5`` (default: the published
    checksum) before anything in it is read."""
    archive = Path(archive)
    expected = CIFAR10_MD5 if md5 is None else md5
    if not archive.is_file():
        raise UserError(
            f"{archive} does not exist; download {CIFAR10_URL} or use cifar10.download.source: "
            "torchvision"
        )
    actual = file_digest(archive, "md5")
    if actual != expected:
        raise UserError(
            f"{archive} has md5 {actual}, expected {expected}: the file is incomplete or not the "
            f"official archive; delete it and download it again from {CIFAR10_URL}"
        )
    try:
        with tarfile.open(archive, "r:gz") as tar:

            def open_member(name: str) -> BinaryIO:
                member = f"{CIFAR10_DIR}/{name}"
                try:
                    f = tar.extractfile(member)
                except KeyError:
                    f = None
                if f is None:
                    raise UserError(
                        f"{archive} has no {member}; it is not the CIFAR-10 python archive; "
                        f"download it again from {CIFAR10_URL}"
                    )
                return io.BytesIO(f.read())

            classes, train_x, train_y, test_x, test_y = _read_batches(open_member, archive)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise UserError(
            f"{archive} is not a readable tar.gz archive ({e}); delete it and download it again "
            f"from {CIFAR10_URL}"
        ) from None
    return RawData(
        train_x,
        train_y,
        test_x,
        test_y,
        classes,
        source="torchvision",
        description=f"CIFAR-10, the official python archive {CIFAR10_ARCHIVE}",
        checksum={
            "algorithm": "md5",
            "value": actual,
            "of": archive.name,
            "expected": expected,
            "verified": True,
        },
        licence=CIFAR10_LICENCE,
        note="CIFAR-10 with its own 50,000/10,000 train/test split",
        test_split="the archive's own test_batch",
        extra={"file": str(archive)},
    )


def read_cifar_folder(folder: Path, *, md5s: dict[str, str] | None = None) -> RawData:
    """An extracted ``cifar-10-batches-py`` folder, each file verified against ``md5s`` (default:
    the
    published per-file checksums)."""
    folder = Path(folder)
    expected = CIFAR10_FILE_MD5 if md5s is None else md5s
    missing = [n for n in expected if not (folder / n).is_file()]
    if missing:
        raise UserError(
            f"{folder} lacks {', '.join(missing)}; point cifar10.download.path at the extracted "
            f"{CIFAR10_DIR} folder or at {CIFAR10_ARCHIVE}"
        )
    actual = {n: file_digest(folder / n, "md5") for n in expected}
    wrong = [n for n in expected if actual[n] != expected[n]]
    if wrong:
        raise UserError(
            f"{folder}: {', '.join(wrong)} fail the md5 check (e.g. {wrong[0]} has "
            f"{actual[wrong[0]]}, "
            f"expected {expected[wrong[0]]}); extract {CIFAR10_ARCHIVE} again"
        )

    def open_member(name: str) -> BinaryIO:
        return io.BytesIO((folder / name).read_bytes())

    classes, train_x, train_y, test_x, test_y = _read_batches(open_member, folder)
    return RawData(
        train_x,
        train_y,
        test_x,
        test_y,
        classes,
        source="local",
        description=f"CIFAR-10, the extracted {CIFAR10_DIR} folder of the official archive",
        checksum={
            "algorithm": "md5",
            "value": actual,
            "of": f"each file of {folder.name}",
            "verified": True,
        },
        licence=CIFAR10_LICENCE,
        note="CIFAR-10 with its own 50,000/10,000 train/test split",
        test_split="the archive's own test_batch",
        extra={"path": str(folder)},
    )
