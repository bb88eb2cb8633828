"""The folder source: any images in one folder per class, ``<path>/train/<class>/*.png|jpg|jpeg``
and, when present, ``<path>/test/<class>/``; classes from the folder names."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import UserError
from ...pipeline import sources
from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ..project import DownloadParams
from .images import decode_images, first_image_size
from .raw import HOLD_OUT_FRACTION, RawData, hold_out_test

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")  # compared lower-case


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
    counts = {name: len(files) for name, files in splits["train"].items()}
    sources.require_classes(counts, f"{root / 'train'}", "add a folder of images per class")
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
        train_x, train_y, test_x, test_y = hold_out_test(
            train_x, train_y, test_fraction, seed, str(root / "train")
        )
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


def read(params: DownloadParams, paths: Paths) -> RawData:
    download = params.download
    return read_folder(download.path, seed=params.seed, storage_size=download.storage_size)


SOURCE = Source(
    "folder",
    ("path", "storage_size"),
    read,
    "images in one folder per class (train/<class>/, optionally test/<class>/)",
)
