"""The evaluate stage: every detector scored on the test traffic, beside its baselines, with the
verdict.

Every detector scores the test traffic in one streamed pass (``chunk_rows``
rows at a time, so memory stays flat however long the test file is); its alarm threshold is taken
from the scores of NORMAL validation traffic only. The same detectors are scored on labelled
validation traffic (the normal validation rows and the training attacks held out by featurize):
the data on which a headline detector can be chosen without the test split. The verdict is about
the headline detector named in params before the run (``traffic.evaluate.headline``): its F1 at
its threshold against the strongest of the other detectors and of the baselines (random scores,
flag everything), with paired bootstrap intervals (``core.evidence.compare``). No threshold, no
headline and no row kept depends on a test label: shuffling them changes the scores alone (tested).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import torch
from tqdm.auto import tqdm

from ..engine.batches import Batch
from ..engine.loop import predict
from ..engine.runtime import make_backend
from ..files import read_json, write_json
from ..pipeline import runner
from ..pipeline.artifacts import load_trained, read_summary
from ..pipeline.contract import Paths
from ..results.evidence import compare, f1_of_class
from ..results.reports import announce
from . import arrays, baselines
from .analysis import (
    anomaly,
    at_false_alarm_rate,
    error_analysis,
    judge,
    recall_by,
    threshold_at,
)
from .arrays import RowWriter
from .model import (
    Autoencoder,
    IsolationForestScores,
    NearestNeighbourDistance,
    TailProbabilities,
    reconstruction_error,
)
from .project import PROJECT, EvaluateParams

logger = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)


@dataclass
class Scorer:
    """A fitted scorer: a block of rows -> ``{detector: scores}`` for ``detectors``."""

    label: str  # its name in the timings ("ecod+copod": one pass scores both)
    detectors: tuple[str, ...]
    score: Callable[[np.ndarray], dict[str, np.ndarray]]
    about: dict  # what the metrics should say of it (the kNN search)


def autoencoder_scorer(p: EvaluateParams, paths: Paths) -> Scorer:
    """The reconstruction error of every row, computed through the loop's ``predict`` on the
    backend (compiled on XLA, on the GPU with Accelerate), like every other model's inference."""
    state, entry = load_trained(paths, "autoencoder")
    model = Autoencoder(**entry["config"])
    model.load_state_dict(state)
    backend = make_backend(p.runtime)

    def error(model: Autoencoder, batch: Batch) -> torch.Tensor:
        return reconstruction_error(model(batch["x"]), batch)

    def score(x: np.ndarray) -> dict[str, np.ndarray]:
        rows = {"x": torch.from_numpy(np.ascontiguousarray(x))}
        errors = predict(model, rows, backend, p.evaluate.batch_size, forward=error, desc="ae")
        return {"autoencoder": errors.numpy().astype(np.float64)}

    return Scorer("autoencoder", ("autoencoder",), score, {})


def fit_scorers(names: list[str], p: EvaluateParams, paths: Paths, fit: np.ndarray) -> list[Scorer]:
    """The scorers of ``names``, fitted on ``fit`` (the rows the detectors learn from); the
    autoencoder was trained by the train stage."""
    e = p.evaluate
    wanted, scorers = set(names), []
    if "isolation_forest" in wanted:
        forest = IsolationForestScores(
            fit, e.isolation_forest.n_estimators, e.isolation_forest.max_samples, p.seed
        )
        scorers.append(Scorer("isolation_forest", ("isolation_forest",), forest, {}))
    if "autoencoder" in wanted:
        scorers.append(autoencoder_scorer(p, paths))
    tails = tuple(n for n in ("ecod", "copod") if n in wanted)
    if tails:
        both = TailProbabilities(fit)
        score = lambda x: {n: s for n, s in both(x).items() if n in tails}  # noqa: E731
        scorers.append(Scorer("+".join(tails), tails, score, {}))
    if "knn" in wanted:
        knn = NearestNeighbourDistance(fit, e.knn.neighbours, e.knn.lists, e.knn.probes, p.seed)
        scorers.append(Scorer("knn", ("knn",), knn, knn.search))
    return scorers


