"""Where cifar10's images come from: one module per source, each ending in a ``Source``
(pipeline/sources.py) whose ``read`` returns a ``RawData`` (raw.py). Adding a source is one module
and one line below (and its name in ``project.Download.source``)."""

from __future__ import annotations

from ...pipeline.sources import registry
from . import folder, kaggle, local, offline, torchvision

SOURCES = registry(
    offline.SOURCE,
    torchvision.SOURCE,
    kaggle.SOURCE,
    local.SOURCE,
    folder.SOURCE,
)
