"""The floors every detector must clear, scored on the same rows as the detectors: random scores
(thresholded like a detector, on normal validation traffic) and flagging everything (every row an
alarm: recall 1, precision the attack share)."""

from __future__ import annotations

import numpy as np

RANDOM, FLAG_EVERYTHING = "random_scores", "flag_everything"


def random_scores(seed: int, rows: dict[str, int]) -> dict[str, np.ndarray]:
    """Uniform scores for every row of each split, drawn in the order of ``rows`` from one seeded
    generator: the same rows get the same scores in every run, whatever the labels."""
    rng = np.random.default_rng(seed)
    return {split: rng.random(n) for split, n in rows.items()}


def flag_everything(n: int) -> np.ndarray:
    """Every row an alarm."""
    return np.ones(n, dtype=bool)
