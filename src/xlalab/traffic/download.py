"""The download stage: connectors to each traffic source, all written to one layout.

Every connector streams its source in chunks and yields them in the project's layout: the
source's feature columns, then ``attack`` (the label as published, cleaned: no trailing dot, no
padding), ``category`` (DoS/Probe/R2L/U2R for KDD data, ``attack_cat`` for UNSW-NB15, the label for
CIC-IDS2017), ``is_attack`` (0/1) and ``time`` (epoch seconds, empty where the source has none).
``paths.raw`` gets ``train.csv`` and ``test.csv`` in that layout and ``card.json``: the source's
files and digests, row counts, label mix, which columns are categorical and the feature groups.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..errors import UserError
from ..files import file_digest, write_json
from ..pipeline import runner
from ..pipeline.contract import Paths
from .project import PROJECT, Download, DownloadParams

logger = logging.getLogger(__name__)

OFFLINE_DIR = Path(__file__).parent / "nsl_kdd"
OFFLINE_FILES = {"train": "KDDTrain+_20Percent.txt.gz", "test": "KDDTest+.txt.gz"}
CITATION = (
    'M. Tavallaee, E. Bagheri, W. Lu and A. A. Ghorbani, "A Detailed Analysis of the KDD CUP 99 '
    'Data Set", '
    "Proc. 2009 IEEE Symposium on Computational Intelligence for Security and Defense "
    "Applications (CISDA)"
)

# The 41 features of KDD Cup 1999 (kddcup.names), in file order.
KDD_FEATURES = (
    "duration",
    "protocol_type",
    "service",
    "flag",
    "src_bytes",
    "dst_bytes",
    "land",
    "wrong_fragment",
    "urgent",
    "hot",
    "num_failed_logins",
    "logged_in",
    "num_compromised",
    "root_shell",
    "su_attempted",
    "num_root",
    "num_file_creations",
    "num_shells",
    "num_access_files",
    "num_outbound_cmds",
    "is_host_login",
    "is_guest_login",
    "count",
    "srv_count",
    "serror_rate",
    "srv_serror_rate",
    "rerror_rate",
    "srv_rerror_rate",
    "same_srv_rate",
    "diff_srv_rate",
    "srv_diff_host_rate",
    "dst_host_count",
    "dst_host_srv_count",
    "dst_host_same_srv_rate",
    "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate",
    "dst_host_srv_diff_host_rate",
    "dst_host_serror_rate",
    "dst_host_srv_serror_rate",
    "dst_host_rerror_rate",
    "dst_host_srv_rerror_rate",
)
KDD_GROUPS = {
    "basic": KDD_FEATURES[0:9],
    "content": KDD_FEATURES[9:22],
    "time": KDD_FEATURES[22:31],
    "host": KDD_FEATURES[31:41],
}
KDD_CATEGORICAL = ("protocol_type", "service", "flag")
# Attack name -> category: the KDD Cup 1999 training attack types, plus the attacks that occur
# only in the test data (KDD's corrected test set, and so NSL-KDD's KDDTest+).
KDD_CATEGORIES = {
    "DoS": (
        "back",
        "land",
        "neptune",
        "pod",
        "smurf",
        "teardrop",
        "apache2",
        "mailbomb",
        "processtable",
        "udpstorm",
    ),
    "Probe": ("ipsweep", "nmap", "portsweep", "satan", "mscan", "saint"),
    "R2L": (
        "ftp_write",
        "guess_passwd",
        "imap",
        "multihop",
        "phf",
        "spy",
        "warezclient",
        "warezmaster",
        "named",
        "sendmail",
        "snmpgetattack",
        "snmpguess",
        "worm",
        "xlock",
        "xsnoop",
    ),
    "U2R": (
        "buffer_overflow",
        "loadmodule",
        "perl",
        "rootkit",
        "httptunnel",
        "ps",
        "sqlattack",
        "xterm",
    ),
}
KDD_CATEGORY_OF = {attack: cat for cat, attacks in KDD_CATEGORIES.items() for attack in attacks}
KDD_NORMAL = "normal"

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

META = ("attack", "category", "is_attack", "time")


@dataclass
class Source:
    """What a connector found: its chunks per split, and what the card should say."""

    name: str
    splits: dict[str, Callable[[], Iterator[pd.DataFrame]]]
    categorical: tuple[str, ...]
    groups: dict[str, tuple[str, ...]]
    files: list[Path] = field(default_factory=list)
    has_time: bool = False
    notes: list[str] = field(default_factory=list)


# --- shared cleaning --------------------------------------------------------------------------
def _read_chunks(path: Path, chunk_rows: int, **kwargs) -> Iterator[pd.DataFrame]:
    """pandas chunks of a CSV, with format problems as one-line UserErrors."""
    try:
        reader = pd.read_csv(path, chunksize=chunk_rows, low_memory=False, **kwargs)
        yield from reader
    except pd.errors.EmptyDataError:
        raise UserError(
            f"{path} is empty; point traffic.download.path at the published file"
        ) from None
    except pd.errors.ParserError as e:
        raise UserError(
            f"{path} is malformed ({str(e).strip()}); check it is the published file"
        ) from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not text in the expected encoding ({e.reason})") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:  # pandas decompresses .gz as it reads
        raise UserError(
            f"{path} is a truncated or corrupt gzip file ({e}); download it again"
        ) from None


def _check_fields(chunk: pd.DataFrame, expected: int, path: Path, start_line: int) -> None:
    """Headerless files: every line must have ``expected`` fields (pandas pads short lines with
    NaN)."""
    if chunk.shape[1] != expected:
        raise UserError(
            f"{path} has {chunk.shape[1]} fields per line, expected {expected}; is it the "
            "published "
            "file of this source?"
        )
    short = chunk.iloc[:, -1].isna().to_numpy()
    if short.any():
        line = start_line + int(np.argmax(short))
        raise UserError(
            f"{path} line {line} has fewer than {expected} fields; the file is truncated or corrupt"
        )


def _clean_label(values: pd.Series) -> pd.Series:
    """KDD labels end with '.', bytes come from sklearn's fetcher, copies pad with spaces."""
    text = values.map(lambda v: v.decode() if isinstance(v, bytes) else v).astype(str)
    return text.str.strip().str.rstrip(".")