def worker_threads(p: EvaluateParams) -> int:
    """Threads for the detectors' scoring: ``runtime.cpu_threads``, or every core we may use."""
    return p.runtime.cpu_threads or len(os.sched_getaffinity(0))


def use_threads(threads: int) -> None:
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    if "faiss" in sys.modules:
        sys.modules["faiss"].omp_set_num_threads(threads)


def scored_blocks(
    scorers: list[Scorer], blocks: Iterable[np.ndarray], columns: list[int], seconds: dict
) -> Iterator[dict[str, np.ndarray]]:
    """Every detector's scores of each block of rows, one block in memory at a time; the time
    each scorer takes adds up in ``seconds``."""
    for block in blocks:
        every_column = len(columns) == block.shape[1] and columns == list(range(len(columns)))
        x = block if every_column else np.ascontiguousarray(block[:, columns])
        del block  # one block alive at a time, not two, while the next is read
        out = {}
        for scorer in scorers:
            began = time.perf_counter()
            out |= scorer.score(x)
            seconds[scorer.label] = seconds.get(scorer.label, 0.0) + time.perf_counter() - began
        del x
        yield out


def collect(scorers: list[Scorer], matrix: np.ndarray, columns: list[int]) -> dict:
    """Every detector's scores of a matrix held in memory (validation traffic)."""
    if len(matrix) == 0:
        return {name: np.empty(0) for s in scorers for name in s.detectors}
    blocks = [matrix[i : i + 65536] for i in range(0, len(matrix), 65536)]
    parts = list(scored_blocks(scorers, blocks, columns, {}))
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def spill(
    scorers: list[Scorer], names: list[str], test: Path, rows: int, columns: list[int], out: Path
) -> dict:
    """Score the test matrix block by block into ``out``, a (rows, detectors) float64 matrix on
    disk, one column per detector of ``names`` (memory then holds one block, not every detector's
    scores); the seconds per scorer."""
    n, seconds = arrays.shape(test)[0], {}
    bar = tqdm(total=n, desc="score", unit=" rows", file=sys.stderr, disable=None)
    with RowWriter(out, n, len(names), dtype="<f8") as writer, bar:
        for scores in scored_blocks(scorers, arrays.blocks(test, rows), columns, seconds):
            writer.write(np.column_stack([scores[name] for name in names]))
            bar.update(len(scores[names[0]]))
    return seconds


def read_test_rows(paths: Paths, categorical: list[str]) -> pd.DataFrame:
    """The test rows' labels and metadata, text columns as pandas categoricals (a few bytes a
    row, however many rows)."""
    text = pa.dictionary(pa.int32(), pa.string())
    types = {c: text for c in ["attack", "category", *categorical]} | {"is_attack": pa.int8()}
    options = pacsv.ConvertOptions(column_types=types | {"time": pa.float64()})
    rows = pacsv.read_csv(paths.features / "test_meta.csv", convert_options=options).to_pandas()
    pa.default_memory_pool().release_unused()  # the parser's buffers (300 MB on 5 M rows)
    return rows


def return_freed_memory() -> None:
    """Have glibc hand large freed blocks back to the system at once. By default its threshold
    for doing so rises to the largest block freed (up to 32 MB), after which the blocks every
    scoring thread frees stay in that thread's heap: 140 MB more memory on 1 M test rows."""
    libc = ctypes.CDLL(None)
    if hasattr(libc, "mallopt"):  # glibc (Linux); other C libraries manage memory their own way
        libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024)


