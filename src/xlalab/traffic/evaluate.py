"""The evaluate stage: every detector scored on the test traffic, its alarm threshold taken from
NORMAL validation traffic only (``threshold_percentile`` of its scores there), never from test
labels; baselines on the same rows (random scores, flag everything); recall per attack category and
on attack types never seen in training; where false alarms and misses come from; and the
feature-set study. The verdict names the detector with the best F1 and whether it beats the best
baseline (a choice among the reported detectors, not tuning: no threshold or param sees test
labels).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch
from sklearn.dummy import DummyClassifier
from tqdm.auto import tqdm

from ..core import launch
from ..core.artifacts import load_trained, read_summary
from ..core.data import Batch
from ..core.io import read_json, write_json
from ..core.loop import predict
from ..core.project import Paths
from ..core.reports import announce, anomaly, verdict
from ..core.runtime import Backend, make_backend
from .model import Autoencoder, classical_detector, reconstruction_error
from .project import PROJECT, EvaluateParams

logger = logging.getLogger(__name__)

CHUNK = 100_000  # rows scored at a time: memory stays flat however long the test file is


def chunks(x: np.ndarray, rows: int) -> Iterator[np.ndarray]:
    for start in range(0, len(x), rows):
        yield np.asarray(x[start : start + rows], dtype=np.float32)


def score_rows(score, x: np.ndarray, columns: list[int]) -> np.ndarray:
    return np.concatenate([score(part[:, columns]) for part in chunks(x, CHUNK)]).astype(np.float64)


def autoencoder_scorer(model: Autoencoder, backend: Backend, batch_size: int):
    """The reconstruction error of every row, computed through the loop's ``predict`` on the
    backend (compiled on XLA, on the GPU with Accelerate), like every other model's inference."""

    def error(model: Autoencoder, batch: Batch) -> torch.Tensor:
        return reconstruction_error(model(batch["x"]), batch)

    def score(x: np.ndarray) -> np.ndarray:
        rows = {"x": torch.from_numpy(np.ascontiguousarray(x))}
        return predict(model, rows, backend, batch_size, forward=error, desc="autoencoder").numpy()

    return score


def fit_detector(name: str, p: EvaluateParams, paths: Paths, fit: np.ndarray, columns: list[int]):
    """A fitted detector's score function (higher = more anomalous)."""
    if name == "autoencoder":
        state, entry = load_trained(paths, "autoencoder")
        model = Autoencoder(**entry["config"])
        model.load_state_dict(state)
        return autoencoder_scorer(model, make_backend(p.runtime), p.evaluate.batch_size)
    detector = classical_detector(
        name,
        p.seed,
        p.evaluate.isolation_forest.n_estimators,
        p.evaluate.isolation_forest.max_samples,
    )
    return detector.fit(np.asarray(fit[:, columns])).score


def recall_by(groups: pd.Series, is_attack: np.ndarray, flagged: np.ndarray) -> dict[str, dict]:
    frame = pd.DataFrame({"group": groups.to_numpy(), "caught": flagged})[is_attack]
    table = (
        frame.groupby("group")["caught"].agg(["mean", "size"]).sort_values("size", ascending=False)
    )
    return {
        str(k): {"recall": float(r["mean"]), "attacks": int(r["size"])} for k, r in table.iterrows()
    }


def judge(
    y: np.ndarray,
    info: pd.DataFrame,
    unseen: np.ndarray,
    val_scores: np.ndarray,
    test_scores: np.ndarray,
    percentile: float,
) -> tuple[dict, np.ndarray]:
    threshold = float(np.percentile(val_scores, percentile))
    flagged = test_scores > threshold
    report = anomaly(y, test_scores, flagged)
    report.update(
        threshold=threshold,
        val_alarm_rate=float((val_scores > threshold).mean()),
        recall_per_category=recall_by(info["category"], y, flagged),
        recall_unseen_attacks=float(flagged[y & unseen].mean()) if (y & unseen).any() else None,
        recall_seen_attacks=float(flagged[y & ~unseen].mean()) if (y & ~unseen).any() else None,
    )
    return report, flagged


def dominant(
    frame: pd.DataFrame, columns: list[str], reference: pd.DataFrame, top: int = 5
) -> dict:
    """Per column, the values most common in ``frame`` with their count, their share of ``frame``
    and the share of that value's ``reference`` rows that ended up in ``frame``."""
    out = {}
    for c in columns:
        counts = frame[c].value_counts().head(top)
        totals = reference[c].value_counts()
        out[c] = [
            {
                "value": str(v),
                "count": int(n),
                "share": float(n / max(len(frame), 1)),
                "rate": float(n / totals.get(v, n)),
            }
            for v, n in counts.items()
        ]
    return out


def error_analysis(
    info: pd.DataFrame,
    y: np.ndarray,
    scores: np.ndarray,
    flagged: np.ndarray,
    categorical: list[str],
    top: int,
) -> dict:
    false_alarm, missed = flagged & ~y, ~flagged & y
    fp, fn = info[false_alarm], info[missed]
    highest = info.assign(score=scores)[false_alarm].nlargest(top, "score")
    return {
        "false_positives": int(false_alarm.sum()),
        "false_negatives": int(missed.sum()),
        "false_positive_rate": float(false_alarm.sum() / max((~y).sum(), 1)),
        "false_positives_by": dominant(fp, categorical, info[~y]),
        "false_negatives_by": dominant(fn, ["attack", "category", *categorical], info[y]),
        "highest_scoring_false_alarms": [
            {"row": int(i), "score": float(r["score"]), **{c: str(r[c]) for c in categorical}}
            for i, r in highest.iterrows()
        ],
    }


