"""Where traffic's data comes from: one module per source, each ending in a ``Source``
(pipeline/sources.py) whose ``read`` returns a ``TrafficData`` (layout.py): the chunks of each
split in the project's one layout. Adding a source is one module and one line below (and its name
in ``project.Source``)."""

from __future__ import annotations

from ...pipeline.sources import registry
from . import cic_ids2017, kdd99, local, nsl_kdd, offline, unsw_nb15

SOURCES = registry(
    offline.SOURCE,
    nsl_kdd.SOURCE,
    kdd99.SOURCE,
    unsw_nb15.SOURCE,
    cic_ids2017.SOURCE,
    local.SOURCE,
)