def validation_report(val: dict[str, np.ndarray], p: EvaluateParams) -> dict:
    """One detector on labelled validation traffic (normal validation rows, then the held-out
    training attacks): F1 at its threshold, ROC-AUC, PR-AUC and recall at the fixed false-alarm
    rate."""
    y = np.r_[np.zeros(len(val["val"]), bool), np.ones(len(val["val_attacks"]), bool)]
    scores = np.concatenate([val["val"], val["val_attacks"]])
    flagged = scores > threshold_at(val["val"], p.evaluate.threshold_percentile)
    report = anomaly(y, scores, flagged)
    fixed = at_false_alarm_rate(y, val["val"], scores, p.evaluate.fixed_false_alarm_rate)
    keep = ("precision", "recall", "f1", "roc_auc", "pr_auc")
    return {k: report[k] for k in keep} | {"recall_at_fixed_false_alarm_rate": fixed["recall"]}


def validation(val_scores: dict[str, dict[str, np.ndarray]], p: EvaluateParams) -> dict | None:
    """Every detector on labelled validation traffic, and the one with the best F1 there: what
    a headline could be chosen on (the verdict stays with the headline named in params)."""
    split = next(iter(val_scores.values()))
    if len(split["val_attacks"]) == 0:
        logger.warning("no training attacks were held out: no labelled validation traffic")
        return None
    detectors = {name: validation_report(v, p) for name, v in val_scores.items()}
    best = max(detectors, key=lambda n: detectors[n]["f1"])
    if best != p.evaluate.headline:
        logger.warning(
            f"on labelled validation traffic {best} has a higher F1 ({detectors[best]['f1']:.3f}) "
            f"than the headline {p.evaluate.headline} "
            f"({detectors[p.evaluate.headline]['f1']:.3f}); the verdict stays with the headline"
        )
    rows = {"normal": len(split["val"]), "attacks": len(split["val_attacks"])}
    return {"rows": rows, "detectors": detectors, "best_f1": best}


def baseline_reports(
    p: EvaluateParams, y: np.ndarray, info: pd.DataFrame, unseen: np.ndarray, n_val: int
) -> tuple[dict, dict[str, np.ndarray]]:
    """Random scores (thresholded like a detector) and flag-everything on the test rows: their
    reports and alarms."""
    drawn = baselines.random_scores(p.seed, {"val": n_val, "test": len(y)})
    e = p.evaluate
    report, random_flags = judge(
        y, info, unseen, drawn["val"], drawn["test"], e.threshold_percentile,
        e.fixed_false_alarm_rate,
    )  # fmt: skip
    everything = baselines.flag_everything(len(y))
    flag_report = anomaly(y, everything.astype(float), everything)
    flag_report.update(
        threshold=None,
        at_fixed_false_alarm_rate=None,
        recall_per_category=recall_by(info["category"], y, everything),
        recall_unseen_attacks=1.0 if (y & unseen).any() else None,
    )
    reports = {baselines.RANDOM: report, baselines.FLAG_EVERYTHING: flag_report}
    return reports, {baselines.RANDOM: random_flags, baselines.FLAG_EVERYTHING: everything}


def collapse(y: np.ndarray, alarms: dict[str, np.ndarray]) -> tuple[np.ndarray, dict, np.ndarray]:
    """Test rows with the same label and the same alarm from every candidate, as one row each
    (at most 2 ** (candidates + 1) of them) and how many rows each stands for."""
    code = y.astype(np.int32)
    for bit, flags in enumerate(alarms.values(), start=1):
        code |= flags.astype(np.int32) << bit
    counts = np.bincount(code)
    patterns = np.flatnonzero(counts)
    columns = {name: (patterns >> bit) & 1 for bit, name in enumerate(alarms, start=1)}
    return patterns & 1, columns, counts[patterns]


