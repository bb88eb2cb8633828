"""Image files (PNG, JPEG; grey and palette converted to RGB) decoded into one uint8 array by a
pool of threads, hashed as they come: what the kaggle and folder sources read."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ...errors import UserError

_DECODE_CHUNK = 256  # images per task of the decoding threads


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
