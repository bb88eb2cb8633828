"""What every evaluate stage hands back: one ``Report``, the same fields in every project.

The runner writes it as two git-tracked files and one cached one:

* ``metrics/<project>.json`` (``Report.metrics``), the DVC metric: the dozen values a person
  compares across experiments, under the same keys in every project, so that ``dvc metrics
  show``, ``dvc metrics diff`` and ``dvc exp show`` line the six projects up key by key. First the
  verdict in a sentence (``summary``: ``lstm 0.43 vs arima 0.43, mae ↓: -0.0001 [-0.0045, 0.0046]
  ties``), one column that ``dvc exp show --only-changed`` keeps whenever a score moves (it drops
  the baseline's name and the verdict when they stay the same) and shows first; then the headline
  model, its metric and which way is better, its score with a 95 % interval, the strongest
  baseline and its score with an interval, their paired difference with an interval, the verdict,
  the test rows, how many warnings, the data source and what trained the model. No lists (DVC
  leaves them out of ``dvc exp show``): an interval is two keys, ``<name>_low`` and
  ``<name>_high``. The keys are short on purpose: ``dvc exp show`` prefixes a key that several
  metrics files share with the file's path (``metrics/lstm.json:diff``).
* ``reports/<project>/details.json`` (``Paths.details``), not a metric: everything else the stage
  found (every baseline's score and interval, per-class tables, confusion matrices, cleaning
  counts, Diebold-Mariano tests, the warnings in words), which the results page, ``xlalab
  summary`` and the docs read.
* ``timing/<project>.json`` (``Paths.timing``): the times and speeds taken out of the details
  (``files.split_timing``); cached by DVC, kept out of git, so a re-run leaves git as committed.

Every number in the git-tracked two keeps ``files.REPORTED_DIGITS`` significant digits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..files import REPORTED_DIGITS, significant, split_timing, write_json
from ..numbers import decimals, fixed, metric_name, with_interval

VERDICTS = ("beats", "ties", "loses")
# The keys of metrics/<project>.json, in the order they are written; tests/test_report.py holds
# every project to them.
METRIC_KEYS = (
    "summary",
    "model",
    "metric",
    "better",
    "score",
    "score_low",
    "score_high",
    "baseline",
    "baseline_score",
    "baseline_low",
    "baseline_high",
    "diff",
    "diff_low",
    "diff_high",
    "verdict",
    "test_rows",
    "warnings",
    "source",
    "trained_on",
)
MAX_NUMBERS = 15  # numeric values per metrics file at most: what `dvc exp show` can line up


@dataclasses.dataclass(frozen=True)
class Report:
    """An evaluate stage's result. ``Report.judged`` builds it from a verdict of
    ``results.evidence.compare``; ``details`` holds the rest of what the stage found."""

    model: str  # the headline model
    metric: str  # the headline metric's name (``accuracy``, ``RMSE(log)``)
    higher_is_better: bool
    score: float
    score_interval: tuple[float, float]  # 95 % bootstrap interval over the test rows
    baseline: str  # the strongest baseline on these test rows
    baseline_score: float
    baseline_interval: tuple[float, float]
    difference: float  # model - baseline
    difference_interval: tuple[float, float]  # paired: the same resamples for both
    verdict: str  # beats, ties or loses (results.evidence.outcome)
    test_rows: int
    source: str  # where the data came from (the data card's source)
    trained_on: str  # the backend and devices that trained the model (``trained_on``)
    warnings: tuple[str, ...] = ()  # what makes these numbers less trustworthy, in words
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"a verdict is one of {VERDICTS}, not {self.verdict!r}")

    @classmethod
    def judged(
        cls,
        verdict: Mapping[str, Any],
        *,
        test_rows: int,
        source: str,
        runtime: Mapping[str, Any] | None,
        warnings: Sequence[str] = (),
        details: Mapping[str, Any] | None = None,
    ) -> Report:
        """The report of ``verdict`` (``evidence.compare``'s result, kept whole in the details
        with every baseline's score): ``runtime`` is what trained the model (``Backend.describe``
        or a training summary's ``runtime``)."""
        return cls(
            model=str(verdict["model"]),
            metric=str(verdict["metric"]),
            higher_is_better=bool(verdict["higher_is_better"]),
            score=float(verdict["score"]),
            score_interval=_pair(verdict["interval"]),
            baseline=str(verdict["best_baseline"]),
            baseline_score=float(verdict["baseline_score"]),
            baseline_interval=_pair(verdict["baseline_interval"]),
            difference=float(verdict["difference"]),
            difference_interval=_pair(verdict["difference_interval"]),
            verdict=str(verdict["verdict"]),
            test_rows=int(test_rows),
            source=str(source),
            trained_on=trained_on(runtime),
            warnings=tuple(str(w) for w in warnings),
            details={"verdict": dict(verdict), **(details or {})},
        )

    def metrics(self) -> dict[str, Any]:
        """``metrics/<project>.json``: METRIC_KEYS, in that order."""
        values = {
            "model": self.model,
            "metric": self.metric,
            "better": "higher" if self.higher_is_better else "lower",
            "score": self.score,
            "score_low": self.score_interval[0],
            "score_high": self.score_interval[1],
            "baseline": self.baseline,
            "baseline_score": self.baseline_score,
            "baseline_low": self.baseline_interval[0],
            "baseline_high": self.baseline_interval[1],
            "diff": self.difference,
            "diff_low": self.difference_interval[0],
            "diff_high": self.difference_interval[1],
            "verdict": self.verdict,
            "test_rows": self.test_rows,
            "warnings": len(self.warnings),
            "source": self.source,
            "trained_on": self.trained_on,
        }
        return {"summary": summary(values), **values}

    def details_record(self) -> dict[str, Any]:
        """``reports/<project>/details.json`` before its timings leave: the warnings in words,
        the whole verdict, then the rest of the details."""
        return {"warnings": list(self.warnings), **self.details}


def summary(headline: Mapping[str, Any]) -> str:
    """The verdict in a sentence, from a headline's numbers as the metrics file keeps them, each
    with the decimals its interval supports (numbers.py): ``efficientnet_lite0_last2 0.981 vs
    svm_rbf 0.957, accuracy ↑: +0.024 [0.010, 0.037] beats``."""

    def kept(key: str) -> float:
        return significant(float(headline[key]), REPORTED_DIGITS)

    def score(key: str, low: str, high: str) -> str:
        return fixed(kept(key), decimals(kept(high) - kept(low)))

    difference = with_interval(kept("diff"), (kept("diff_low"), kept("diff_high")), sign=True)
    return (
        f"{headline['model']} {score('score', 'score_low', 'score_high')} vs "
        f"{headline['baseline']} {score('baseline_score', 'baseline_low', 'baseline_high')}, "
        f"{metric_name(headline['metric'], headline['better'])}: {difference} "
        f"{headline['verdict']}"
    )


def _pair(values: Sequence[float]) -> tuple[float, float]:
    low, high = values
    return float(low), float(high)


def trained_on(runtime: Mapping[str, Any] | None) -> str:
    """``accelerate, 1 cpu``; ``accelerate, 2 cpu, 2 processes``; ``xla, 4 tpu (spmd)``;
    ``accelerate, 1 cuda, fp16`` (mixed precision is named; float32 is not)."""
    if not runtime:
        return "-"
    text = (
        f"{runtime['backend']}, {runtime.get('device_count', 1)} {runtime.get('device_type', '?')}"
    )
    if runtime.get("processes", 1) > 1:
        text += f", {runtime['processes']} processes"
    if runtime.get("spmd"):
        text += " (spmd)"
    if runtime.get("precision", "no") != "no":
        text += f", {runtime['precision']}"
    return text


def publish(report: Any, metrics: Path, details: Path, timing: Path, stage: str) -> None:
    """Write what an evaluate stage returned: its metrics and its details rounded to
    REPORTED_DIGITS, the details' times and speeds into ``timing``. So a re-run of the same
    code and params leaves the git-tracked files as committed."""
    if not isinstance(report, Report):
        raise RuntimeError(
            f"{stage} returned {type(report).__name__}, not a pipeline.report.Report: an evaluate "
            "stage returns its result and the runner writes it"
        )
    kept, times = split_timing(report.details_record())
    write_json(metrics, report.metrics(), digits=REPORTED_DIGITS)
    write_json(details, kept, digits=REPORTED_DIGITS)
    write_json(timing, times or {}, digits=3)


def headline(metrics: Mapping[str, Any]) -> dict[str, Any] | None:
    """A metrics file's headline in this module's layout (METRIC_KEYS), from this layout or from
    the one before it (a ``verdict`` object, as ``evidence.compare`` returns it: experiments run
    before the change); None when it has neither."""
    if isinstance(metrics.get("verdict"), str) and "score" in metrics:
        return dict(metrics)
    v = metrics.get("verdict")
    if not isinstance(v, Mapping) or "difference_interval" not in v:
        return None
    values = {
        "model": v["model"],
        "metric": v["metric"],
        "better": "higher" if v["higher_is_better"] else "lower",
        "score": v["score"],
        "score_low": v["interval"][0],
        "score_high": v["interval"][1],
        "baseline": v["best_baseline"],
        "baseline_score": v["baseline_score"],
        "baseline_low": v["baseline_interval"][0],
        "baseline_high": v["baseline_interval"][1],
        "diff": v["difference"],
        "diff_low": v["difference_interval"][0],
        "diff_high": v["difference_interval"][1],
        "verdict": v["verdict"],
        "test_rows": metrics.get("test_rows"),
        "warnings": len(metrics.get("warnings") or []),
        "source": (metrics.get("data") or {}).get("source") or metrics.get("source") or "-",
        "trained_on": trained_on(metrics.get("runtime")),
    }
    return {"summary": summary(values), **values}
