"""The reviews download stage: product or movie reviews in three classes, from the configured
source, with the data card.

The configured source (``sources/``, one module each) gives train and test frames of (text,
label); star ratings become classes through ``star_map`` in params (1-2 negative, 3 neutral, 4-5
positive by default)."""

from __future__ import annotations

from ..pipeline import runner
from ..pipeline.contract import Paths
from ..textclf import corpus
from .project import LABELS, PROJECT, DownloadParams
from .sources import SOURCES


def download(params: DownloadParams, paths: Paths) -> None:
    splits, card = SOURCES[params.download.source].read(params, paths)
    corpus.save_download(paths, splits, card, LABELS)


if __name__ == "__main__":
    runner.main(download, PROJECT)
