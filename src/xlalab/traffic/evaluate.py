"""The evaluate stage: every detector scored on the test traffic, beside its baselines, with the
verdict.

Each detector's settings are chosen on labelled validation traffic (the normal validation rows and
the attack types featurize held out whole; ``selection.py``), then every detector scores the test
traffic in one streamed pass (``chunk_rows`` rows at a time, so memory stays flat however long the
test file is); its alarm threshold is taken from the scores of NORMAL validation traffic only. The
verdict is about the headline detector named in params before the run
(``traffic.evaluate.headline``): its ROC-AUC against the strongest of the other detectors and of
the baselines (random scores, flag everything), with paired bootstrap intervals; F1 at the common
operating point is compared beside it (``analysis.py``). No setting, threshold, headline or row
kept depends on a test label: shuffling them changes the scores alone (tested).
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
from tqdm.auto import tqdm

from ..engine.runtime import make_backend
from ..files import read_json
from ..pipeline import runner
from ..pipeline.artifacts import load_trained, read_summary
from ..pipeline.contract import Paths
from ..pipeline.report import Report
from ..results.reports import announce
from . import arrays, baselines, selection
from .analysis import (
    anomaly,
    bootstrap_rows,
    error_analysis,
    judge,
    operating_point_verdict,
    rank_agreement,
    ranking_verdict,
    same_test_false_alarm_rate,
    test_card,
    threshold_at,
)
from .arrays import RowWriter
from .model import (
    Autoencoder,
    IsolationForestScores,
    NearestNeighbourDistance,
    TailProbabilities,
    reconstruction_errors,
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
    """The autoencoder the train stage chose on validation traffic, scoring rows by their
    reconstruction error."""
    state, entry = load_trained(paths, "autoencoder")
    model = Autoencoder(**entry["config"])
    model.load_state_dict(state)
    backend = make_backend(p.runtime)

    def score(x: np.ndarray) -> dict[str, np.ndarray]:
        return {"autoencoder": reconstruction_errors(model, x, backend, p.evaluate.batch_size)}

    return Scorer("autoencoder", ("autoencoder",), score, {})


def fit_scorers(
    names: list[str], p: EvaluateParams, paths: Paths, fit: np.ndarray, settings: dict
) -> list[Scorer]:
    """The scorers of ``names`` at their chosen ``settings``, fitted on ``fit`` (the rows the
    detectors learn from); the autoencoder was trained and chosen by the train stage."""
    e = p.evaluate
    wanted, scorers = set(names), []
    if "isolation_forest" in wanted:
        rows = settings["isolation_forest"]["max_samples"]
        forest = IsolationForestScores(fit, e.isolation_forest.n_estimators, rows, p.seed)
        scorers.append(Scorer("isolation_forest", ("isolation_forest",), forest, {}))
    if "autoencoder" in wanted:
        scorers.append(autoencoder_scorer(p, paths))
    tails = tuple(n for n in ("ecod", "copod") if n in wanted)
    if tails:
        both = TailProbabilities(fit)
        score = lambda x: {n: s for n, s in both(x).items() if n in tails}  # noqa: E731
        scorers.append(Scorer("+".join(tails), tails, score, {}))
    if "knn" in wanted:
        k = settings["knn"]["neighbours"]
        knn = NearestNeighbourDistance(fit, k, e.knn.lists, e.knn.probes, p.seed)
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


def verdicts(p: EvaluateParams, y: np.ndarray, scored: dict, base_scores: dict, alarms: dict):
    """The ROC-AUC verdict (on a seeded sample of ``bootstrap_rows`` test rows where there are
    more) and the F1 comparison at the common operating point."""
    e, n = p.evaluate, len(y)
    sample = bootstrap_rows(n, e.bootstrap_rows, p.seed)
    pick = (lambda v: v) if sample is None else (lambda v: v[sample])
    scores = {name: pick(test_scores(scored, name, p)) for name in e.detectors}
    scores |= {name: pick(v) for name, v in base_scores.items()}
    verdict = ranking_verdict(e.headline, scores, pick(y), p.seed, n)
    return verdict, operating_point_verdict(e.headline, y, alarms, p.seed)


def diagnostics(p: EvaluateParams, y: np.ndarray, scored: dict, reports: dict, val) -> dict:
    """What only the test labels can show, never used for a choice: every detector at the same
    TEST false-alarm rate, and whether the validation ranking carries over to the test."""
    rate = 1 - p.evaluate.threshold_percentile / 100
    same = {n: same_test_false_alarm_rate(y, test_scores(scored, n, p), rate) for n in reports}
    by_validation = {n: d["roc_auc"] for n, d in (val or {}).get("detectors", {}).items()}
    by_test = {n: r["roc_auc"] for n, r in reports.items()}
    return {
        "same_test_false_alarm_rate": {"rate": rate, "detectors": same},
        "validation_test_rank_correlation": rank_agreement(by_validation, by_test),
    }


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
    p: EvaluateParams, paths: Paths, meta: dict, fit, val, y: np.ndarray, settings: dict
) -> list[dict]:
    """The study detectors per feature set, at the settings chosen on all columns: the same
    thresholds rule, on that set's columns."""
    rows = []
    test = paths.features / "test.npy"
    for feature_set in [s for s in p.evaluate.study_sets if meta["groups"].get(s)]:
        columns = meta["groups"][feature_set]
        scorers = fit_scorers(p.evaluate.study_detectors, p, paths, fit[:, columns], settings)
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
    """Choose the detectors' settings on labelled validation traffic, fit them and score
    validation traffic (in memory) and test traffic (into ``scratch/scores.npy``, one column per
    detector in ``p.evaluate.detectors`` order)."""
    columns = meta["selected"]
    fit = np.load(paths.features / "fit.npy")
    use_threads(worker_threads(p))
    matrices = {s: np.load(paths.features / f"{s}.npy") for s in ("val", "val_attacks")}
    began = time.perf_counter()
    selected = {s: np.ascontiguousarray(m[:, columns]) for s, m in matrices.items()}
    settings, tried = selection.choose_settings(p, fit[:, columns], selected)
    tried |= selection.autoencoder_tried(read_summary(paths).get("autoencoder_choice"))
    scorers = fit_scorers(p.evaluate.detectors, p, paths, fit[:, columns], settings)
    fit_seconds = time.perf_counter() - began
    val = {split: collect(scorers, m, columns) for split, m in matrices.items()}
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
        "settings": settings,
        "validation": selection.validation(
            {n: {split: val[split][n] for split in val} for n in p.evaluate.detectors},
            tried,
            meta,
            p,
        ),
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


