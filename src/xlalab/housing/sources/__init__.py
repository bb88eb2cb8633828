"""Where housing's files come from: one module per source, each ending in a ``Source``
(pipeline/sources.py) whose ``read`` returns the bytes of train.csv and test.csv (None when the
source has none) and where they came from; download.py checks them. Adding a source is one module
and one line below (and its name in ``project.Download.source``)."""

from __future__ import annotations

from ...pipeline.sources import registry
from . import kaggle, local, offline

SOURCES = registry(offline.SOURCE, kaggle.SOURCE, local.SOURCE)