def _layout(
    features: pd.DataFrame,
    attack: pd.Series,
    category: pd.Series,
    is_attack: pd.Series,
    time: pd.Series | None = None,
) -> pd.DataFrame:
    out = features.reset_index(drop=True).copy()
    out["attack"] = attack.to_numpy()
    out["category"] = category.to_numpy()
    out["is_attack"] = is_attack.astype(int).to_numpy()
    out["time"] = np.nan if time is None else pd.Series(time).to_numpy(dtype=float)
    return out


def _kdd_layout(chunk: pd.DataFrame, features: tuple[str, ...]) -> pd.DataFrame:
    attack = _clean_label(chunk["label"])
    is_attack = attack != KDD_NORMAL
    category = attack.map(KDD_CATEGORY_OF).where(is_attack, KDD_NORMAL).fillna("unknown")
    return _layout(chunk[list(features)], attack, category, is_attack)


def _kdd_file(path: Path, chunk_rows: int, with_difficulty: bool) -> Iterator[pd.DataFrame]:
    """NSL-KDD (43 fields: difficulty last) or KDD Cup 1999 (42): no header, comma-separated."""
    names = [*KDD_FEATURES, "label", *(["difficulty"] if with_difficulty else [])]
    line = 1
    for chunk in _read_chunks(path, chunk_rows, header=None, dtype={1: str, 2: str, 3: str}):
        _check_fields(chunk, len(names), path, line)
        line += len(chunk)
        chunk.columns = names
        yield _kdd_layout(chunk, KDD_FEATURES)


def _random_split(
    chunks: Callable[[], Iterator[pd.DataFrame]], test_fraction: float, seed: int
) -> dict[str, Callable[[], Iterator[pd.DataFrame]]]:
    """Train/test for sources without a published test file: a seeded coin per row, chunk by chunk
    (the same rows land in the same split on every run, without holding the file in memory)."""

    def side(want_test: bool) -> Iterator[pd.DataFrame]:
        rng = np.random.default_rng(seed)
        for chunk in chunks():
            is_test = rng.random(len(chunk)) < test_fraction
            yield chunk[is_test == want_test]

    return {"train": lambda: side(False), "test": lambda: side(True)}


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise UserError(f"{path} does not exist; set traffic.download.path to {what}")
    return path


