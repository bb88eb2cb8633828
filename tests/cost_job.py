"""A tiny project's download stage, run as a command by tests/test_cost.py in a scratch directory
(``python cost_job.py``, as dvc.yaml runs a stage module): it holds ``toy.megabytes`` of memory,
sleeps ``toy.sleep`` seconds, and fails with ``toy.fail``."""

from __future__ import annotations

import time

import numpy as np

from xlalab.engine.settings import Params
from xlalab.errors import UserError
from xlalab.pipeline import runner
from xlalab.pipeline.contract import STAGE_NAMES, Paths, Project


class DownloadParams(Params):
    megabytes: int
    sleep: float
    fail: bool


def download(params: DownloadParams, paths: Paths) -> None:
    block = np.ones(params.megabytes * 1_000_000, dtype=np.uint8)  # written, so resident
    time.sleep(params.sleep)
    if params.fail:
        raise UserError("the source went away half-way; try again")
    (paths.raw / "rows.txt").write_text(f"{int(block.sum())}\n")


PROJECT = Project("toy", dict.fromkeys(STAGE_NAMES, DownloadParams))

if __name__ == "__main__":
    runner.main(download, PROJECT)