def headline_verdict(p: EvaluateParams, y: np.ndarray, alarms: dict[str, np.ndarray]) -> dict:
    """The headline detector's F1 against the strongest of every other candidate (detectors and
    baselines), paired bootstrap over the test rows (collapsed: the same distribution, drawn as
    one multinomial)."""
    labels, patterns, counts = collapse(y, alarms)
    others = [name for name in alarms if name != p.evaluate.headline]
    result = compare(
        p.evaluate.headline, patterns, labels, f1_of_class(1), metric_name="f1",
        higher_is_better=True, baselines=others, seed=p.seed, weights=counts,
    )  # fmt: skip
    result["beats_baseline"] = result["verdict"] == "beats"
    return result


def write_predictions(
    path: Path, info: pd.DataFrame, scores: Path, alarms: dict, e: EvaluateParams
) -> None:
    """One CSV row per test row: its metadata, then every detector's score and alarm, written
    ``chunk_rows`` rows at a time."""
    writer = None
    for start, block in zip(range(0, len(info), e.chunk_rows), arrays.blocks(scores, e.chunk_rows)):
        part = info.iloc[start : start + len(block)].reset_index(drop=True)
        columns = {"row": np.arange(start, start + len(part))}
        columns |= {c: part[c] for c in part.columns}
        for j, name in enumerate(e.detectors):
            columns[f"score_{name}"] = block[:, j]
            columns[f"flag_{name}"] = alarms[name][start : start + len(part)].astype(np.int8)
        table = pa.Table.from_pandas(pd.DataFrame(columns), preserve_index=False)
        if writer is None:
            writer = pacsv.CSVWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()
    pa.default_memory_pool().release_unused()


def feature_set_study(
    p: EvaluateParams, paths: Paths, meta: dict, fit, val, y: np.ndarray
) -> list[dict]:
    """The study detectors per feature set: the same thresholds rule, on that set's columns."""
    rows = []
    test = paths.features / "test.npy"
    for feature_set in [s for s in p.evaluate.study_sets if meta["groups"].get(s)]:
        columns = meta["groups"][feature_set]
        scorers = fit_scorers(p.evaluate.study_detectors, p, paths, fit[:, columns])
        val_scores = collect(scorers, val, columns)
        parts = list(
            scored_blocks(scorers, arrays.blocks(test, p.evaluate.chunk_rows), columns, {})
        )
        test_scores = {n: np.concatenate([part[n] for part in parts]) for n in parts[0]}
        del parts
        for name in p.evaluate.study_detectors:
            threshold = threshold_at(val_scores[name], p.evaluate.threshold_percentile)
            m = anomaly(y, test_scores[name], test_scores[name] > threshold)
            keep = {k: m[k] for k in ("roc_auc", "pr_auc", "precision", "recall", "f1")}
            rows.append(
                {"feature_set": feature_set, "detector": name, "columns": len(columns), **keep}
            )
    return rows


def score_everything(p: EvaluateParams, paths: Paths, meta: dict, scratch: Path) -> dict:
    """Fit the detectors and score validation traffic (in memory) and test traffic (into
    ``scratch/scores.npy``, one column per detector in ``p.evaluate.detectors`` order)."""
    columns = meta["selected"]
    fit = np.load(paths.features / "fit.npy")
    began = time.perf_counter()
    scorers = fit_scorers(p.evaluate.detectors, p, paths, fit[:, columns])
    fit_seconds = time.perf_counter() - began
    use_threads(worker_threads(p))
    val = {
        split: collect(scorers, np.load(paths.features / f"{split}.npy"), columns)
        for split in ("val", "val_attacks")
    }
    test, names = paths.features / "test.npy", p.evaluate.detectors
    seconds = spill(scorers, names, test, p.evaluate.chunk_rows, columns, scratch / "scores.npy")
    n_test = arrays.shape(test)[0]
    return {
        "val": {n: {split: val[split][n] for split in val} for n in p.evaluate.detectors},
        "test": scratch / "scores.npy",
        "timing": {
            "rows": n_test,
            "threads": worker_threads(p),
            "fit_seconds": round(fit_seconds, 2),
            "seconds": {k: round(v, 2) for k, v in seconds.items()},
            "rows_per_sec": round(n_test / max(sum(seconds.values()), 1e-9)),
        },
        "about": {s.label: s.about for s in scorers if s.about},
        "fit": fit,
    }


