"""CIC-IDS2017 as published: one CSV per capture day, from MachineLearningCSV.zip
(MachineLearningCVE, 79 columns) or GeneratedLabelledFlows.zip (TrafficLabelling, 85: identifiers
and timestamps too); a folder of them or one file, split at random."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from ...errors import UserError
from ...pipeline.contract import Paths
from ...pipeline.sources import Source, header_row
from ..project import DownloadParams
from .layout import FIX, TrafficData, layout, need, numeric_features, random_split, read_chunks

CIC_IDENTIFIERS = ("Flow ID", "Source IP", "Source Port", "Destination IP", "Timestamp")
CIC_NORMAL = "BENIGN"
# The "Web Attack – Brute Force" dash appears as cp1252 0x96, U+FFFD or an en dash depending on the
# copy.
# Files are read as latin-1: TrafficLabelling's 0x96 arrives as "\x96", MachineLearningCVE's U+FFFD
# (UTF-8
# bytes EF BF BD) as "ï¿½".
CIC_DASHES = ("\x96", "\ufffd", "\u2013", "\u00e2\u20ac\u201c", "\u00ef\u00bf\u00bd")
# Timestamps are day first on a 12-hour clock without AM/PM ("7/7/2017 3:30" is 15:30); the captures
# ran
# from just before 9:00 to about 17:00, so hours 1 to 7 are afternoon.
CIC_PM_BEFORE = 8

# "Fwd Header Length" is published twice (an exact copy); pandas names the second ".1".
CIC_REPEATED = ("Fwd Header Length",)


def _cic_frame(chunk: pd.DataFrame, path: Path, line: int) -> tuple[pd.DataFrame, int]:
    """One chunk in the layout, and how many of its rows had no label (dropped)."""
    # Header names carry leading spaces and, in some copies, a byte-order mark.
    chunk.columns = [str(c).replace("\ufeff", "").replace("ï»¿", "").strip() for c in chunk.columns]
    chunk = chunk.drop(columns=[c for c in chunk.columns if c == "Fwd Header Length.1"])
    if "Label" not in chunk.columns:
        raise UserError(f"{path} has no ' Label' column; is it a CIC-IDS2017 CSV?")
    labelled = chunk["Label"].notna().to_numpy()
    chunk = chunk[labelled]  # some day files end with rows of empty fields
    label = chunk["Label"].astype(str).str.strip()
    for dash in CIC_DASHES:
        label = label.str.replace(dash, "-", regex=False)
    time = None
    if "Timestamp" in chunk.columns:
        stamps = pd.to_datetime(
            chunk["Timestamp"].astype(str).str.strip(),
            dayfirst=True,
            format="mixed",
            errors="coerce",
        )
        stamps = stamps + pd.to_timedelta(
            (stamps.dt.hour < CIC_PM_BEFORE).astype(int) * 12, unit="h"
        )
        time = (stamps - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)
    features = chunk.drop(columns=[c for c in (*CIC_IDENTIFIERS, "Label") if c in chunk.columns])
    features = numeric_features(features, list(features.columns), path, line)
    return layout(features, label, label, label != CIC_NORMAL, time), int((~labelled).sum())


def read(params: DownloadParams, paths: Paths) -> TrafficData:
    download = params.download
    folder = need(Path(download.path), "a CIC-IDS2017 CSV or the folder of per-day CSVs")
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else [folder]
    if not files:
        raise UserError(
            f"{folder} has no .csv files; unzip MachineLearningCSV.zip or "
            "GeneratedLabelledFlows.zip"
        )
    header = header_row(files[0], FIX, CIC_REPEATED, encoding="latin-1")
    has_time = "Timestamp" in header
    data = TrafficData(
        f"cic_ids2017 ({'TrafficLabelling' if has_time else 'MachineLearningCVE'})",
        {},
        ("Protocol",) if has_time else (),
        {},
        files,
        has_time=has_time,
        notes=["Infinity and NaN in Flow Bytes/s and Flow Packets/s become missing values"],
    )

    def chunks() -> Iterator[pd.DataFrame]:
        for path in files:
            header_row(path, FIX, CIC_REPEATED, encoding="latin-1")
            line, unlabelled = 2, 0
            for chunk in read_chunks(
                path, download.chunk_rows, encoding="latin-1", skipinitialspace=True
            ):
                frame, dropped = _cic_frame(chunk, path, line)
                line, unlabelled = line + len(chunk), unlabelled + dropped
                yield frame
            if unlabelled:  # set, not added: both sides of the split read every file
                data.dropped[f"{path.name}: rows without a label"] = unlabelled

    data.splits = random_split(chunks, download.test_fraction, params.seed)
    return data


SOURCE = Source(
    "cic_ids2017",
    ("path", "test_fraction", "chunk_rows"),
    read,
    "CIC-IDS2017's per-day CSVs (MachineLearningCVE or TrafficLabelling)",
)
