"""Progress without a terminal: where a tqdm bar would switch itself off (output redirected to a
file, CI, a queued experiment), training says where it is in a plain line at most every 30 s, so a
long epoch is never silent; on a terminal the bar stays."""

from __future__ import annotations

import copy
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xlalab.engine.progress import (
    PROGRESS_EVERY_S,
    PROGRESS_EVERY_VARIABLE,
    StepProgress,
    duration,
    progress_interval,
)
from xlalab.errors import UserError
from xlalab.pipeline.runner import run_stage

ROOT = Path(__file__).resolve().parents[1]


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "xlalab.engine.progress"]


def test_without_a_terminal_a_line_comes_every_30_s_with_step_speed_and_time_left(caplog):
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="xlalab.engine.progress")
    # an epoch of 300 steps of 128 samples, half a second each: 150 s, of 3 epochs
    progress = StepProgress(
        "cifar10", 300, 128, shown=True, epoch=1, epochs=3, terminal=False, clock=clock
    )
    said_at = []
    for _ in range(300):
        clock.now += 0.5
        before = len(lines_of(caplog))
        progress.advance()
        if len(lines_of(caplog)) > before:
            said_at.append(clock.now - 1000.0)
    progress.close()
    assert said_at == [30.0, 60.0, 90.0, 120.0, 150.0]  # the first within 60 s of the start
    assert lines_of(caplog)[0] == (
        "cifar10 epoch 1/3: step 60/300, 256 samples/s, 2 min 0 s left in this epoch, "
        "about 7 min 0 s in all"
    )
    assert lines_of(caplog)[-1].endswith("step 300/300, 256 samples/s, 0 s left in this epoch, "
                                         "about 5 min 0 s in all")  # fmt: skip


def test_the_last_epoch_and_a_prediction_say_only_what_is_left_of_them(caplog):
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="xlalab.engine.progress")
    last_epoch = StepProgress("lstm", 4, 10, shown=True, epoch=2, epochs=2, terminal=False,
                              interval=0, clock=clock)  # fmt: skip
    prediction = StepProgress("embed", 4, 10, shown=True, terminal=False, interval=0, clock=clock)
    for progress in (last_epoch, prediction):
        clock.now += 2.0
        progress.advance()
    assert lines_of(caplog) == [
        "lstm epoch 2/2: step 1/4, 5 samples/s, 6 s left in this epoch",
        "embed: step 1/4, 2 samples/s, 12 s left",
    ]


def test_on_a_terminal_the_bar_shows_and_no_line_is_logged(caplog):
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="xlalab.engine.progress")
    progress = StepProgress("x", 100, 8, shown=True, epoch=1, epochs=1, terminal=True, clock=clock)
    for _ in range(100):
        clock.now += 1.0
        progress.advance()
    assert progress.shows_loss and progress.bar.n == 100
    progress.close()
    assert lines_of(caplog) == []


def test_other_processes_show_nothing(caplog):
    caplog.set_level(logging.INFO, logger="xlalab.engine.progress")
    for terminal in (True, False):
        progress = StepProgress("x", 3, 8, shown=False, terminal=terminal, interval=0)
        for _ in range(3):
            progress.advance()
        assert progress.bar is None
    assert lines_of(caplog) == []


def test_the_interval_is_30_s_unless_the_environment_says_otherwise(monkeypatch):
    monkeypatch.delenv(PROGRESS_EVERY_VARIABLE, raising=False)
    assert progress_interval() == PROGRESS_EVERY_S == 30.0
    monkeypatch.setenv(PROGRESS_EVERY_VARIABLE, "2.5")
    assert progress_interval() == 2.5
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv(PROGRESS_EVERY_VARIABLE, bad)
        with pytest.raises(UserError, match=f"{PROGRESS_EVERY_VARIABLE}=.* is not a number"):
            progress_interval()


def test_durations_read_as_a_person_says_them():
    assert [duration(s) for s in (0.4, 47, 59.6, 370, 3599, 7500)] == [
        "0 s", "47 s", "1 min 0 s", "6 min 10 s", "59 min 59 s", "2 h 5 min",
    ]  # fmt: skip


def test_cifar10_train_with_output_to_a_file_prints_progress_lines_in_its_first_epoch(tmp_path):
    """The real stage, its output redirected to a file as `dvc repro > log` does, the interval
    shortened from 30 s to none (the 30 s themselves: the fake-clock test above)."""
    from test_cifar10_pipeline import SMALL  # a small slice of the offline data, 2 epochs

    params = copy.deepcopy(SMALL)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        for stage in ("download", "featurize"):
            run_stage("cifar10", stage, copy.deepcopy(params))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), PROGRESS_EVERY_VARIABLE: "0"}
    log = tmp_path / "train.log"
    with log.open("w") as out:
        done = subprocess.run(
            [sys.executable, "-m", "xlalab.cifar10.train"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
    text = log.read_text()
    assert done.returncode == 0, text[-3000:]
    progress = re.compile(
        r"epoch 1/2: step (\d+)/(\d+), [\d,]+ samples/s, \d+ (s|min \d+ s) left in this epoch, "
        r"about .+ in all$",
        re.M,
    )
    first = progress.search(text)
    assert first, text[-3000:]
    assert first.group(1) == "1"
    epoch_end = re.search(r"epoch 1/2  train/loss", text)
    assert epoch_end and first.start() < epoch_end.start()
    assert "\r" not in text  # no bar drawn into the file