# --- connectors -------------------------------------------------------------------------------
def offline(d: Download, seed: int) -> Source:
    files = {split: OFFLINE_DIR / name for split, name in OFFLINE_FILES.items()}
    return Source(
        "offline (NSL-KDD: KDDTrain+_20Percent, KDDTest+)",
        {s: (lambda f=f: _kdd_file(f, d.chunk_rows, True)) for s, f in files.items()},
        KDD_CATEGORICAL,
        KDD_GROUPS,
        list(files.values()),
        notes=["NSL-KDD has no timestamps: plots use record order", f"cite: {CITATION}"],
    )


def nsl_kdd(d: Download, seed: int) -> Source:
    folder = _need(Path(d.path), "the folder holding KDDTrain+.txt and KDDTest+.txt")
    files = {
        "train": _need(folder / "KDDTrain+.txt", "the unzipped NSL-KDD folder"),
        "test": _need(folder / "KDDTest+.txt", "the unzipped NSL-KDD folder"),
    }
    return Source(
        "nsl_kdd",
        {s: (lambda f=f: _kdd_file(f, d.chunk_rows, True)) for s, f in files.items()},
        KDD_CATEGORICAL,
        KDD_GROUPS,
        list(files.values()),
        notes=["KDDTest-21.txt, if present, is not read", f"cite: {CITATION}"],
    )


def kdd99(d: Download, seed: int) -> Source:
    if d.path:
        path = _need(Path(d.path), "kddcup.data_10_percent.gz or kddcup.data")
        chunks = lambda: _kdd_file(path, d.chunk_rows, False)  # noqa: E731  (pandas reads .gz itself)
        return Source(
            "kdd99",
            _random_split(chunks, d.test_fraction, seed),
            KDD_CATEGORICAL,
            KDD_GROUPS,
            [path],
        )
    return _kdd99_sklearn(d, seed)


def _kdd99_sklearn(d: Download, seed: int) -> Source:
    from sklearn.datasets import fetch_kddcup99

    subset = None if d.kdd99_subset == "full" else d.kdd99_subset
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
            frame[column] = _clean_label(frame[column])
    # http and smtp: only rows with logged_in > 0, already log-transformed by sklearn (log(x +
    # 0.1)).
    groups = {g: tuple(c for c in cols if c in features) for g, cols in KDD_GROUPS.items()}
    chunks = lambda: iter([_kdd_layout(frame, features)])  # noqa: E731  (already in memory)
    return Source(
        f"kdd99 (sklearn fetch_kddcup99, subset {d.kdd99_subset}, 10%)",
        _random_split(chunks, d.test_fraction, seed),
        tuple(c for c in KDD_CATEGORICAL if c in features),
        {g: c for g, c in groups.items() if c},
        notes=[
            f"subset {d.kdd99_subset}"
            + (
                ": sklearn already applied log(x + 0.1)"
                if d.kdd99_subset in ("http", "smtp")
                else ""
            )
        ],
    )


def _unsw_layout(chunk: pd.DataFrame, label: str, time: pd.Series | None) -> pd.DataFrame:
    category = chunk["attack_cat"].fillna("").astype(str).str.strip()
    is_attack = pd.to_numeric(chunk[label], errors="coerce").fillna(0).astype(int) == 1
    category = category.map(lambda c: UNSW_CATEGORY_SPELLING.get(c.lower(), c))
    category = category.where(is_attack, "Normal").replace("", "unknown")
    features = chunk.drop(
        columns=[c for c in (*UNSW_IDENTIFIERS, "attack_cat", label) if c in chunk]
    )
    for column in features.columns:
        if column not in UNSW_CATEGORICAL:  # blanks (" ") occur in ct_ftp_cmd and friends
            features[column] = pd.to_numeric(features[column], errors="coerce")
    return _layout(features, category, category, is_attack, time)


