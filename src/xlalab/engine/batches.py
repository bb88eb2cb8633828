"""In-memory datasets as dicts of tensors, and batch iterators with fixed shapes.

Fixed shapes keep XLA from recompiling: training drops the ragged last batch, and evaluation
pads its last batch with copies of row 0 whose ``weight`` is 0, so they count for nothing.

Sequences of different lengths can be grouped into a few fixed lengths (``LengthBuckets``): every
batch then holds rows of one bucket, cut to that bucket's length, so XLA compiles one graph per
bucket and a short text does not pay for the longest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from ..errors import UserError

Batch = dict[str, torch.Tensor]
# (batch, generator) -> batch: random augmentation applied on the host to training batches.
Transform = Callable[[Batch, torch.Generator], Batch]

WEIGHT = "weight"
LENGTH = "length"  # with LengthBuckets: each row's sequence length (read on the host, not batched)


@dataclass(frozen=True)
class LengthBuckets:
    """A few fixed sequence lengths (ascending). Each row goes to the shortest bucket that holds
    its ``data[LENGTH]``; the tensors named in ``keys`` are stored at least as long as the longest
    bucket along their second dimension and are cut to the bucket's length in every batch. Rows
    left over after a bucket's whole batches move up to the next bucket (a shorter row fits a
    longer one), so an epoch has as many batches as without buckets."""

    sizes: tuple[int, ...]
    keys: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.sizes or list(self.sizes) != sorted(set(self.sizes)) or self.sizes[0] < 1:
            raise UserError(f"bucket lengths must be positive and increasing, got {self.sizes}")

    def of(self, lengths: torch.Tensor) -> torch.Tensor:
        """The bucket index of each row."""
        if int(lengths.max()) > self.sizes[-1]:
            raise UserError(
                f"a row is {int(lengths.max())} long, more than the longest bucket "
                f"{self.sizes[-1]}; cut the rows to the longest bucket first"
            )
        return torch.bucketize(lengths, torch.tensor(self.sizes))

    def groups(self, order: torch.Tensor, bucket: torch.Tensor, rows: int) -> list:
        """(global batch of row indices, bucket length) for the rows of ``order`` (a permutation or
        ``arange``): within each bucket in the order given, leftovers carried up; the rows left
        after the last bucket are returned as a last, short group."""
        out, carry = [], order[:0]
        for b, size in enumerate(self.sizes):
            pool = torch.cat([carry, order[bucket[order] == b]])
            whole = len(pool) // rows * rows
            out += [(pool[i : i + rows], size) for i in range(0, whole, rows)]
            carry = pool[whole:]
        return out + ([(carry, self.sizes[-1])] if len(carry) else [])


def check_tensors(data: Batch, name: str) -> int:
    """The number of rows; every tensor must have it, and there must be some."""
    if not data:
        raise UserError(f"{name} has no tensors")
    sizes = {k: v.shape[0] for k, v in data.items()}
    if len(set(sizes.values())) != 1:
        raise UserError(f"{name} tensors disagree on the number of rows: {sizes}")
    n = next(iter(sizes.values()))
    if n == 0:
        raise UserError(f"{name} is empty; check the data source and the split fractions")
    return n


@dataclass
class Batches:
    """Batches of ``batch_size`` rows for this replica, one pass over the data.

    With ``num_replicas`` processes the data is cut into global batches of
    ``batch_size * num_replicas`` rows and replica ``rank`` takes its slice of each, so every
    optimizer step sees the same rows whatever the number of processes.
    train: a fresh permutation every epoch (seeded by seed and epoch, so a resumed run sees the
    same order) and no ragged last global batch.
    eval: all rows in order, padded to whole global batches; the padding has weight 0.
    """

    data: Batch
    batch_size: int
    train: bool
    seed: int = 0
    epoch: int = 0
    rank: int = 0
    num_replicas: int = 1
    transform: Transform | None = None
    buckets: LengthBuckets | None = None

    def __post_init__(self) -> None:
        self.n = check_tensors(self.data, "dataset")
        self.bucket = None if self.buckets is None else self.buckets.of(self.data[LENGTH])
        if self.batch_size < 1:
            raise UserError(f"batch size must be positive, got {self.batch_size}")
        if self.train and self.n < self.batch_size * self.num_replicas:
            raise UserError(
                f"the training split has {self.n} rows, fewer than one batch of "
                f"{self.batch_size * self.num_replicas}; lower the batch size or add data"
            )

    def _indices(self) -> list[torch.Tensor]:
        rows = self.batch_size * self.num_replicas  # one global batch
        if self.buckets is not None:
            return [idx for idx, _ in self._bucketed(rows)]
        if self.train:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=g)[: self.n // rows * rows]
        else:
            order = torch.arange(-(-self.n // rows) * rows)  # padded up to whole global batches
        mine = order.view(-1, self.num_replicas, self.batch_size)[:, self.rank]
        return list(mine)

    def _bucketed(self, rows: int) -> list[tuple[torch.Tensor, int]]:
        """(this replica's row indices, bucket length) of every batch. Train: rows shuffled within
        their buckets, the batches in a shuffled order, the last short group dropped. Eval: rows in
        order within each bucket, the last group padded with -1 (weight 0)."""
        assert self.buckets is not None and self.bucket is not None  # only called with buckets
        if self.train:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            groups = self.buckets.groups(torch.randperm(self.n, generator=g), self.bucket, rows)
            groups = [groups[i] for i in torch.randperm(len(groups), generator=g).tolist()]
            groups = [(idx, size) for idx, size in groups if len(idx) == rows]
        else:
            groups = self.buckets.groups(torch.arange(self.n), self.bucket, rows)
            if groups and len(groups[-1][0]) < rows:
                short, size = groups[-1]
                groups[-1] = (torch.cat([short, short.new_full((rows - len(short),), -1)]), size)
        return [(idx.view(self.num_replicas, -1)[self.rank], size) for idx, size in groups]

    def rows(self) -> torch.Tensor:
        """The row each position of one evaluation pass holds, global batch after global batch
        (-1: padding): what puts predictions back in row order."""
        rows = self.batch_size * self.num_replicas
        if self.buckets is None:
            order = torch.arange(-(-self.n // rows) * rows)
            return torch.where(order < self.n, order, -1)
        assert self.bucket is not None  # set with buckets
        groups = self.buckets.groups(torch.arange(self.n), self.bucket, rows)
        order = torch.cat([idx for idx, _ in groups])
        return torch.cat([order, order.new_full((-len(order) % rows,), -1)])

    def __len__(self) -> int:
        return len(self._indices())

    def __iter__(self) -> Iterator[Batch]:
        # Augmentation differs between replicas (rank 0 draws what a single process would).
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch + 7 + 7_919 * self.rank)
        rows = self.batch_size * self.num_replicas
        batches = (
            [(idx, None) for idx in self._indices()]
            if self.buckets is None
            else self._bucketed(rows)
        )
        for idx, size in batches:
            if self.train:
                batch = {k: v[idx] for k, v in self.data.items()}
                batch[WEIGHT] = torch.ones(len(idx))
            else:
                real = (idx < self.n) & (idx >= 0)
                safe = torch.where(real, idx, torch.zeros_like(idx))
                batch = {k: v[safe] for k, v in self.data.items()}
                batch[WEIGHT] = real.float()
            if size is not None:
                batch = self._cut(batch, size)
            if self.train and self.transform is not None:
                batch = self.transform(batch, g)
            yield batch

    def _cut(self, batch: Batch, size: int) -> Batch:
        """The bucket's shape: sequence tensors cut to ``size``, the lengths left on the host."""
        assert self.buckets is not None  # only bucketed batches are cut
        batch.pop(LENGTH)
        return {k: v[:, :size] if k in self.buckets.keys else v for k, v in batch.items()}
