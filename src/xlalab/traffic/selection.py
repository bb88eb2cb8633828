"""Each detector's settings, chosen on labelled validation traffic: the held-out NORMAL training
rows and every row of the attack types featurize held out whole, types that no detector was
fitted on (as the test traffic has types never seen in training). No test row is read.

Every detector with a setting gets the same budget, the same number of candidates (three by
default): kNN's number of neighbours, Isolation Forest's rows per tree, and the autoencoder's
widths (chosen in the train stage by the same rule, as only it can train them). ECOD and COPOD
have no setting to choose. The rule is the verdict's metric, ROC-AUC, which does not depend on
where a threshold lands nor on the share of attacks (validation and test traffic differ in it).
"""

from __future__ import annotations

import logging

import numpy as np

from .analysis import anomaly, at_false_alarm_rate, ranking_metrics, ranking_verdict, threshold_at
from .model import IsolationForestScores, NearestNeighbourDistance
from .project import EvaluateParams

logger = logging.getLogger(__name__)


def validation_roc_auc(normal: np.ndarray, attacks: np.ndarray) -> float | None:
    """ROC-AUC of scores of normal validation rows against held-out attacks (None without
    attacks)."""
    if len(attacks) == 0 or len(normal) == 0:
        return None
    y = np.r_[np.zeros(len(normal), bool), np.ones(len(attacks), bool)]
    return ranking_metrics(y, np.concatenate([normal, attacks]))[0]


def best(candidates: dict) -> object:
    """The candidate with the highest validation ROC-AUC (the first one where none has a
    score: no labelled validation traffic); ties go to the earlier candidate."""
    scored = {k: v for k, v in candidates.items() if v is not None}
    return max(scored, key=scored.get) if scored else next(iter(candidates))


def choose_settings(
    p: EvaluateParams, fit: np.ndarray, val: dict[str, np.ndarray]
) -> tuple[dict[str, dict], dict[str, dict]]:
    """The settings of Isolation Forest and kNN that score best on validation traffic
    (``{"isolation_forest": {"max_samples": m}, "knn": {"neighbours": k}}``), and per detector
    every candidate's validation ROC-AUC."""
    e, settings, tried = p.evaluate, {}, {}
    wanted = set(e.detectors) | set(e.study_detectors)  # the feature-set study uses them too
    if "isolation_forest" in wanted:
        scores = {}
        for rows in e.isolation_forest.max_samples_choices:
            forest = IsolationForestScores(fit, e.isolation_forest.n_estimators, rows, p.seed)
            normal, attacks = (forest(val[k])["isolation_forest"] for k in ("val", "val_attacks"))
            scores[rows] = validation_roc_auc(normal, attacks)
        settings["isolation_forest"] = {"max_samples": best(scores)}
        tried["isolation_forest"] = {"setting": "max_samples", "candidates": scores}
        tried["isolation_forest"]["chosen"] = settings["isolation_forest"]
    if "knn" in wanted:
        choices = e.knn.neighbours_choices
        knn = NearestNeighbourDistance(fit, max(choices), e.knn.lists, e.knn.probes, p.seed)
        normal, attacks = (knn.distances(val[k]) for k in ("val", "val_attacks"))
        scores = {
            k: validation_roc_auc(normal[:, :k].mean(axis=1), attacks[:, :k].mean(axis=1))
            for k in choices
        }
        settings["knn"] = {"neighbours": best(scores)}
        tried["knn"] = {"setting": "neighbours", "candidates": scores, "chosen": settings["knn"]}
    return settings, tried


def autoencoder_tried(choice: dict | None) -> dict:
    """The train stage's choice among the autoencoders, in the table's form."""
    if not choice:
        return {}
    candidates = {
        "x".join(map(str, c["hidden"])): c["val_roc_auc"] for c in choice["candidates"].values()
    }
    chosen = {"hidden": choice["candidates"][choice["chosen"]]["hidden"]}
    return {"autoencoder": {"setting": "hidden", "candidates": candidates, "chosen": chosen}}


def detector_report(scores: dict[str, np.ndarray], p: EvaluateParams) -> dict:
    """One detector, at its chosen setting, on labelled validation traffic: ROC-AUC, PR-AUC, F1
    at its threshold and recall at the fixed false-alarm rate."""
    y = np.r_[np.zeros(len(scores["val"]), bool), np.ones(len(scores["val_attacks"]), bool)]
    both = np.concatenate([scores["val"], scores["val_attacks"]])
    flagged = both > threshold_at(scores["val"], p.evaluate.threshold_percentile)
    report = anomaly(y, both, flagged)
    fixed = at_false_alarm_rate(y, scores["val"], both, p.evaluate.fixed_false_alarm_rate)
    keep = ("roc_auc", "pr_auc", "precision", "recall", "f1")
    return {k: report[k] for k in keep} | {"recall_at_fixed_false_alarm_rate": fixed["recall"]}


def validation(
    val_scores: dict[str, dict[str, np.ndarray]],
    tried: dict[str, dict],
    meta: dict,
    p: EvaluateParams,
) -> dict | None:
    """Every detector on labelled validation traffic at its chosen setting, with the candidates
    it was chosen from; the detector with the best ROC-AUC there, and the headline against the
    strongest other detector there with a paired bootstrap interval: whether validation traffic
    contradicts the headline named in params (the test verdict stays with that headline)."""
    split = next(iter(val_scores.values()))
    if len(split["val_attacks"]) == 0:
        logger.warning("no attack types were held out: no labelled validation traffic")
        return None
    detectors = {name: detector_report(v, p) for name, v in val_scores.items()}
    for name, choice in tried.items():
        if name in detectors:
            detectors[name] |= choice
    top = max(detectors, key=lambda n: detectors[n]["roc_auc"])
    headline = p.evaluate.headline
    y = np.r_[np.zeros(len(split["val"]), bool), np.ones(len(split["val_attacks"]), bool)]
    both = {n: np.concatenate([v["val"], v["val_attacks"]]) for n, v in val_scores.items()}
    verdict = None
    if len(both) > 1:
        verdict = ranking_verdict(headline, both, y, p.seed, len(y))
        if verdict["verdict"] == "loses":
            logger.warning(
                f"on labelled validation traffic the headline {headline} loses to "
                f"{verdict['best_baseline']} ({verdict['line']}); the test verdict stays with the "
                "headline named in params: name the other in traffic.evaluate.headline"
            )
    return {
        "rows": {"normal": len(split["val"]), "attacks": len(split["val_attacks"])},
        "attack_types": meta["validation_attack_types"],
        "detectors": detectors,
        "best_roc_auc": top,
        "verdict": verdict,
    }
