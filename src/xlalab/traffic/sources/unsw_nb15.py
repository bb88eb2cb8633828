"""UNSW-NB15 as published: the training/testing partition (UNSW_NB15_training-set.csv and
UNSW_NB15_testing-set.csv, with a header), or the raw UNSW-NB15_1..4.csv files (no header, start
times), split at random."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from ...errors import UserError
from ...pipeline.contract import Paths
from ...pipeline.sources import Source, header_row
from ..project import DownloadParams
from .layout import (
    FIX,
    TrafficData,
    check_fields,
    layout,
    need,
    numeric_features,
    random_split,
    read_chunks,
)

# UNSW-NB15's training/testing partition (header row; note the published files are named the
# other way round from their sizes: the "training" file has 175,341 rows, "testing" 82,332).
UNSW_PARTITION = ("UNSW_NB15_training-set.csv", "UNSW_NB15_testing-set.csv")
# The raw UNSW-NB15_1..4.csv files: no header, these 49 columns (NUSW-NB15_features.csv).
UNSW_RAW_COLUMNS = (
    "srcip",
    "sport",
    "dstip",
    "dsport",
    "proto",
    "state",
    "dur",
    "sbytes",
    "dbytes",
    "sttl",
    "dttl",
    "sloss",
    "dloss",
    "service",
    "Sload",
    "Dload",
    "Spkts",
    "Dpkts",
    "swin",
    "dwin",
    "stcpb",
    "dtcpb",
    "smeansz",
    "dmeansz",
    "trans_depth",
    "res_bdy_len",
    "Sjit",
    "Djit",
    "Stime",
    "Ltime",
    "Sintpkt",
    "Dintpkt",
    "tcprtt",
    "synack",
    "ackdat",
    "is_sm_ips_ports",
    "ct_state_ttl",
    "ct_flw_http_mthd",
    "is_ftp_login",
    "ct_ftp_cmd",
    "ct_srv_src",
    "ct_srv_dst",
    "ct_dst_ltm",
    "ct_src_ltm",
    "ct_src_dport_ltm",
    "ct_dst_sport_ltm",
    "ct_dst_src_ltm",
    "attack_cat",
    "Label",
)
UNSW_RAW_FILES = tuple(f"UNSW-NB15_{i}.csv" for i in range(1, 5))
UNSW_CATEGORICAL = ("proto", "service", "state")
UNSW_IDENTIFIERS = ("id", "srcip", "sport", "dstip", "dsport", "Stime", "Ltime")  # never features
# attack_cat spellings in circulation -> one name
UNSW_CATEGORY_SPELLING = {"backdoors": "Backdoor", "backdoor": "Backdoor"}


def _unsw_layout(
    chunk: pd.DataFrame, label: str, time: pd.Series | None, path: Path, line: int
) -> pd.DataFrame:
    category = chunk["attack_cat"].fillna("").astype(str).str.strip()
    is_attack = pd.to_numeric(chunk[label], errors="coerce").fillna(0).astype(int) == 1
    category = category.map(lambda c: UNSW_CATEGORY_SPELLING.get(c.lower(), c))
    category = category.where(is_attack, "Normal").replace("", "unknown")
    features = chunk.drop(
        columns=[c for c in (*UNSW_IDENTIFIERS, "attack_cat", label) if c in chunk]
    )
    # blanks (" ") occur in ct_ftp_cmd and friends: missing values
    numeric = [c for c in features.columns if c not in UNSW_CATEGORICAL]
    features = numeric_features(features, numeric, path, line)
    return layout(features, category, category, is_attack, time)


def _partition(folder: Path, download) -> TrafficData:
    def part(name: str) -> Iterator[pd.DataFrame]:
        path = folder / name
        columns = header_row(path, FIX)
        missing = {"attack_cat", "label"} - set(columns)
        if missing:
            raise UserError(
                f"{path} has no column {sorted(missing)[0]!r}; is it the UNSW-NB15 "
                "training/testing CSV?"
            )
        line = 2
        for chunk in read_chunks(
            path, download.chunk_rows, dtype={c: str for c in UNSW_CATEGORICAL}
        ):
            chunk.columns = chunk.columns.str.strip()
            yield _unsw_layout(chunk, "label", None, path, line)
            line += len(chunk)

    return TrafficData(
        "unsw_nb15 (training/testing partition)",
        {"train": lambda: part(UNSW_PARTITION[0]), "test": lambda: part(UNSW_PARTITION[1])},
        UNSW_CATEGORICAL,
        {},
        [folder / f for f in UNSW_PARTITION],
        notes=["the partition has no start times: record order"],
    )


def _raw_files(raw: list[Path], download, seed: int) -> TrafficData:
    def chunks() -> Iterator[pd.DataFrame]:
        for path in raw:
            line = 1
            for chunk in read_chunks(
                path,
                download.chunk_rows,
                header=None,
                encoding="latin-1",
                dtype={1: str, 3: str, 4: str, 5: str, 13: str, 47: str},
            ):
                # Label (last) is always set: a short line leaves it empty
                check_fields(chunk, len(UNSW_RAW_COLUMNS), path, line)
                chunk.columns = UNSW_RAW_COLUMNS
                stime = pd.to_numeric(chunk["Stime"], errors="coerce")
                yield _unsw_layout(chunk, "Label", stime, path, line)
                line += len(chunk)

    return TrafficData(
        "unsw_nb15 (raw UNSW-NB15_1..4.csv)",
        random_split(chunks, download.test_fraction, seed),
        UNSW_CATEGORICAL,
        {},
        raw,
        has_time=True,
    )


def read(params: DownloadParams, paths: Paths) -> TrafficData:
    download = params.download
    folder = need(Path(download.path), "the UNSW-NB15 folder")
    if all((folder / f).exists() for f in UNSW_PARTITION):
        return _partition(folder, download)
    raw = [folder / f for f in UNSW_RAW_FILES if (folder / f).exists()]
    if not raw:
        raise UserError(
            f"{folder} holds neither {' and '.join(UNSW_PARTITION)} nor UNSW-NB15_1..4.csv"
        )
    return _raw_files(raw, download, params.seed)


SOURCE = Source(
    "unsw_nb15",
    ("path", "test_fraction", "chunk_rows"),
    read,
    "UNSW-NB15: the training/testing partition, or the raw UNSW-NB15_1..4.csv",
)