def test_scores(scored: dict, name: str, p: EvaluateParams) -> np.ndarray:
    """One detector's scores of every test row, read from the scratch matrix."""
    return arrays.column(scored["test"], p.evaluate.detectors.index(name), p.evaluate.chunk_rows)


def judge_detectors(p: EvaluateParams, scored: dict, y, info, unseen) -> tuple[dict, dict]:
    """Every detector's report on the test rows and its alarms, one detector in memory at a
    time."""
    e, reports, alarms = p.evaluate, {}, {}
    for name in e.detectors:
        reports[name], alarms[name] = judge(
            y, info, unseen, scored["val"][name]["val"], test_scores(scored, name, p),
            e.threshold_percentile, e.fixed_false_alarm_rate,
        )  # fmt: skip
        m = reports[name]
        logger.info(
            f"{name}: F1 {m['f1']:.3f} (P {m['precision']:.3f}, R {m['recall']:.3f}), ROC-AUC "
            f"{m['roc_auc']:.3f}, PR-AUC {m['pr_auc']:.3f}, recall at "
            f"{e.fixed_false_alarm_rate:.0%} false alarms "
            f"{m['at_fixed_false_alarm_rate']['recall']:.3f}"
        )
    return reports, alarms


def evaluate(p: EvaluateParams, paths: Paths) -> None:
    return_freed_memory()
    meta = read_json(paths.features / "meta.json")
    info = read_test_rows(paths, meta["categorical"])
    y = info["is_attack"].to_numpy().astype(bool)
    unseen = ~info["attack"].isin(meta["train_attacks"]).to_numpy()
    headline = p.evaluate.headline
    with tempfile.TemporaryDirectory(prefix=".scores-", dir=paths.predictions.parent) as scratch:
        scored = score_everything(p, paths, meta, Path(scratch))
        detectors, alarms = judge_detectors(p, scored, y, info, unseen)
        base, base_alarms = baseline_reports(p, y, info, unseen, meta["rows"]["val"])
        result = headline_verdict(p, y, alarms | base_alarms)
        del base_alarms
        write_predictions(paths.predictions, info, scored["test"], alarms, p.evaluate)
        analysis = error_analysis(
            info, y, test_scores(scored, headline, p), alarms[headline], meta["categorical"],
            p.evaluate.top_false_alarms,
        )  # fmt: skip
    val = np.load(paths.features / "val.npy")
    study = feature_set_study(p, paths, meta, scored.pop("fit"), val, y)
    write_json(
        paths.metrics,
        {
            "source": meta["source"],
            "feature_set": meta["feature_set"],
            "fit_on": meta["fit_on"],
            "threshold_percentile": p.evaluate.threshold_percentile,
            "fixed_false_alarm_rate": p.evaluate.fixed_false_alarm_rate,
            "test": summarise_test(y, info, unseen),
            "detectors": detectors,
            "baselines": base,
            "headline": headline,
            "strongest_other": result["best_baseline"],
            "validation": validation(scored["val"], p),
            "analysis": analysis,
            "feature_sets": study,
            "scoring": scored["timing"] | scored["about"],
            "runtime": read_summary(paths)["runtime"],  # what trained the autoencoder
            "verdict": result,
        },
    )
    announce(result)


def summarise_test(y: np.ndarray, info: pd.DataFrame, unseen: np.ndarray) -> dict:
    return {
        "rows": int(len(y)),
        "attacks": int(y.sum()),
        "attack_share": float(y.mean()),
        "unseen_attack_rows": int((y & unseen).sum()),
        "unseen_attack_types": sorted(info.loc[y & unseen, "attack"].astype(str).unique().tolist()),
    }


if __name__ == "__main__":
    runner.main(evaluate, PROJECT)