def unsw_nb15(d: Download, seed: int) -> Source:
    folder = _need(Path(d.path), "the UNSW-NB15 folder")
    if all((folder / f).exists() for f in UNSW_PARTITION):

        def part(name: str) -> Iterator[pd.DataFrame]:
            for chunk in _read_chunks(
                folder / name, d.chunk_rows, dtype={c: str for c in UNSW_CATEGORICAL}
            ):
                chunk.columns = chunk.columns.str.strip()
                missing = {"attack_cat", "label"} - set(chunk.columns)
                if missing:
                    raise UserError(
                        f"{folder / name} has no column {sorted(missing)[0]!r}; is it the "
                        "UNSW-NB15 "
                        "training/testing CSV?"
                    )
                yield _unsw_layout(chunk, "label", None)

        files = [folder / f for f in UNSW_PARTITION]
        return Source(
            "unsw_nb15 (training/testing partition)",
            {"train": lambda: part(UNSW_PARTITION[0]), "test": lambda: part(UNSW_PARTITION[1])},
            UNSW_CATEGORICAL,
            {},
            files,
            notes=["the partition has no start times: record order"],
        )
    raw = [folder / f for f in UNSW_RAW_FILES if (folder / f).exists()]
    if not raw:
        raise UserError(
            f"{folder} holds neither {' and '.join(UNSW_PARTITION)} nor UNSW-NB15_1..4.csv"
        )

    def chunks() -> Iterator[pd.DataFrame]:
        for path in raw:
            line = 1
            for chunk in _read_chunks(
                path,
                d.chunk_rows,
                header=None,
                encoding="latin-1",
                dtype={1: str, 3: str, 4: str, 5: str, 13: str, 47: str},
            ):
                _check_fields(
                    chunk, len(UNSW_RAW_COLUMNS), path, line
                )  # Label (last) is always set
                line += len(chunk)
                chunk.columns = UNSW_RAW_COLUMNS
                yield _unsw_layout(chunk, "Label", pd.to_numeric(chunk["Stime"], errors="coerce"))

    return Source(
        "unsw_nb15 (raw UNSW-NB15_1..4.csv)",
        _random_split(chunks, d.test_fraction, seed),
        UNSW_CATEGORICAL,
        {},
        raw,
        has_time=True,
    )


def _cic_frame(chunk: pd.DataFrame, path: Path) -> pd.DataFrame:
    # Header names carry leading spaces and, in some copies, a byte-order mark.
    chunk.columns = [str(c).replace("\ufeff", "").replace("ï»¿", "").strip() for c in chunk.columns]
    # "Fwd Header Length" is published twice (an exact copy); pandas names the second ".1".
    chunk = chunk.drop(columns=[c for c in chunk.columns if c == "Fwd Header Length.1"])
    if "Label" not in chunk.columns:
        raise UserError(f"{path} has no ' Label' column; is it a CIC-IDS2017 CSV?")
    chunk = chunk.dropna(subset=["Label"])  # some day files end with rows of empty fields
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
    features = features.apply(pd.to_numeric, errors="coerce").replace([np.inf, -np.inf], np.nan)
    return _layout(features, label, label, label != CIC_NORMAL, time)


def cic_ids2017(d: Download, seed: int) -> Source:
    folder = _need(Path(d.path), "a CIC-IDS2017 CSV or the folder of per-day CSVs")
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else [folder]
    if not files:
        raise UserError(
            f"{folder} has no .csv files; unzip MachineLearningCSV.zip or "
            "GeneratedLabelledFlows.zip"
        )
    has_time = "Timestamp" in pd.read_csv(files[0], nrows=0, encoding="latin-1").columns.str.strip()

    def chunks() -> Iterator[pd.DataFrame]:
        for path in files:
            for chunk in _read_chunks(
                path, d.chunk_rows, encoding="latin-1", skipinitialspace=True
            ):
                yield _cic_frame(chunk, path)

    return Source(
        f"cic_ids2017 ({'TrafficLabelling' if has_time else 'MachineLearningCVE'})",
        _random_split(chunks, d.test_fraction, seed),
        ("Protocol",) if has_time else (),
        {},
        files,
        has_time=has_time,
        notes=["Infinity and NaN in Flow Bytes/s and Flow Packets/s become missing values"],
    )


