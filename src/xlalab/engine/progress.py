"""What a person watches while a model trains or predicts.

- ``EpochLog``: every epoch's row, written to DVCLive as soon as the epoch ends, into the folder the
  stage gives it (``plots/<project>/train`` itself, not a staging copy: pipeline/runner.py), so
  ``dvc plots show`` and the VS Code DVC extension draw the curves while training goes on.
- ``StepProgress``: progress through the batches of one pass (an epoch, a prediction). On a
  terminal, a tqdm bar. Without one (``dvc repro > log``, CI, a queued experiment), where a bar
  would switch itself off and a long epoch print nothing, a plain log line at most every
  ``PROGRESS_EVERY_S`` seconds: the epoch, the step, samples per second and the time left.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..errors import UserError
from ..files import is_timing, significant

logger = logging.getLogger(__name__)

PROGRESS_EVERY_S = 30.0
# Shortens the interval for a test that watches a stage's log; a person has no reason to set it
# and it changes no result, so it is not a param.
PROGRESS_EVERY_VARIABLE = "XLALAB_PROGRESS_EVERY_S"


class EpochLog:
    """Receives per-epoch rows and writes them to DVCLive on the main process. DVCLive's folder is
    git-tracked, so it gets what a re-run reproduces: values to REPORTED_DIGITS significant digits
    and no speeds (those stay in the history that summary.json keeps)."""

    def __init__(
        self, live_dir: Path | None, enabled: bool, replay: Sequence[dict[str, float]] = ()
    ):
        self.live = None
        if live_dir is not None and enabled:
            from dvclive import Live

            # dvcyaml=None: plots are declared in the root dvc.yaml. save_dvc_exp=False: the
            # pipeline, not the logger, decides what becomes an experiment.
            self.live = Live(str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None)
        for row in replay:  # a resumed run re-logs what the interrupted one had logged
            self.log(row)

    def log(self, row: dict[str, float]) -> None:
        if self.live is None:
            return
        self.live.step = int(row["epoch"])
        for key, value in row.items():
            if key != "epoch" and not is_timing(key):
                self.live.log_metric(key, significant(value))
        self.live.next_step()  # writes the row out now: the files grow epoch by epoch

    def close(self) -> None:
        if self.live is not None:
            self.live.end()


def progress_interval() -> float:
    """Seconds between two progress lines: ``PROGRESS_EVERY_S``, or the environment's
    ``XLALAB_PROGRESS_EVERY_S``."""
    raw = os.environ.get(PROGRESS_EVERY_VARIABLE)
    if raw is None:
        return PROGRESS_EVERY_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not seconds >= 0:
        raise UserError(
            f"{PROGRESS_EVERY_VARIABLE}={raw!r} is not a number of seconds; unset it (progress "
            f"every {PROGRESS_EVERY_S:g} s) or set one such as 10"
        )
    return seconds


class StepProgress:
    """Progress through the ``steps`` batches of one pass, each ``samples_per_step`` samples (all
    processes together), shown by the main process only (``shown``): a tqdm bar on a terminal,
    else a log line at most every ``interval`` seconds (``progress_interval()`` by default).
    ``epoch`` of ``epochs``: the pass is a training epoch, and the line also says about how long
    the epochs after it will take. ``terminal`` and ``clock`` are for tests (default: whether
    stderr is a terminal; ``time.monotonic``)."""

    def __init__(
        self,
        desc: str,
        steps: int,
        samples_per_step: int,
        *,
        shown: bool,
        epoch: int | None = None,
        epochs: int | None = None,
        interval: float | None = None,
        terminal: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.desc, self.steps, self.samples_per_step = desc, steps, samples_per_step
        self.epoch, self.epochs, self.clock = epoch, epochs, clock
        terminal = sys.stderr.isatty() if terminal is None else terminal
        self.bar = None
        if shown and terminal:
            title = f"{desc} {epoch}/{epochs}" if epoch is not None else desc
            self.bar = tqdm(
                total=steps, desc=title, leave=False, dynamic_ncols=True, file=sys.stderr
            )
        self.lines = shown and not terminal
        self.interval = math.inf  # no lines
        if self.lines:
            self.interval = progress_interval() if interval is None else interval
        self.started = self.last_line = clock()
        self.done = 0

    @property
    def shows_loss(self) -> bool:
        """Whether a running loss is shown (on the bar): reading it costs a host transfer."""
        return self.bar is not None

    def show_loss(self, batches: int) -> Callable[[torch.Tensor], None]:
        """What to call with the running loss sum of ``batches`` batches, once it is on the host."""
        bar = self.bar
        if bar is None:
            return lambda loss_sum: None
        return lambda loss_sum: bar.set_postfix(
            loss=f"{float(loss_sum) / batches:.4f}", refresh=False
        )

    def advance(self) -> None:
        """One more batch done."""
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        elif self.lines:
            now = self.clock()
            if now - self.last_line >= self.interval:
                self.last_line = now
                logger.info(self.line(now - self.started))

    def line(self, elapsed: float) -> str:
        """``<desc> epoch 2/8: step 120/313, 1,234 samples/s, 47 s left in this epoch, about
        6 min 10 s in all``."""
        where = f"{self.desc} epoch {self.epoch}/{self.epochs}" if self.epoch else self.desc
        said = f"{where}: step {self.done}/{self.steps}"
        if elapsed <= 0:
            return said
        steps_per_s = self.done / elapsed
        said += f", {steps_per_s * self.samples_per_step:,.0f} samples/s"
        left = (self.steps - self.done) / steps_per_s
        if self.epoch is None:
            return f"{said}, {duration(left)} left"
        epochs_after = (self.epochs or self.epoch) - self.epoch
        after = epochs_after * self.steps / steps_per_s  # evaluation not counted
        said += f", {duration(left)} left in this epoch"
        return f"{said}, about {duration(left + after)} in all" if after else said

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def duration(seconds: float) -> str:
    """``47 s``, ``6 min 10 s``, ``2 h 5 min``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