def evaluate(params: EvaluateParams, paths: Paths) -> Report:
    return_freed_memory()
    meta = read_json(paths.features / "meta.json")
    info = read_test_rows(paths, meta["categorical"])
    y = info["is_attack"].to_numpy().astype(bool)
    unseen = ~info["attack"].isin(meta["train_attacks"]).to_numpy()
    headline = params.evaluate.headline
    with tempfile.TemporaryDirectory(prefix=".scores-", dir=paths.predictions.parent) as scratch:
        scored = score_everything(params, paths, meta, Path(scratch))
        detectors, alarms = judge_detectors(params, scored, y, info, unseen)
        base, base_alarms, base_scores = baselines.reports(
            params, y, info, unseen, meta["rows"]["val"]
        )
        result, operating_point = verdicts(params, y, scored, base_scores, alarms | base_alarms)
        del base_alarms, base_scores
        checks = diagnostics(params, y, scored, detectors, scored["validation"])
        write_predictions(paths.predictions, info, scored["test"], alarms, params.evaluate)
        analysis = error_analysis(
            info, y, test_scores(scored, headline, params), alarms[headline], meta["categorical"],
            params.evaluate.top_false_alarms,
        )  # fmt: skip
    val = np.load(paths.features / "val.npy")
    study = feature_set_study(params, paths, meta, scored.pop("fit"), val, y, scored["settings"])
    announce(result)
    return Report.judged(
        result,
        test_rows=result["bootstrap"]["test_rows"],  # the sample the ROC-AUC verdict is drawn on
        source=meta["source"],
        runtime=read_summary(paths)["runtime"],  # what trained the autoencoder
        details={
            "source": meta["source"],
            "feature_set": meta["feature_set"],
            "fit_on": meta["fit_on"],
            "threshold_percentile": params.evaluate.threshold_percentile,
            "fixed_false_alarm_rate": params.evaluate.fixed_false_alarm_rate,
            "test": test_card(y, info, unseen, meta),
            "detectors": detectors,
            "baselines": base,
            "headline": headline,
            "strongest_other": result["best_baseline"],
            "validation": scored["validation"],
            "operating_point": operating_point,
            "diagnostics": checks,
            "analysis": analysis,
            "feature_sets": study,
            "scoring": scored["timing"] | scored["about"],
            "runtime": read_summary(paths)["runtime"],
        },
    )


if __name__ == "__main__":
    runner.main(evaluate, PROJECT)