def local(d: Download, seed: int) -> Source:
    path = _need(Path(d.path), "a CSV with a label column")
    header = next(_read_chunks(path, 1000, encoding="utf-8-sig"))
    header.columns = header.columns.str.strip()
    for column, key in ((d.label_column, "label_column"), (d.time_column, "time_column")):
        if column is not None and column not in header.columns:
            raise UserError(
                f"{path} has no column {column!r} (traffic.download.{key}); it has "
                f"{', '.join(header.columns[:12])}"
            )
    drop = [d.label_column, *([d.time_column] if d.time_column else [])]
    categorical = tuple(
        c for c in header.columns if c not in drop and not pd.api.types.is_numeric_dtype(header[c])
    )

    def chunks() -> Iterator[pd.DataFrame]:
        for chunk in _read_chunks(
            path, d.chunk_rows, encoding="utf-8-sig", dtype={c: str for c in categorical}
        ):
            chunk.columns = chunk.columns.str.strip()
            label = _clean_label(chunk[d.label_column])
            time = None
            if d.time_column:
                stamps = pd.to_datetime(chunk[d.time_column], errors="coerce", format="mixed")
                time = (stamps - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)
            features = chunk.drop(columns=drop)
            for c in features.columns:
                if c not in categorical:
                    features[c] = pd.to_numeric(features[c], errors="coerce")
            features = features.replace([np.inf, -np.inf], np.nan)
            yield _layout(features, label, label, label != d.normal_value, time)

    return Source(
        f"local ({path.name})",
        _random_split(chunks, d.test_fraction, seed),
        categorical,
        {},
        [path],
        has_time=bool(d.time_column),
    )


CONNECTORS = {
    "offline": offline,
    "nsl_kdd": nsl_kdd,
    "kdd99": kdd99,
    "unsw_nb15": unsw_nb15,
    "cic_ids2017": cic_ids2017,
    "local": local,
}


# --- the stage --------------------------------------------------------------------------------
def write_split(split: str, chunks: Iterator[pd.DataFrame], out: Path, columns: list | None):
    """One split's chunks appended to ``out``; its counts (rows, attacks, labels) and the layout's
    columns (every chunk of every split must share the first chunk's)."""
    rows, attacks, mix = 0, 0, pd.Series(dtype=int)
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
            bar.update(len(chunk))
    counts = {
        "rows": rows,
        "attacks": attacks,
        "normal": rows - attacks,
        "attack_share": attacks / rows if rows else 0.0,
        "labels": {str(k): int(v) for k, v in mix.sort_values(ascending=False).items()},
    }
    return counts, columns


def check_counts(counts: dict[str, dict], source: Source) -> None:
    for split, c in counts.items():
        if c["rows"] == 0:
            raise UserError(
                f"the {split} split of {source.name} is empty; check the files and "
                "traffic.download.test_fraction"
            )
    if counts["train"]["normal"] == 0:
        raise UserError(
            "the training data holds no normal traffic, so there is nothing to learn 'normal' "
            "from; check traffic.download.normal_value (local) or the source files"
        )
    if counts["test"]["attacks"] == 0:
        logger.warning("the test data holds no attacks; recall and ROC-AUC will be undefined")


def card(source: Source, columns: list[str], counts: dict[str, dict]) -> dict:
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
    }


def download(p: DownloadParams, paths: Paths) -> None:
    source = CONNECTORS[p.download.source](p.download, p.seed)
    counts: dict[str, dict] = {}
    columns = None
    for split, chunks in source.splits.items():
        counts[split], columns = write_split(split, chunks(), paths.raw / f"{split}.csv", columns)
        if counts[split]["rows"] == 0:
            check_counts(counts, source)
    check_counts(counts, source)
    write_json(paths.card, card(source, columns, counts))
    logger.info(
        f"{source.name}: train {counts['train']['rows']} rows ({counts['train']['attacks']} "
        f"attacks), test {counts['test']['rows']} rows ({counts['test']['attacks']} attacks)"
    )


def _gunzip_sha256(path: Path) -> str:
    """The digest of the decompressed file: what the publisher's copy hashes to."""
    with gzip.open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


if __name__ == "__main__":
    runner.main(download, PROJECT)
