"""Where reviews' texts come from: one module per source, each ending in a ``Source``
(pipeline/sources.py) whose ``read`` returns the train and test frames of (text, label) and the
card's fields. Adding a source is one module and one line below (and its name in
``project.DownloadConfig.source``)."""

from __future__ import annotations

from ...pipeline.sources import registry
from . import huggingface, local, offline

SOURCES = registry(offline.SOURCE, huggingface.SOURCE, local.SOURCE)
