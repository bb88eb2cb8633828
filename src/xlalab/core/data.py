"""In-memory datasets as dicts of tensors, and batch iterators with fixed shapes.

Fixed shapes keep XLA from recompiling: training drops the ragged last batch, and evaluation
pads its last batch with copies of row 0 whose ``weight`` is 0, so they count for nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from .errors import UserError

Batch = dict[str, torch.Tensor]
# (batch, generator) -> batch: random augmentation applied on the host to training batches.
Transform = Callable[[Batch, torch.Generator], Batch]

WEIGHT = "weight"


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

    def __post_init__(self) -> None:
        self.n = check_tensors(self.data, "dataset")
        if self.batch_size < 1:
            raise UserError(f"batch size must be positive, got {self.batch_size}")
        if self.train and self.n < self.batch_size * self.num_replicas:
            raise UserError(
                f"the training split has {self.n} rows, fewer than one batch of "
                f"{self.batch_size * self.num_replicas}; lower the batch size or add data"
            )

    def _indices(self) -> list[torch.Tensor]:
        rows = self.batch_size * self.num_replicas  # one global batch
        if self.train:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=g)[: self.n // rows * rows]
        else:
            order = torch.arange(-(-self.n // rows) * rows)  # padded up to whole global batches
        mine = order.view(-1, self.num_replicas, self.batch_size)[:, self.rank]
        return list(mine)

    def __len__(self) -> int:
        return len(self._indices())

    def __iter__(self) -> Iterator[Batch]:
        # Augmentation differs between replicas (rank 0 draws what a single process would).
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch + 7 + 7_919 * self.rank)
        for idx in self._indices():
            if self.train:
                batch = {k: v[idx] for k, v in self.data.items()}
                batch[WEIGHT] = torch.ones(len(idx))
                if self.transform is not None:
                    batch = self.transform(batch, g)
            else:
                real = idx < self.n
                safe = torch.where(real, idx, torch.zeros_like(idx))
                batch = {k: v[safe] for k, v in self.data.items()}
                batch[WEIGHT] = real.float()
            yield batch
