"""A tiny project's five stages, run by tests/test_report.py as dvc.yaml runs a stage module
(``python report_job.py <stage>``) in a scratch repository: its evaluate stage returns a Report
whose score follows ``toy.score``, with a time in its details."""

from __future__ import annotations

import sys

from xlalab.engine.settings import Params
from xlalab.pipeline import runner
from xlalab.pipeline.contract import STAGE_NAMES, Paths, Project
from xlalab.pipeline.report import Report


class ToyParams(Params):
    score: float


def download(p: ToyParams, paths: Paths) -> None:
    (paths.raw / "rows.txt").write_text("1\n2\n")


def featurize(p: ToyParams, paths: Paths) -> None:
    (paths.features / "rows.txt").write_text((paths.raw / "rows.txt").read_text())


def train(p: ToyParams, paths: Paths) -> None:
    (paths.model / "weights.txt").write_text("0.5\n")
    (paths.live / "metrics.json").write_text('{"loss": 0.1}\n')


def evaluate(p: ToyParams, paths: Paths) -> Report:
    paths.predictions.write_text("row,predicted\n1,1\n")
    verdict = {
        "model": "toy",
        "metric": "accuracy",
        "higher_is_better": True,
        "score": p.score,
        "interval": [p.score - 0.05, p.score + 0.05],
        "best_baseline": "majority",
        "baseline_score": 0.5,
        "baseline_interval": [0.45, 0.55],
        "difference": p.score - 0.5,
        "difference_interval": [p.score - 0.56, p.score - 0.44],
        "verdict": "beats",
        "baselines": {"majority": {"score": 0.5, "interval": [0.45, 0.55]}},
    }
    return Report.judged(
        verdict,
        test_rows=200,
        source="offline",
        runtime={"backend": "accelerate", "device_type": "cpu", "device_count": 1},
        details={"predict_seconds": 0.25, "per_class": {"a": {"recall": 0.9}}},
    )


def plot(p: ToyParams, paths: Paths) -> None:
    (paths.figures / "rows.json").write_text('[{"x": 1}]\n')


PROJECT = Project("toy", dict.fromkeys(STAGE_NAMES, ToyParams))

if __name__ == "__main__":
    runner.main(globals()[sys.argv.pop(1)], PROJECT)
