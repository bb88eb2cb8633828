"""Where lstm's daily prices come from: one module per source, each ending in a ``Source``
(pipeline/sources.py) whose ``read`` returns ``Prices`` (yahoo.py) in Yahoo's layout. Adding a
source is one module and one line below (and its name in ``project.Source``)."""

from __future__ import annotations

from ...pipeline.sources import registry
from . import local, offline, yfinance

SOURCES = registry(offline.SOURCE, yfinance.SOURCE, local.SOURCE)
