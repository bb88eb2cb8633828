"""The detectors: an autoencoder (scored by reconstruction error), Isolation Forest
(scikit-learn), ECOD and COPOD (PyOD's definitions, for rows given alone), and the distance to the
nearest training rows (faiss). Every score is "higher = more anomalous"; the scorers other than the
autoencoder take a block of rows and return ``{detector: scores}``."""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import nn

from ..engine.batches import Batch
from ..engine.loop import predict
from ..engine.runtime import Backend
from ..engine.task import Task


class Autoencoder(nn.Module):
    """A symmetric MLP: inputs -> hidden[0] -> ... -> hidden[-1] (the code) -> ... -> inputs."""

    def __init__(self, n_inputs: int, hidden: list[int], dropout: float = 0.0):
        super().__init__()
        widths = [n_inputs, *hidden]
        encoder, decoder = [], []
        for a, b in zip(widths, widths[1:]):
            encoder += [nn.Linear(a, b), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
        for a, b in zip(widths[::-1], widths[::-1][1:]):
            decoder += [nn.Linear(a, b), nn.ReLU()]
        decoder.pop()  # the reconstruction is unbounded (standardised features)
        self.encoder, self.decoder = nn.Sequential(*encoder), nn.Sequential(*decoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def reconstruction_error(outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Mean squared error per row: the loss and, at evaluation, the anomaly score."""
    return ((outputs - batch["x"]) ** 2).mean(dim=1)


def autoencoder_task() -> Task:
    return Task(loss=reconstruction_error)


def reconstruction_errors(
    model: Autoencoder, x: np.ndarray, backend: Backend, batch_size: int, desc: str = "ae"
) -> np.ndarray:
    """Every row's reconstruction error (its anomaly score), through the loop's ``predict`` on
    the backend (compiled on XLA, on the GPU with Accelerate), like every other model's
    inference."""

    def error(model: Autoencoder, batch: Batch) -> torch.Tensor:
        return reconstruction_error(model(batch["x"]), batch)

    rows = {"x": torch.from_numpy(np.ascontiguousarray(x))}
    errors = predict(model, rows, backend, batch_size, forward=error, desc=desc)
    return errors.numpy().astype(np.float64)


def tail_scores(
    below: np.ndarray, above: np.ndarray, x: np.ndarray, moments: tuple, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """PyOD's ECOD and COPOD terms of values ``x`` of one column, given how many of the ``n``
    training values lie at or below and at or above each, and the training column's (mean, sum of
    squared deviations, sum of cubed deviations): what ``decision_function`` sums per column for
    a row given alone (the row pooled with the training rows)."""
    mean, m2_train, m3_train = moments
    pooled = n + 1
    # The row itself is one of the pooled rows, on both sides of its own value.
    left_tail = -np.log((below + 1) / pooled)
    right_tail = -np.log((above + 1) / pooled)
    # Sign of scipy.stats.skew over training + this row (one-pass update of the central sums);
    # 0 where that column is constant, as every tail probability there is 1 anyway.
    delta = x - mean
    m2 = m2_train + delta**2 * n / pooled
    m3 = m3_train + delta**3 * n * (n - 1) / pooled**2 - 3 * delta * m2_train / pooled
    skew_sign = np.where(m2 > 1e-12 * np.maximum(1.0, m2_train), np.sign(m3), 0.0)
    skew_tail = -left_tail * np.sign(skew_sign - 1) + right_tail * np.sign(skew_sign + 1)
    ecod = np.maximum(np.maximum(left_tail, right_tail), skew_tail)
    copod = np.maximum(skew_tail, (left_tail + right_tail) / 2)
    return ecod, copod


class TailProbabilities:
    """PyOD's ECOD and COPOD scores of each new row against the training rows alone, both at once.

    PyOD's ``decision_function`` pools the rows it is given with the training rows and ranks them
    all again, so a row's score depends on the batch it arrives in (the test traffic starts to
    define "normal") and every call re-sorts the whole training set. Given alone, a row's term for
    one column depends only on where its value falls among that column's training values and on
    the sign of the pooled skewness, which changes only at the (at most three) real roots of a
    cubic in the value. So each column is cut at its distinct training values and those roots,
    both terms are computed once per piece (on a value, or strictly between two) with PyOD's
    formulas (``tail_scores``), and scoring a row is one binary search and one lookup per column.
    A test checks the scores against PyOD's for rows given alone."""

    def __init__(self, train: np.ndarray):
        train = np.asarray(train, dtype=np.float64)
        self.n = len(train)
        mean = train.mean(axis=0)
        centred = train - mean
        m2, m3 = (centred**2).sum(axis=0), (centred**3).sum(axis=0)
        self.cuts, ecod, copod = [], [], []
        for j in range(train.shape[1]):
            moments = (mean[j], m2[j], m3[j])
            cuts, terms = self._pieces(train[:, j], moments)
            self.cuts.append(cuts)
            ecod.append(terms[0])
            copod.append(terms[1])
        self.cut_values = np.concatenate(self.cuts)
        self.cut_starts = np.concatenate([[0], np.cumsum([len(c) for c in self.cuts])])
        self.offsets = np.concatenate([[0], np.cumsum([len(t) for t in ecod])[:-1]])
        self.ecod, self.copod = np.concatenate(ecod), np.concatenate(copod)

    def _pieces(self, column: np.ndarray, moments: tuple) -> tuple[np.ndarray, tuple]:
        """The column's cut points and, per piece, the ECOD and COPOD terms. Piece ``2i`` lies
        strictly between cuts ``i - 1`` and ``i``, piece ``2i + 1`` is cut ``i`` itself."""
        n, (mean, m2, m3) = self.n, moments
        values, counts = np.unique(column, return_counts=True)
        pooled = n + 1
        # delta = x - mean: the skewness changes sign where the updated m3 (a cubic) does
        roots = np.roots([n * (n - 1) / pooled**2, 0.0, -3 * m2 / pooled, m3]).real + mean
        cuts = np.union1d(values, roots[np.isfinite(roots)])
        weight = np.zeros(len(cuts))
        weight[np.searchsorted(cuts, values)] = counts
        below_open = np.concatenate([[0.0], np.cumsum(weight)])  # training values < cut i
        spread = np.maximum(1.0, np.abs(cuts[[0, -1]]))
        between = np.concatenate(
            [[cuts[0] - spread[0]], (cuts[:-1] + cuts[1:]) / 2, [cuts[-1] + spread[1]]]
        )
        x = np.empty(2 * len(cuts) + 1)
        below, above = np.empty_like(x), np.empty_like(x)
        x[0::2], x[1::2] = between, cuts
        below[0::2], below[1::2] = below_open, below_open[1:]
        above[0::2], above[1::2] = n - below_open, n - below_open[:-1]
        return cuts, tail_scores(below, above, x, moments, n)

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        ecod, copod = np.empty(len(x)), np.empty(len(x))
        _sum_of_pieces(np.asarray(x), self.cut_values, self.cut_starts, self.offsets,
                       self.ecod, self.copod, ecod, copod)  # fmt: skip
        return {"ecod": ecod, "copod": copod}


@numba.njit(parallel=True, cache=True)
def _sum_of_pieces(x, cut_values, cut_starts, offsets, ecod_terms, copod_terms, ecod, copod):
    """Per row (rows in parallel): per column, the piece its value falls in (a binary search of
    the column's cuts), and the sum of that piece's terms over the columns."""
    for row in numba.prange(x.shape[0]):
        ecod_sum, copod_sum = 0.0, 0.0
        for j in range(x.shape[1]):
            value, first, last = x[row, j], cut_starts[j], cut_starts[j + 1]
            low, high = first, last  # the first cut >= value (NaN: the first cut)
            while low < high:
                middle = (low + high) // 2
                if cut_values[middle] < value:
                    low = middle + 1
                else:
                    high = middle
            on_cut = 1 if low < last and cut_values[low] == value else 0
            piece = offsets[j] + 2 * (low - first) + on_cut
            ecod_sum += ecod_terms[piece]
            copod_sum += copod_terms[piece]
        ecod[row], copod[row] = ecod_sum, copod_sum


class IsolationForestScores:
    """scikit-learn's Isolation Forest, fitted by scikit-learn and scored here: the same score as
    ``-score_samples`` (higher = more anomalous; a test checks they are equal to the last bit),
    two to three times faster per core and on every core. scikit-learn walks each row down each
    tree with a branch per level, on one core (its threads would add the trees' path lengths up in
    a varying order, so a score could change in its last bit from run to run). Here a block of rows
    goes down one tree a level at a time, every row a step per level without a branch (a leaf
    leads to itself), so the rows' steps overlap in the processor; blocks run in parallel."""

    def __init__(self, train: np.ndarray, n_estimators: int, max_samples: int, seed: int):
        from sklearn.ensemble import IsolationForest
        from sklearn.ensemble._iforest import _average_path_length

        # More rows per tree than there are rows: scikit-learn takes them all, as here, without
        # warning each time.
        rows = min(max_samples, len(train))
        model = IsolationForest(
            n_estimators=n_estimators, max_samples=rows, random_state=seed, n_jobs=1
        ).fit(train)
        trees = [e.tree_ for e in model.estimators_]
        starts = np.cumsum([0] + [t.node_count for t in trees])
        self.roots, self.depths = starts[:-1], np.array([t.max_depth for t in trees])
        own = np.arange(starts[-1])
        left = np.concatenate([t.children_left + o for t, o in zip(trees, starts)])
        right = np.concatenate([t.children_right + o for t, o in zip(trees, starts)])
        leaf = np.concatenate([t.children_left == -1 for t in trees])
        self.next = np.column_stack([np.where(leaf, own, left), np.where(leaf, own, right)])
        self.feature = np.concatenate(
            [np.asarray(used)[np.maximum(t.feature, 0)] for t, used in
             zip(trees, model.estimators_features_)]
        )  # fmt: skip
        self.threshold = np.concatenate([t.threshold for t in trees])
        # What a row ending in each node adds to its depth, from scikit-learn's own arrays and in
        # its order of operations: the node's depth plus the average path length below it, - 1.
        self.path = np.concatenate(
            [depth + average - 1.0 for depth, average in
             zip(model._decision_path_lengths, model._average_path_length_per_tree)]
        )  # fmt: skip
        self.denominator = len(trees) * _average_path_length([model._max_samples])[0]

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        depths = np.zeros(len(x))
        _forest_depths(np.asarray(x), self.roots, self.depths, self.next, self.feature,
                       self.threshold, self.path, depths)  # fmt: skip
        if self.denominator == 0:  # trees of one training row: every score is 1
            return {"isolation_forest": np.ones(len(x))}
        return {"isolation_forest": 2 ** (-depths / self.denominator)}


@numba.njit(parallel=True, cache=True)
def _forest_depths(x, roots, depths_of_trees, next_node, feature, threshold, path, depths):
    """Each row's path lengths summed over the trees in tree order (as scikit-learn sums them),
    blocks of 256 rows in parallel, a block going down one tree a level at a time."""
    for block in numba.prange((x.shape[0] + 255) // 256):
        first, last = block * 256, min(x.shape[0], block * 256 + 256)
        nodes = np.empty(last - first, dtype=np.int64)
        for tree in range(len(roots)):
            nodes[:] = roots[tree]
            for _ in range(depths_of_trees[tree]):
                for r in range(last - first):
                    node = nodes[r]
                    right = 0 if x[first + r, feature[node]] <= threshold[node] else 1
                    nodes[r] = next_node[node, right]
            for r in range(last - first):
                depths[first + r] += path[nodes[r]]


class NearestNeighbourDistance:
    """The mean Euclidean distance from a row to its ``neighbours`` nearest training rows (in the
    standardised feature space), found with faiss: an inverted-file index of ``lists`` k-means
    cells of which the ``probes`` nearest to the row are searched, or every training row when
    ``lists`` is 0 or the training rows are too few to fill the cells (faiss asks for at least
    ``ROWS_PER_LIST`` per cell). A row whose probed cells hold fewer than ``neighbours`` training
    rows is searched exactly."""

    ROWS_PER_LIST = 39

    def __init__(self, train: np.ndarray, neighbours: int, lists: int, probes: int, seed: int):
        import faiss

        train = np.ascontiguousarray(train, dtype=np.float32)
        self.k = min(neighbours, len(train))
        self.exact = faiss.IndexFlatL2(train.shape[1])
        self.exact.add(train)
        self.index, self.search = self.exact, {"search": "exact", "reference_rows": len(train)}
        if lists and len(train) >= self.ROWS_PER_LIST * lists:
            self.index = faiss.IndexIVFFlat(
                faiss.IndexFlatL2(train.shape[1]), train.shape[1], lists
            )
            self.index.cp.seed = seed  # the k-means that places the cells
            self.index.train(train)
            self.index.add(train)
            self.index.nprobe = probes
            self.search |= {"search": "ivf", "lists": lists, "probes": probes}

    def distances(self, x: np.ndarray) -> np.ndarray:
        """Each row's distances to its ``k`` nearest training rows, nearest first (the first
        ``j`` columns are its ``j`` nearest: one search serves every smaller ``neighbours``)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        squared, found = self.index.search(x, self.k)
        short = (found < 0).any(axis=1)
        if short.any():
            squared[short] = self.exact.search(x[short], self.k)[0]
        return np.sqrt(np.maximum(squared, 0))

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return {"knn": self.distances(x).mean(axis=1, dtype=np.float64)}
