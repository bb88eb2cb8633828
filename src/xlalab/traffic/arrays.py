""".npy matrices streamed in blocks of rows with plain file reads and writes.

A memory-mapped matrix keeps every page it touched resident (and counted in the process's memory)
until it is unmapped: the 5 M-row test matrix (2.4 GB) would sit in memory whole. Reading and
writing blocks through a file keeps at most one block in memory, whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np


class RowWriter:
    """Writes a ``(rows, columns)`` .npy file block by block, as a context manager; the header
    comes first, so ``rows`` is known upfront: the caller checks ``written`` against it."""

    def __init__(self, path: Path, rows: int, columns: int, dtype: str = "<f4"):
        self.path, self.rows, self.columns, self.dtype = path, rows, columns, dtype
        self.written = 0

    def __enter__(self) -> RowWriter:
        self.file = self.path.open("wb")
        shape = (self.rows, self.columns)
        header = {"descr": self.dtype, "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_2_0(self.file, header)
        return self

    def write(self, block: np.ndarray) -> None:
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if block.ndim != 2 or block.shape[1] != self.columns:
            raise ValueError(f"a block of shape {block.shape}; expected (n, {self.columns})")
        self.file.write(block.tobytes())
        self.written += len(block)

    def __exit__(self, *exc) -> None:
        self.file.close()


def _layout(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and data offset of a .npy file (mapping it touches no page of the data)."""
    mapped = np.load(path, mmap_mode="r")
    if mapped.ndim != 2 or not mapped.flags.c_contiguous:
        raise ValueError(f"{path} is not a 2-D C-ordered matrix")
    return mapped.shape, mapped.dtype, mapped.offset


def shape(path: Path) -> tuple[int, ...]:
    return _layout(path)[0]


def blocks(path: Path, rows: int) -> Iterator[np.ndarray]:
    """The rows of a 2-D .npy file, ``rows`` at a time, each block a fresh array."""
    (n, columns), dtype, offset = _layout(path)
    with open(path, "rb") as f:
        f.seek(offset)
        for start in range(0, n, rows):
            count = min(rows, n - start)
            yield np.fromfile(f, dtype=dtype, count=count * columns).reshape(count, columns)


def column(path: Path, j: int, rows: int) -> np.ndarray:
    """Column ``j`` of a 2-D .npy file, read ``rows`` rows at a time (one block in memory)."""
    (n, _), dtype, _ = _layout(path)
    out, start = np.empty(n, dtype=dtype), 0
    for block in blocks(path, rows):
        out[start : start + len(block)] = block[:, j]
        start += len(block)
    return out
