"""KDD Cup 1999 (10 %): a local kddcup.data_10_percent(.gz), or scikit-learn's fetch_kddcup99
(the UCI archive), split at random into train and test."""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ..project import DownloadParams
from .kdd import KDD_CATEGORICAL, KDD_GROUPS, kdd_file, kdd_layout
from .layout import TrafficData, clean_label, need, random_split


def read(params: DownloadParams, paths: Paths) -> TrafficData:
    download = params.download
    if not download.path:
        return _from_sklearn(params)
    path = need(Path(download.path), "kddcup.data_10_percent.gz or kddcup.data")
    chunks = lambda: kdd_file(path, download.chunk_rows, False)  # noqa: E731  (pandas reads .gz)
    return TrafficData(
        "kdd99",
        random_split(chunks, download.test_fraction, params.seed),
        KDD_CATEGORICAL,
        KDD_GROUPS,
        [path],
    )


def _from_sklearn(params: DownloadParams) -> TrafficData:
    from sklearn.datasets import fetch_kddcup99

    download = params.download
    subset = None if download.kdd99_subset == "full" else download.kdd99_subset
    try:
        bunch = fetch_kddcup99(subset=subset, percent10=True, as_frame=True)
    except OSError as e:
        raise UserError(
            f"fetch_kddcup99 could not download the data ({e}); go online, or set "
            "traffic.download.path to kddcup.data_10_percent.gz"
        ) from None
    frame = bunch.frame.rename(columns={"labels": "label"})
    features = tuple(c for c in frame.columns if c != "label")
    for column in features:
        if frame[column].dtype == object:  # categorical fields come back as bytes
            frame[column] = clean_label(frame[column])
    # http and smtp: only rows with logged_in > 0, already log-transformed by sklearn (log(x +
    # 0.1)).
    groups = {g: tuple(c for c in cols if c in features) for g, cols in KDD_GROUPS.items()}
    chunks = lambda: iter([kdd_layout(frame, features)])  # noqa: E731  (already in memory)
    logged = download.kdd99_subset in ("http", "smtp")
    return TrafficData(
        f"kdd99 (sklearn fetch_kddcup99, subset {download.kdd99_subset}, 10%)",
        random_split(chunks, download.test_fraction, params.seed),
        tuple(c for c in KDD_CATEGORICAL if c in features),
        {g: c for g, c in groups.items() if c},
        notes=[
            f"subset {download.kdd99_subset}"
            + (": sklearn already applied log(x + 0.1)" if logged else "")
        ],
    )


SOURCE = Source(
    "kdd99",
    ("path", "kdd99_subset", "test_fraction", "chunk_rows"),
    read,
    "KDD Cup 1999 10 %: a local file, or scikit-learn's fetch_kddcup99",
)
