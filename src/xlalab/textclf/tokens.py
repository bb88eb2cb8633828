"""The token files of the features folder, compact and written as they are made, and the
fixed-shape tensors the loop reads (the texts and the meta beside them are ``corpus``'s).

Featurize tokenizes each split in chunks of ``CHUNK_ROWS`` texts and appends the ids of every chunk
to a flat ``<split>.ids.npy`` (uint16 when the tokenizer's vocabulary fits, else int32), beside
each text's token count (``<split>.lengths.npy``) and class id (``<split>.labels.npy``). No padding
is stored: memory stays bounded by one chunk whatever the number of texts, and 50,000 reviews at up
to 512 tokens take about 25 MB instead of the 200 MB of a padded int64 matrix. Train and evaluate
pad the rows to the longest bucket when they read them (``as_tensors``); the loop cuts each batch to
its own bucket (``core.data.LengthBuckets``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..engine.batches import LENGTH, Batch, LengthBuckets
from ..errors import UserError
from . import corpus

CHUNK_ROWS = 2048  # texts tokenized at once: bounds the tokenizer's temporary encodings
KINDS = ("ids", "lengths", "labels")
TOKEN_KEYS = ("input_ids", "attention_mask")
_HEADER = (
    128  # bytes of a 1-D .npy header (numpy pads it to 128 for any shape that fits in 64 bits)
)


def files(features_dir: Path, splits: Sequence[str]) -> list[Path]:
    return [features_dir / f"{split}.{kind}.npy" for split in splits for kind in KINDS]


def id_dtype(vocabulary_size: int) -> np.dtype:
    """uint16 when every id fits, else int32 (never int64: ids are at most a few 100,000)."""
    return np.dtype(np.uint16) if vocabulary_size <= 2**16 else np.dtype(np.int32)


class NpyWriter:
    """A 1-D .npy file written chunk by chunk: its length is known only at the end, so the header
    is a placeholder until ``close`` writes the real one (same size, so the data never moves)."""

    def __init__(self, path: Path, dtype: np.dtype):
        self.path, self.dtype, self.count = path, np.dtype(dtype), 0
        self.file = open(path, "wb")  # noqa: SIM115  closed by close(), after the real header
        self.file.write(b"\0" * _HEADER)

    def write(self, values: np.ndarray) -> None:
        np.asarray(values, dtype=self.dtype).tofile(self.file)
        self.count += len(values)

    def close(self) -> None:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header,
            {
                "descr": np.lib.format.dtype_to_descr(self.dtype),
                "fortran_order": False,
                "shape": (self.count,),
            },
        )
        if len(header.getvalue()) != _HEADER:  # numpy changed its padding: fail loudly
            raise RuntimeError(f"unexpected .npy header size {len(header.getvalue())}")
        self.file.seek(0)
        self.file.write(header.getvalue())
        self.file.close()


def chunks(texts: Sequence[str], rows: int = CHUNK_ROWS) -> Iterator[list[str]]:
    for start in range(0, len(texts), rows):
        yield list(texts[start : start + rows])


def token_counts(tokenizer, texts: Sequence[str]) -> np.ndarray:
    """Untruncated token counts (special tokens included), chunk by chunk."""
    counts = [
        np.fromiter(map(len, tokenizer(chunk, truncation=False, verbose=False)["input_ids"]), int)
        for chunk in chunks(texts)
    ]
    return np.concatenate(counts) if counts else np.zeros(0, int)


def write_split(
    features_dir: Path,
    split: str,
    tokenizer,
    texts: Sequence[str],
    labels: np.ndarray,
    max_length: int,
) -> np.ndarray:
    """Tokenize ``texts`` (cut at ``max_length`` tokens) into the split's three files, one chunk at
    a time; returns each text's token count."""
    ids = NpyWriter(features_dir / f"{split}.ids.npy", id_dtype(len(tokenizer)))
    lengths = []
    for chunk in chunks(texts):
        encoded = tokenizer(
            chunk,
            truncation=True,
            max_length=max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        counts = np.fromiter(map(len, encoded), np.int64, count=len(encoded))
        ids.write(np.fromiter(chain.from_iterable(encoded), ids.dtype, count=int(counts.sum())))
        lengths.append(counts)
    ids.close()
    counts = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    np.save(features_dir / f"{split}.lengths.npy", counts.astype(np.uint16))
    np.save(features_dir / f"{split}.labels.npy", np.asarray(labels, np.int64))
    return counts


@dataclass
class TokenSplit:
    """One split as featurize stored it: the flat ids (memory-mapped), counts and class ids."""

    ids: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lengths, dtype=np.int64)[:-1]])


def read_split(features_dir: Path, split: str) -> TokenSplit:
    found = {}
    for kind in KINDS:
        path = features_dir / f"{split}.{kind}.npy"
        if not path.exists():
            raise UserError(f"{path} is missing; run the featurize stage (or `dvc repro`) first")
        found[kind] = np.load(path, mmap_mode="r" if kind == "ids" else None)
    split_ = TokenSplit(found["ids"], found["lengths"].astype(np.int64), found["labels"])
    if split_.lengths.sum() != len(split_.ids) or len(split_.lengths) != len(split_.labels):
        raise UserError(f"the {split} token files in {features_dir} disagree; re-run featurize")
    return split_


def as_tensors(split: TokenSplit, width: int, pad_id: int, block: int = 4096) -> Batch:
    """Rows padded to ``width`` tokens: int32 ids, a boolean attention mask, the labels and each
    row's length (``core.data.LENGTH``, which picks its bucket). Built ``block`` rows at a time, so
    the index temporaries stay small."""
    n = len(split.lengths)
    ids = np.full((n, width), pad_id, dtype=np.int32)
    starts, lengths = split.starts, np.minimum(split.lengths, width)
    positions = np.arange(width)
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        mask = positions[None, :] < lengths[lo:hi, None]
        ids[lo:hi][mask] = split.ids[(starts[lo:hi, None] + positions[None, :])[mask]]
    return {
        "input_ids": torch.from_numpy(ids),
        "attention_mask": torch.from_numpy(positions[None, :] < lengths[:, None]),
        "labels": torch.from_numpy(np.asarray(split.labels, np.int64)),
        LENGTH: torch.from_numpy(lengths),
    }


def model_inputs(rows: Batch) -> Batch:
    """What a forward pass reads, and the lengths that pick each row's bucket."""
    return {k: rows[k] for k in (*TOKEN_KEYS, LENGTH)}


def buckets(sizes: Sequence[int]) -> LengthBuckets:
    """The loop's buckets over the token tensors (``sizes`` from the features meta)."""
    return LengthBuckets(tuple(int(s) for s in sizes), TOKEN_KEYS)


def read_features(features_dir: Path) -> tuple[dict[str, TokenSplit], pd.DataFrame, dict]:
    """The token files of every split, the texts and the meta."""
    texts, meta = corpus.read_texts(features_dir)
    return {split: read_split(features_dir, split) for split in corpus.FEATURE_SPLITS}, texts, meta


def token_files(features_dir: Path) -> list[Path]:
    """The files that hold the tokens (what a fingerprint of the features reads)."""
    return [*files(features_dir, corpus.FEATURE_SPLITS), features_dir / corpus.META_FILE]
