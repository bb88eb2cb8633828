"""KDD Cup 1999's layout, which NSL-KDD keeps: 41 features, then the label (and NSL-KDD's
difficulty), no header, comma-separated. Read by the offline, nsl_kdd and kdd99 connectors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from .layout import check_fields, clean_label, layout, numeric_features, read_chunks

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

KDD_NUMERIC = tuple(c for c in KDD_FEATURES if c not in KDD_CATEGORICAL)


def kdd_layout(chunk: pd.DataFrame, features: tuple[str, ...]) -> pd.DataFrame:
    attack = clean_label(chunk["label"])
    is_attack = attack != KDD_NORMAL
    category = attack.map(KDD_CATEGORY_OF).where(is_attack, KDD_NORMAL).fillna("unknown")
    return layout(chunk[list(features)], attack, category, is_attack)


def kdd_file(path: Path, chunk_rows: int, with_difficulty: bool) -> Iterator[pd.DataFrame]:
    """NSL-KDD (43 fields: difficulty last) or KDD Cup 1999 (42): no header, comma-separated,
    plain or gzip."""
    names = [*KDD_FEATURES, "label", *(["difficulty"] if with_difficulty else [])]
    line = 1
    for chunk in read_chunks(path, chunk_rows, header=None, dtype={1: str, 2: str, 3: str}):
        check_fields(chunk, len(names), path, line)
        chunk.columns = names
        chunk = numeric_features(chunk, KDD_NUMERIC, path, line)
        line += len(chunk)
        yield kdd_layout(chunk, KDD_FEATURES)
