"""The imdb download stage: movie reviews labelled negative/positive, from the configured source,
with the data card.

The configured source (``sources/``, one module each) gives train and test frames of (text, label)
with HTML line breaks cleaned (aclimdb adds each review's stars), plus card fields; the card
records the class order."""

from __future__ import annotations

from ..pipeline import runner
from ..pipeline.contract import Paths
from ..textclf import corpus
from .project import PROJECT, DownloadParams
from .sources import SOURCES
from .sources.labels import LABELS


def download(params: DownloadParams, paths: Paths) -> None:
    splits, card = SOURCES[params.download.source].read(params, paths)
    corpus.save_download(paths, splits, card, LABELS)


if __name__ == "__main__":
    runner.main(download, PROJECT)
