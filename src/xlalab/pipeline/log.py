"""What a stage prints: every message through ``logging`` in one format, ``-v``/``-q`` to see
more or less, and the verdict held back so that it is the last line of a stage's log.

Modules log through ``logging.getLogger(__name__)``: under the ``xlalab`` logger, or ``__main__``
for the stage module that ``python -m`` runs. ``setup`` gives the root logger the one handler
(stderr), so libraries' warnings come out in the same format. Progress bars (tqdm) write to
stderr beside it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator


class Format(logging.Formatter):
    """The one format: a progress line as it is, anything else led by its level in lower case
    (``warning: ...``, ``error: imdb download: ...``), so an error is one line that says so."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if record.levelno == logging.INFO else f"{record.levelname.lower()}: {text}"


LEVELS = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}  # -q, default, -v

logger = logging.getLogger("xlalab")
OURS = ("xlalab", "__main__")  # the loggers whose level -v/-q set; libraries stay at warnings


class _Stderr(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is when a message comes (as logging's own
    last-resort handler does), so a redirected stderr gets the lines too."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def setup(verbosity: int = 0) -> None:
    """Log to stderr: -1 warnings and errors only, 0 also progress, 1 debug. Processes other than
    the first of a launch would repeat its lines: they log errors only."""
    handler = _Stderr()
    handler.setFormatter(Format())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    level = LEVELS[max(-1, min(1, verbosity))] if is_main_process() else logging.ERROR
    for name in OURS:
        logging.getLogger(name).setLevel(level)


def is_main_process() -> bool:
    """False in every process but the first of a launch (``accelerate launch`` / torchrun set
    RANK, the global rank over all machines); True without a launcher."""
    return int(os.environ.get("RANK", "0")) == 0


_held_back: list[str] | None = None


def say_last(line: str) -> None:
    """Log ``line`` (a verdict), or, inside ``lines_said_last``, hold it back so that the runner
    logs it after the list of what the stage wrote: a stage's log ends with its verdict. With
    several processes every one reaches the same verdict; the first alone says it."""
    if not is_main_process():
        return
    if _held_back is None:
        logger.info(line)
    else:
        _held_back.append(line)


@contextlib.contextmanager
def lines_said_last() -> Iterator[list[str]]:
    global _held_back
    outer, _held_back = _held_back, []
    try:
        yield _held_back
    finally:
        _held_back = outer