def baselines(
    p: EvaluateParams, y: np.ndarray, info: pd.DataFrame, unseen: np.ndarray, n_val: int
) -> dict:
    rng = np.random.default_rng(p.seed)
    random_val, random_test = rng.random(n_val), rng.random(len(y))
    out = {
        "random_scores": judge(
            y, info, unseen, random_val, random_test, p.evaluate.threshold_percentile
        )[0]
    }
    # Flag everything: DummyClassifier always predicting "attack"; its score is constant.
    dummy = DummyClassifier(strategy="constant", constant=1).fit(np.zeros((2, 1)), [0, 1])
    flag_all = dummy.predict(np.zeros((len(y), 1))).astype(bool)
    report = anomaly(y, dummy.predict_proba(np.zeros((len(y), 1)))[:, 1], flag_all)
    report.update(
        threshold=None,
        recall_per_category=recall_by(info["category"], y, flag_all),
        recall_unseen_attacks=1.0 if (y & unseen).any() else None,
    )
    out["flag_everything"] = report
    return out


def feature_set_study(p: EvaluateParams, meta: dict, fit, val, test, y: np.ndarray) -> list[dict]:
    rows = []
    sets = [s for s in p.evaluate.study_sets if meta["groups"].get(s)]
    for feature_set in tqdm(sets, desc="feature sets", file=sys.stderr, disable=None):
        columns = meta["groups"][feature_set]
        for name in p.evaluate.study_detectors:
            score = fit_detector(name, p, None, fit, columns)
            val_scores, test_scores = (
                score_rows(score, val, columns),
                score_rows(score, test, columns),
            )
            threshold = np.percentile(val_scores, p.evaluate.threshold_percentile)
            m = anomaly(y, test_scores, test_scores > threshold)
            rows.append(
                {
                    "feature_set": feature_set,
                    "detector": name,
                    "columns": len(columns),
                    **{k: m[k] for k in ("roc_auc", "pr_auc", "precision", "recall", "f1")},
                }
            )
    return rows


def evaluate(p: EvaluateParams, paths: Paths) -> None:
    meta = read_json(paths.features / "meta.json")
    categorical = meta["categorical"]
    fit = np.load(paths.features / "fit.npy", mmap_mode="r")
    val = np.load(paths.features / "val.npy", mmap_mode="r")
    test = np.load(paths.features / "test.npy", mmap_mode="r")
    info = pd.read_csv(
        paths.features / "test_meta.csv",
        dtype={c: str for c in [*categorical, "attack", "category"]},
        keep_default_na=False,
    )
    y = info["is_attack"].to_numpy(int).astype(bool)
    unseen = ~info["attack"].isin(meta["train_attacks"]).to_numpy()
    columns = meta["selected"]

    detectors, flags, test_scores, seconds = {}, {}, {}, {}
    for name in p.evaluate.detectors:
        start = time.perf_counter()
        score = fit_detector(name, p, paths, fit, columns)
        val_scores = score_rows(score, val, columns)
        test_scores[name] = score_rows(score, test, columns)
        detectors[name], flags[name] = judge(
            y, info, unseen, val_scores, test_scores[name], p.evaluate.threshold_percentile
        )
        seconds[name] = time.perf_counter() - start
        detectors[name]["seconds"] = round(seconds[name], 2)
        m = detectors[name]
        logger.info(
            f"{name}: F1 {m['f1']:.3f} (P {m['precision']:.3f}, R {m['recall']:.3f}), ROC-AUC "
            f"{m['roc_auc']:.3f}, "
            f"PR-AUC {m['pr_auc']:.3f}, {seconds[name]:.1f} s"
        )
    base = baselines(p, y, info, unseen, len(val))
    best = max(detectors, key=lambda n: detectors[n]["f1"])
    scores = {**{n: m["f1"] for n, m in detectors.items()}, **{n: m["f1"] for n, m in base.items()}}
    result = verdict(best, scores, list(base), "f1", higher_is_better=True)

    study = feature_set_study(p, meta, fit, val, test, y)
    predictions = info.copy()
    for name in p.evaluate.detectors:
        predictions[f"score_{name}"] = test_scores[name]
        predictions[f"flag_{name}"] = flags[name].astype(int)
    predictions.index.name = "row"
    predictions.to_csv(paths.predictions)

    write_json(
        paths.metrics,
        {
            "source": meta["source"],
            "feature_set": meta["feature_set"],
            "fit_on": meta["fit_on"],
            "threshold_percentile": p.evaluate.threshold_percentile,
            "test": {
                "rows": int(len(y)),
                "attacks": int(y.sum()),
                "attack_share": float(y.mean()),
                "unseen_attack_rows": int((y & unseen).sum()),
                "unseen_attack_types": sorted(info.loc[y & unseen, "attack"].unique().tolist()),
            },
            "detectors": detectors,
            "baselines": base,
            "best": best,
            "analysis": error_analysis(
                info, y, test_scores[best], flags[best], categorical, p.evaluate.top_false_alarms
            ),
            "feature_sets": study,
            "runtime": read_summary(paths)["runtime"],  # what trained the autoencoder
            "verdict": result,
        },
    )
    announce(result)


if __name__ == "__main__":
    launch.main(PROJECT, "evaluate", evaluate)
