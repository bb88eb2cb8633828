"""The reviews download stage: the configured source (``sources/``, one module each) gives train
and test frames of (text, label) in 3 classes (star ratings become classes through ``star_map`` in
params: 1-2 negative, 3 neutral, 4-5 positive by default), plus card fields; the stage writes them
with the data card."""

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
