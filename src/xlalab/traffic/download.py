"""The download stage: the configured source (``sources/``, one module each) read chunk by chunk
into ``paths.raw``: ``train.csv`` and ``test.csv`` in the project's one layout (sources/layout.py)
and ``card.json``: the source's files and digests, row counts, label mix, the values that became
missing and the rows left out, which columns are categorical and the feature groups.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from ..errors import UserError
from ..files import file_digest, write_json
from ..pipeline import runner
from ..pipeline.contract import Paths
from .project import PROJECT, DownloadParams
from .sources import SOURCES
from .sources.layout import META, TrafficData

logger = logging.getLogger(__name__)


# --- the stage --------------------------------------------------------------------------------
def write_split(split: str, chunks: Iterator[pd.DataFrame], out: Path, columns: list | None):
    """One split's chunks appended to ``out``; its counts (rows, attacks, labels, and the values
    featurize will fill) and the layout's columns (every chunk of every split must share the first
    chunk's)."""
    rows, attacks, mix = 0, 0, pd.Series(dtype=int)
    missing = pd.Series(dtype=int)
    with tqdm(desc=f"download {split}", unit=" rows", file=sys.stderr, disable=None) as bar:
        for chunk in chunks:
            if columns is None:
                columns = list(chunk.columns)
            elif list(chunk.columns) != columns:
                raise UserError(
                    f"{split} data has columns {list(chunk.columns)[:5]}..., unlike the first "
                    "file's; every file of a source must share one layout"
                )
            chunk.to_csv(out, mode="a", header=rows == 0, index=False)
            rows += len(chunk)
            attacks += int(chunk["is_attack"].sum())
            mix = mix.add(chunk["attack"].value_counts(), fill_value=0)
            features = chunk.drop(columns=list(META))
            missing = missing.add(features.isna().sum(), fill_value=0)
            bar.update(len(chunk))
    counts = {
        "rows": rows,
        "attacks": attacks,
        "normal": rows - attacks,
        "attack_share": attacks / rows if rows else 0.0,
        "labels": {str(k): int(v) for k, v in mix.sort_values(ascending=False).items()},
    }
    missing = missing[missing > 0]
    if len(missing):  # blanks, NaN and Infinity in the files: featurize fills them (median)
        counts["missing_values"] = {str(k): int(v) for k, v in missing.items()}
    return counts, columns


def _named(data: TrafficData) -> str:
    names = [f.name for f in data.files[:3]] + (["..."] if len(data.files) > 3 else [])
    return f"{data.name}" + (f" ({', '.join(names)})" if names else "")


def check_split(split: str, counts: dict, data: TrafficData) -> None:
    """A split the detectors can learn from (train) or be judged on (test): rows, normal traffic
    in training, attacks in both (training attacks are held out as labelled validation traffic)."""
    where = _named(data)
    if counts["rows"] == 0:
        raise UserError(
            f"the {split} split of {where} is empty; check the files hold rows (not a header "
            "alone) and traffic.download.test_fraction"
        )
    if split == "train" and counts["normal"] == 0:
        raise UserError(
            f"the training data of {where} holds no normal traffic, so there is nothing to learn "
            "'normal' from; check traffic.download.normal_value (local) or the source files"
        )
    if counts["attacks"] == 0:
        lost = (
            "no attack traffic can be held out for validation"
            if split == "train"
            else "recall cannot be measured"
        )
        raise UserError(
            f"the {split} data of {where} holds no attacks (all {counts['rows']} rows are "
            f"normal), so {lost}; "
            "add a file with attacks (e.g. another capture day) or check the labels"
        )


def card(source: TrafficData, columns: list[str], counts: dict[str, dict]) -> dict:
    """The data card: the source, its feature columns and groups, the counts, the files."""
    features = [c for c in columns if c not in META]
    groups = {g: [c for c in cols if c in features] for g, cols in source.groups.items()}
    groups = {g: cols for g, cols in groups.items() if cols}
    if groups:
        groups["traffic"] = groups.get("time", []) + groups.get("host", [])
    groups["all"] = features
    files = [
        {
            "name": f.name,
            "bytes": f.stat().st_size,
            "sha256": file_digest(f),
            **({"sha256_uncompressed": _gunzip_sha256(f)} if f.suffix == ".gz" else {}),
        }
        for f in source.files
    ]
    return {
        "source": source.name,
        "features": features,
        "categorical": list(source.categorical),
        "groups": groups,
        "has_time": source.has_time,
        "splits": counts,
        "files": files,
        "notes": source.notes,
        **({"dropped_rows": source.dropped} if source.dropped else {}),
    }


def download(params: DownloadParams, paths: Paths) -> None:
    data = SOURCES[params.download.source].read(params, paths)
    counts: dict[str, dict] = {}
    columns = None
    for split, chunks in data.splits.items():
        counts[split], columns = write_split(split, chunks(), paths.raw / f"{split}.csv", columns)
        check_split(split, counts[split], data)
    write_json(paths.card, card(data, columns, counts))
    logger.info(
        f"{data.name}: train {counts['train']['rows']} rows ({counts['train']['attacks']} "
        f"attacks), test {counts['test']['rows']} rows ({counts['test']['attacks']} attacks)"
    )


def _gunzip_sha256(path: Path) -> str:
    """The digest of the decompressed file: what the publisher's copy hashes to."""
    with gzip.open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


if __name__ == "__main__":
    runner.main(download, PROJECT)
