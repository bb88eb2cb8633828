"""cifar10 figures beyond the shared ones in core.plots."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def sample_grid(images: torch.Tensor, y_true: np.ndarray, probs: np.ndarray, classes: list[str], n: int,
                 seed: int):
    """A seeded sample of test images, about a third of them mistakes; titles green if right, red if wrong."""
    y_pred = probs.argmax(-1)
    rng = np.random.default_rng(seed)
    wrong, right = np.flatnonzero(y_pred != y_true), np.flatnonzero(y_pred == y_true)
    n_wrong = min(len(wrong), n // 3)
    chosen = np.concatenate([rng.choice(wrong, n_wrong, replace=False),
                             rng.choice(right, min(len(right), n - n_wrong), replace=False)])
    chosen = rng.permutation(chosen)
    cols = min(8, len(chosen))
    rows = -(-len(chosen) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.7 * cols, 2.15 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, chosen):
        ax.imshow(images[i].permute(1, 2, 0).numpy())
        ok = y_pred[i] == y_true[i]
        label = f"{classes[y_pred[i]]} {probs[i, y_pred[i]]:.0%}" + ("" if ok else f"\n(true: {classes[y_true[i]]})")
        ax.set_title(("✓ " if ok else "✗ ") + label, fontsize=8, color="green" if ok else "red")
    fig.suptitle(f"cifar10: test predictions ({n_wrong} of {len(chosen)} shown are mistakes)")
    fig.tight_layout()
    return fig
