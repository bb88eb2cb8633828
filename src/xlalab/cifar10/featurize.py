"""The featurize stage: split train/val (stratified) and store uint8 tensors at the stored size.

``paths.features`` holds ``train``/``val``/``test.safetensors`` ({"x": uint8 [N, 3, H, W], "y":
int64 [N]}, H x W as download stored them) and ``meta.json`` (classes, sizes, counts). Nothing is
resized here: the model resizes each batch to ``train.image_size`` on the device, so a bigger
image size costs no storage, no host memory and no re-run of this stage, and uint8 is 4x smaller
to store and move than floats. The stage itself never imports torch (about 0.8 GB of memory and
seconds of start-up): safetensors writes numpy arrays in the same format ``load_split`` reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import save_file
from sklearn.model_selection import train_test_split

from ..errors import UserError
from ..files import write_json
from ..pipeline import runner
from ..pipeline.contract import Paths
from .project import PROJECT, FeaturizeParams

if TYPE_CHECKING:
    import torch

RAW_ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")  # paths.raw/<name>.npy
SPLITS = ("train", "val", "test")
_MADE_BY = "dvc repro cifar10-download"


def class_counts(labels: np.ndarray, classes: tuple[str, ...] | list[str]) -> dict[str, int]:
    counts = np.bincount(labels, minlength=len(classes))
    return {name: int(n) for name, n in zip(classes, counts)}


def stratified_split(
    labels: np.ndarray, held_out: float | int, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (kept, held out), stratified by label (sklearn), each sorted so that both parts
    keep the source's order. ``held_out``: a fraction, or a number of rows."""
    try:
        kept, held = train_test_split(
            np.arange(len(labels)), test_size=held_out, stratify=labels, random_state=seed
        )
    except ValueError as e:  # too few rows of some class to stratify
        raise UserError(
            f"cannot hold out {what} ({held_out:.4g} of {len(labels)} images, stratified by "
            "class): "
            f"{e}; use more images"
        ) from None
    return np.sort(kept), np.sort(held)


def split_path(features: Path, split: str) -> Path:
    return features / f"{split}.safetensors"


def load_split(features: Path, split: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file  # torch: only the stages that use the tensors

    path = split_path(features, split)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise UserError(
            f"{path} is unreadable ({e}); run `dvc repro -f cifar10-featurize`"
        ) from None


def _load_raw(raw_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    try:
        # Memory-mapped: only the rows a split takes are read, once.
        arrays = {
            name: np.load(raw_dir / f"{name}.npy", allow_pickle=False, mmap_mode="r")
            for name in RAW_ARRAYS
        }
        raw_card = json.loads((raw_dir / "card.json").read_text())
    except FileNotFoundError as e:
        raise UserError(f"{e.filename} is missing; run `{_MADE_BY}` again") from None
    except (ValueError, OSError) as e:
        raise UserError(f"{raw_dir} holds a damaged file ({e}); run `{_MADE_BY}` again") from None
    n_classes = len(raw_card.get("classes", ()))
    for split in ("train", "test"):
        x, y = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if (
            x.dtype != np.uint8
            or x.ndim != 4
            or x.shape[3] != 3
            or y.shape != (len(x),)
            or len(x) == 0
        ):
            raise UserError(
                f"{raw_dir}: {split} images {x.dtype} {list(x.shape)} with labels {list(y.shape)}; "
                f"expected uint8 [N, H, W, 3] and N labels; run `{_MADE_BY}` again"
            )
        if y.min() < 0 or y.max() >= n_classes:
            raise UserError(
                f"{raw_dir}: {split} labels fall outside the card's {n_classes} classes; "
                f"run `{_MADE_BY}` again"
            )
    return arrays, raw_card


def channels_first(images: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, 3] -> a contiguous uint8 [N, 3, H, W] array (one copy)."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


def featurize(params: FeaturizeParams, paths: Paths) -> None:
    """``max_train`` caps the raw training images used (a stratified subset) before the train/val
    split."""
    f = params.featurize
    arrays, raw_card = _load_raw(paths.raw)
    classes = list(raw_card["classes"])
    x, y = arrays["train_images"], arrays["train_labels"]
    if f.max_train is not None and f.max_train < len(y):
        _, subset = stratified_split(y, f.max_train, params.seed, "a max_train subset")
        x, y = x[subset], y[subset]
    train_idx, val_idx = stratified_split(y, f.val_fraction, params.seed, "the validation split")

    # One split in memory at a time: its rows, then their channels-first copy.
    splits = {
        "train": (x, y, train_idx),
        "val": (x, y, val_idx),
        "test": (arrays["test_images"], arrays["test_labels"], slice(None)),
    }
    labels = {}
    for name, (xs, ys, rows) in splits.items():
        labels[name] = np.array(ys[rows], dtype=np.int64)  # a copy: the raw arrays are read-only
        tensors = {"x": channels_first(xs[rows]), "y": labels[name]}
        save_file(tensors, str(split_path(paths.features, name)))
        del tensors
    height, width = x.shape[1:3]
    write_json(
        paths.features / "meta.json",
        {
            "classes": classes,
            "stored_size": [int(height), int(width)],
            "storage": "x is uint8 [N, 3, H, W] in 0..255 at the stored size; the model resizes it "
            "to train.image_size and normalises it on the device",
            "counts": {name: class_counts(yy, classes) for name, yy in labels.items()},
            "totals": {name: len(yy) for name, yy in labels.items()},
            "source": raw_card.get("source"),
            "raw_checksum": raw_card.get("checksum", {}).get("value"),
            "val_fraction": f.val_fraction,
            "max_train": f.max_train,
            "seed": params.seed,
        },
    )


if __name__ == "__main__":
    runner.main(featurize, PROJECT)
