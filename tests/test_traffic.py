"""traffic: every connector on a small fixture in its source's published layout (quirks included),
the bad inputs, the whole chain on a slice, and the autoencoder on XLA."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from xlalab.cli import main
from xlalab.pipeline.report import METRIC_KEYS
from xlalab.pipeline.runner import run_stage
from xlalab.traffic.sources import kdd, offline, unsw_nb15

ROOT = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
NSL = offline.OFFLINE_DIR


def nsl_lines(split: str, n: int) -> list[str]:
    """The first n normal and n attack lines of the shipped NSL-KDD file (its published layout)."""
    with gzip.open(NSL / offline.OFFLINE_FILES[split], "rt") as f:
        lines = f.read().splitlines()
    normal = [x for x in lines if x.split(",")[41] == "normal"][:n]
    attack = [x for x in lines if x.split(",")[41] != "normal"][:n]
    return [x for pair in zip(normal, attack) for x in pair]


def params(**download) -> dict:
    p = copy.deepcopy(PARAMS)
    p["traffic"]["download"].update(download)
    p["traffic"]["train"].update(epochs=2, batch_size=64)
    p["traffic"]["evaluate"]["isolation_forest"]["n_estimators"] = 20
    p["runtime"]["backend"] = "accelerate"
    return p


def card() -> dict:
    return json.loads(Path("data/traffic/raw/card.json").read_text())


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- connectors -------------------------------------------------------------------------------
def test_offline_files_are_the_published_bytes(workdir):
    run_stage("traffic", "download", params())
    c = card()
    digests = {f["name"]: f["sha256_uncompressed"] for f in c["files"]}
    assert (
        digests["KDDTrain+_20Percent.txt.gz"]
        == "7ea86479faab5ca2190b7f18b4982fb058ce5bf2b46e0e1017d0d9ef90f9c16e"
    )
    assert (
        digests["KDDTest+.txt.gz"]
        == "fa46b0935342616aa83b7c2578db355b6a7aaabbc492248172c7a1e8b7ab8f84"
    )
    assert c["splits"]["test"] | {"labels": None} == {
        "rows": 22544,
        "attacks": 12833,
        "normal": 9711,
        "attack_share": pytest.approx(0.5692, abs=1e-4),
        "labels": None,
    }
    assert c["splits"]["train"]["rows"] == 25192 and c["splits"]["train"]["normal"] == 13449
    test = pd.read_csv("data/traffic/raw/test.csv", usecols=["attack", "category"])
    assert (test.loc[test.attack == "mailbomb", "category"] == "DoS").all()
    assert set(test.category) == {
        "normal",
        "DoS",
        "Probe",
        "R2L",
        "U2R",
    }  # every test-only attack mapped


def test_nsl_kdd_crlf_without_final_newline(workdir):
    folder = workdir / "NSL-KDD"
    folder.mkdir()
    for split, name in (("train", "KDDTrain+.txt"), ("test", "KDDTest+.txt")):
        (folder / name).write_bytes(
            "\r\n".join(nsl_lines(split, 30)).encode()
        )  # the other copies' layout
    run_stage("traffic", "download", params(source="nsl_kdd", path=str(folder)))
    c = card()
    assert c["splits"]["train"]["rows"] == 60 and c["splits"]["train"]["attacks"] == 30
    assert len(c["features"]) == 41 and c["groups"]["basic"][:4] == [
        "duration",
        "protocol_type",
        "service",
        "flag",
    ]
    train = pd.read_csv("data/traffic/raw/train.csv")
    assert not train.attack.str.contains("\r").any() and "difficulty" not in train.columns


def test_kdd99_file_labels_end_with_a_dot(workdir):
    lines = [
        ",".join(x.split(",")[:41] + [x.split(",")[41] + "."]) for x in nsl_lines("train", 100)
    ]
    path = workdir / "kddcup.data_10_percent.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    run_stage("traffic", "download", params(source="kdd99", path=str(path), test_fraction=0.3))
    c = card()
    assert c["splits"]["train"]["rows"] + c["splits"]["test"]["rows"] == 200
    assert "normal" in c["splits"]["train"]["labels"] and not any(
        k.endswith(".") for k in c["splits"]["train"]["labels"]
    )


@pytest.mark.parametrize("subset", ["SA", "http"])
def test_kdd99_sklearn_fetch_mocked(workdir, monkeypatch, subset):
    import sklearn.datasets
    from sklearn.utils import Bunch

    rng = np.random.default_rng(123)  # not the split's seed, or the split would follow the labels
    n = 200
    labels = np.where(rng.random(n) < 0.3, b"smurf.", b"normal.").astype(object)
    if subset == "http":  # sklearn's http subset: three log-transformed columns
        frame = pd.DataFrame(
            {
                "duration": rng.random(n),
                "src_bytes": rng.random(n) * 5,
                "dst_bytes": rng.random(n) * 8,
                "labels": labels,
            }
        )
    else:
        frame = pd.DataFrame({c: rng.random(n) for c in kdd.KDD_FEATURES})
        for c in kdd.KDD_CATEGORICAL:
            frame[c] = np.array([b"tcp", b"udp"], dtype=object)[rng.integers(0, 2, n)]
        frame["labels"] = labels
    calls = []
    monkeypatch.setattr(
        sklearn.datasets,
        "fetch_kddcup99",
        lambda **kw: calls.append(kw) or Bunch(frame=frame.copy()),
    )
    run_stage("traffic", "download", params(source="kdd99", path=None, kdd99_subset=subset))
    assert calls[0]["subset"] == subset
    c = card()
    assert set(c["splits"]["train"]["labels"]) == {"normal", "smurf"}
    assert c["categorical"] == ([] if subset == "http" else list(kdd.KDD_CATEGORICAL))
    if subset == "SA":
        train = pd.read_csv("data/traffic/raw/train.csv")
        assert set(train.protocol_type) == {"tcp", "udp"}  # bytes decoded


UNSW_PARTITION_COLUMNS = [
    "id",
    "dur",
    "proto",
    "service",
    "state",
    "spkts",
    "dpkts",
    "sbytes",
    "dbytes",
    "rate",
    "sttl",
    "dttl",
    "sload",
    "dload",
    "sloss",
    "dloss",
    "sinpkt",
    "dinpkt",
    "sjit",
    "djit",
    "swin",
    "stcpb",
    "dtcpb",
    "dwin",
    "tcprtt",
    "synack",
    "ackdat",
    "smean",
    "dmean",
    "trans_depth",
    "response_body_len",
    "ct_srv_src",
    "ct_state_ttl",
    "ct_dst_ltm",
    "ct_src_dport_ltm",
    "ct_dst_sport_ltm",
    "ct_dst_src_ltm",
    "is_ftp_login",
    "ct_ftp_cmd",
    "ct_flw_http_mthd",
    "ct_src_ltm",
    "ct_srv_dst",
    "is_sm_ips_ports",
    "attack_cat",
    "label",
]


def test_unsw_partition(workdir):
    folder = workdir / "unsw"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name, n in zip(unsw_nb15.UNSW_PARTITION, (80, 40)):
        rows = []
        for i in range(n):
            attack = i % 3 == 0
            values = [str(i + 1), f"{rng.random():.6f}", "tcp", "-" if i % 2 else "http", "FIN"]
            values += [str(int(rng.integers(0, 100))) for _ in UNSW_PARTITION_COLUMNS[5:-2]]
            values += ["Exploits" if attack else "Normal", "1" if attack else "0"]
            rows.append(",".join(values))
        (folder / name).write_text(",".join(UNSW_PARTITION_COLUMNS) + "\n" + "\n".join(rows) + "\n")
    run_stage("traffic", "download", params(source="unsw_nb15", path=str(folder)))
    c = card()
    assert c["splits"]["train"]["rows"] == 80 and c["splits"]["test"]["rows"] == 40
    assert c["categorical"] == ["proto", "service", "state"] and "id" not in c["features"]
    assert set(c["splits"]["train"]["labels"]) == {"Normal", "Exploits"} and not c["has_time"]


def test_unsw_raw_has_start_times_and_quirks(workdir):
    folder = workdir / "unsw"
    folder.mkdir()
    rows = []
    for i in range(60):
        attack = i % 4 == 0
        values = [
            "59.166.0.0",
            "0x000b" if i == 5 else "1390",
            "149.171.126.6",
            "53",
            "udp",
            "CON",
            "0.001",
            "132",
            "164",
            "31",
            "29",
            "0",
            "0",
            "dns",
            "500473.9",
            "621800.9",
            "2",
            "2",
            "0",
            "0",
            "0",
            "0",
            "66",
            "82",
            "0",
            "0",
            "0",
            "0",
            str(1421927414 + i),
            str(1421927414 + i),
            "0.017",
            "0.013",
            "0",
            "0",
            "0",
            "0",
            "0",
            "0",
            "0",
            " " if i == 7 else "0",
            "3",
            "7",
            "1",
            "3",
            "1",
            "1",
            "1",
            (" Fuzzers " if i % 8 == 0 else "Backdoors") if attack else "",
            "1" if attack else "0",
        ]
        rows.append(",".join(values))
    (folder / "UNSW-NB15_1.csv").write_text("\n".join(rows) + "\n")
    run_stage(
        "traffic", "download", params(source="unsw_nb15", path=str(folder), test_fraction=0.3)
    )
    c = card()
    assert c["has_time"] and "Stime" not in c["features"] and "srcip" not in c["features"]
    labels = set(c["splits"]["train"]["labels"]) | set(c["splits"]["test"]["labels"])
    assert labels == {"Normal", "Fuzzers", "Backdoor"}
    train = pd.read_csv("data/traffic/raw/train.csv")
    assert train.time.min() >= 1421927414


# The published CIC-IDS2017 headers, byte for byte: leading spaces on most names (not all), some
# commas
# without a following space, and " Fwd Header Length" twice. MachineLearningCVE has 79 columns,
# TrafficLabelling
# (GeneratedLabelledFlows) 85: the same after its seven identifying columns.
CIC_FLOW_COLUMNS = (
    " Flow Duration, Total Fwd Packets, Total Backward Packets,Total Length of Fwd Packets,"
    " Total Length of Bwd Packets, Fwd Packet Length Max, Fwd Packet Length Min, Fwd Packet "
    "Length Mean,"
    " Fwd Packet Length Std,Bwd Packet Length Max, Bwd Packet Length Min, Bwd Packet Length Mean,"
    " Bwd Packet Length Std,Flow Bytes/s, Flow Packets/s, Flow IAT Mean, Flow IAT Std, Flow IAT "
    "Max,"
    " Flow IAT Min,Fwd IAT Total, Fwd IAT Mean, Fwd IAT Std, Fwd IAT Max, Fwd IAT Min,Bwd IAT "
    "Total,"
    " Bwd IAT Mean, Bwd IAT Std, Bwd IAT Max, Bwd IAT Min,Fwd PSH Flags, Bwd PSH Flags, Fwd URG "
    "Flags,"
    " Bwd URG Flags, Fwd Header Length, Bwd Header Length,Fwd Packets/s, Bwd Packets/s,"
    " Min Packet Length, Max Packet Length, Packet Length Mean, Packet Length Std,"
    " Packet Length Variance,FIN Flag Count, SYN Flag Count, RST Flag Count, PSH Flag Count,"
    " ACK Flag Count, URG Flag Count, CWE Flag Count, ECE Flag Count, Down/Up Ratio, Average "
    "Packet Size,"
    " Avg Fwd Segment Size, Avg Bwd Segment Size, Fwd Header Length,Fwd Avg Bytes/Bulk,"
    " Fwd Avg Packets/Bulk, Fwd Avg Bulk Rate, Bwd Avg Bytes/Bulk, Bwd Avg Packets/Bulk,"
    "Bwd Avg Bulk Rate,Subflow Fwd Packets, Subflow Fwd Bytes, Subflow Bwd Packets, Subflow Bwd "
    "Bytes,"
    "Init_Win_bytes_forward, Init_Win_bytes_backward, act_data_pkt_fwd, "
    "min_seg_size_forward,Active Mean,"
    " Active Std, Active Max, Active Min,Idle Mean, Idle Std, Idle Max, Idle Min, Label"
)
CIC_HEADERS = {
    "MachineLearningCVE": " Destination Port," + CIC_FLOW_COLUMNS,
    "TrafficLabelling": "Flow ID, Source IP, Source Port, Destination IP, Destination Port, "
    "Protocol, Timestamp," + CIC_FLOW_COLUMNS,
}
# (file, timestamp as published, the time it means, label, flow duration, Flow Bytes/s, Flow
# Packets/s).
# Monday's stamps are zero-padded with seconds, the other days' are not; all are day first on a
# 12-hour
# clock without AM/PM. A zero duration gives Infinity (NaN when no bytes either). "-" marks the web
# attacks'
# dash: byte 0x96 (cp1252 en dash) in TrafficLabelling, U+FFFD in UTF-8 in MachineLearningCVE.
CIC_MONDAY = "Monday-WorkingHours.pcap_ISCX.csv"
CIC_THURSDAY = "Thursday-WorkingHours-Morning-WebAttacks.pcap_ISCX.csv"
CIC_FRIDAY = "Friday-WorkingHours-Afternoon-DDos.pcap_ISCX.csv"
CIC_ROWS = [
    (CIC_MONDAY, "03/07/2017 08:55:58", "2017-07-03 08:55:58", "BENIGN", 5, "2400000", "400000"),
    (CIC_MONDAY, "03/07/2017 09:14:07", "2017-07-03 09:14:07", "BENIGN", 250, "96000", "16000"),
    (CIC_MONDAY, "03/07/2017 11:59:59", "2017-07-03 11:59:59", "BENIGN", 0, "Infinity", "Infinity"),
    (CIC_MONDAY, "03/07/2017 12:30:41", "2017-07-03 12:30:41", "BENIGN", 80, "150000", "25000"),
    (CIC_MONDAY, "03/07/2017 01:00:01", "2017-07-03 13:00:01", "BENIGN", 0, "NaN", "Infinity"),
    (CIC_MONDAY, "03/07/2017 02:45:12", "2017-07-03 14:45:12", "BENIGN", 64, "187500", "31250"),
    (CIC_MONDAY, "03/07/2017 04:59:50", "2017-07-03 16:59:50", "BENIGN", 2000, "6000", "1000"),
    *[
        (
            CIC_THURSDAY,
            f"6/7/2017 {h}:{m:02d}",
            f"2017-07-06 {h:02d}:{m:02d}",
            label,
            320000,
            "5925",
            "25",
        )
        for h, m, label in [
            (9, 15, "BENIGN"),
            (9, 20, "Web Attack - Brute Force"),
            (9, 24, "BENIGN"),
            (9, 33, "Web Attack - Brute Force"),
            (9, 47, "BENIGN"),
            (10, 5, "BENIGN"),
            (10, 16, "Web Attack - XSS"),
            (10, 29, "Web Attack - XSS"),
            (10, 40, "Web Attack - Sql Injection"),
            (10, 42, "Web Attack - Sql Injection"),
        ]
    ],
    (CIC_THURSDAY, "6/7/2017 12:01", "2017-07-06 12:01", "BENIGN", 0, "Infinity", "Infinity"),
    *[
        (
            CIC_FRIDAY,
            f"7/7/2017 {h}:{m:02d}",
            f"2017-07-07 {h + 12}:{m:02d}",
            label,
            10,
            "1200000",
            "200000",
        )
        for h, m, label in [
            (3, 30, "BENIGN"),
            (3, 41, "BENIGN"),
            (3, 56, "DDoS"),
            (3, 58, "BENIGN"),
            (4, 2, "DDoS"),
            (4, 4, "DDoS"),
            (4, 9, "BENIGN"),
            (4, 11, "DDoS"),
            (4, 16, "DDoS"),
            (4, 30, "BENIGN"),
            (4, 58, "BENIGN"),
        ]
    ],
    (CIC_FRIDAY, "7/7/2017 4:10", "2017-07-07 16:10", "DDoS", 0, "NaN", "Infinity"),
]
CIC_TRAILING_EMPTY_ROWS = 5  # the Thursday WebAttacks file ends in 288,602 rows of separators only


def cic_file(variant: str, rows: list) -> bytes:
    """One day file in the published layout: the header, CRLF line ends, every column filled."""
    header = CIC_HEADERS[variant].split(",")
    lines = [CIC_HEADERS[variant]]
    for i, (_name, stamp, _, label, duration, byte_rate, packet_rate) in enumerate(rows):
        dash = "\u2013" if variant == "TrafficLabelling" else "\ufffd"
        values = {
            "Flow ID": f"192.168.10.{50 + i % 3}-172.16.0.1-80-{40000 + i}-6",
            "Source IP": "172.16.0.1",
            "Source Port": str(40000 + i),
            "Destination IP": f"192.168.10.{50 + i % 3}",
            "Destination Port": "80",
            "Protocol": "6",
            "Timestamp": stamp,
            "Flow Duration": str(duration),
            "Flow Bytes/s": byte_rate,
            "Flow Packets/s": packet_rate,
            "Fwd Header Length": "40",
            "Init_Win_bytes_backward": "-1",
            "Label": label.replace(" - ", f" {dash} "),
        }
        lines.append(",".join(values.get(c.strip(), str(i % 7)) for c in header))
    if rows[0][0] == CIC_THURSDAY:
        lines += ["," * (len(header) - 1)] * CIC_TRAILING_EMPTY_ROWS
    text = "\r\n".join(lines) + "\r\n"
    return text.encode("cp1252") if variant == "TrafficLabelling" else text.encode("utf-8")


@pytest.mark.parametrize("variant", ["MachineLearningCVE", "TrafficLabelling"])
def test_cic_ids2017(workdir, variant):
    labelled = variant == "TrafficLabelling"
    header = [c.strip() for c in CIC_HEADERS[variant].split(",")]
    assert len(header) == (85 if labelled else 79) and header.count("Fwd Header Length") == 2
    folder = workdir / variant
    folder.mkdir()
    for name in (CIC_MONDAY, CIC_THURSDAY, CIC_FRIDAY):
        (folder / name).write_bytes(cic_file(variant, [r for r in CIC_ROWS if r[0] == name]))
    assert (b"\x96" in (folder / CIC_THURSDAY).read_bytes()) == labelled
    run_stage(
        "traffic", "download", params(source="cic_ids2017", path=str(folder), test_fraction=0.25)
    )
    c = card()
    identifiers = {"Flow ID", "Source IP", "Source Port", "Destination IP", "Timestamp", "Label"}
    assert c["features"] == list(dict.fromkeys(h for h in header if h not in identifiers))
    assert "Fwd Header Length.1" not in c["features"] and "Destination Port" in c["features"]
    assert c["categorical"] == (["Protocol"] if labelled else []) and c["has_time"] == labelled
    assert sum(c["splits"][s]["rows"] for s in ("train", "test")) == len(
        CIC_ROWS
    )  # the empty rows dropped
    labels = {label for s in ("train", "test") for label in c["splits"][s]["labels"]}
    assert labels == {
        "BENIGN",
        "DDoS",
        "Web Attack - Brute Force",
        "Web Attack - XSS",
        "Web Attack - Sql Injection",
    }
    flows = pd.concat([pd.read_csv(f"data/traffic/raw/{s}.csv") for s in ("train", "test")])
    for column, at in (
        ("Flow Bytes/s", 5),
        ("Flow Packets/s", 6),
    ):  # Infinity and NaN become missing
        assert np.isfinite(flows[column].dropna()).all()
        assert flows[column].isna().sum() == sum(r[at] in ("Infinity", "NaN") for r in CIC_ROWS)
    if labelled:  # day first, and afternoon hours on the 12-hour clock moved past noon
        times = (
            pd.to_datetime(flows["time"], unit="s").sort_values().dt.strftime("%Y-%m-%d %H:%M:%S")
        )
        assert times.tolist() == sorted(
            pd.Timestamp(r[2]).strftime("%Y-%m-%d %H:%M:%S") for r in CIC_ROWS
        )
        ddos = pd.to_datetime(flows.loc[flows.attack == "DDoS", "time"], unit="s")
        assert ddos.between("2017-07-07 15:56", "2017-07-07 16:16").all()
    else:
        assert flows["time"].isna().all()


def test_local_csv_with_bom(workdir):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {
            "bytes": rng.integers(0, 10**6, 100),
            "proto": rng.choice(["tcp", "udp"], 100),
            "when": pd.date_range("2024-01-01", periods=100, freq="min").astype(str),
            "verdict": np.where(rng.random(100) < 0.2, "bad", "ok"),
        }
    )
    path = workdir / "flows.csv"
    path.write_bytes(b"\xef\xbb\xbf" + frame.to_csv(index=False).encode())
    run_stage(
        "traffic",
        "download",
        params(
            source="local",
            path=str(path),
            label_column="verdict",
            normal_value="ok",
            time_column="when",
        ),
    )
    c = card()
    assert c["features"] == ["bytes", "proto"] and c["categorical"] == ["proto"] and c["has_time"]
    assert c["splits"]["train"]["attacks"] + c["splits"]["test"]["attacks"] == int(
        (frame.verdict == "bad").sum()
    )


# --- bad input: one line, exit 2, nothing written ---------------------------------------------
def _run_cli(workdir, p: dict, stage: str = "download") -> int:
    (workdir / "params.yaml").write_text(yaml.safe_dump(p))
    return main(["traffic", stage])


def _local(workdir, text: str) -> str:
    path = workdir / "in.csv"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("case", ["fields", "label", "no_normal", "empty"])
def test_bad_input(workdir, capsys, case):
    if case == "fields":
        folder = workdir / "NSL-KDD"
        folder.mkdir()
        lines = nsl_lines("train", 20)
        lines[7] = ",".join(lines[7].split(",")[:40])  # a truncated line
        (folder / "KDDTrain+.txt").write_text("\n".join(lines) + "\n")
        (folder / "KDDTest+.txt").write_text("\n".join(nsl_lines("test", 5)) + "\n")
        p = params(source="nsl_kdd", path=str(folder))
        expected = "line 8 has fewer than 43 fields"
    elif case == "label":
        p = params(
            source="local", path=_local(workdir, "a,b,label\n1,2,normal\n"), label_column="class"
        )
        expected = "has no column 'class'"
    elif case == "no_normal":
        text = "a,label\n" + "\n".join(f"{i},attack" for i in range(50)) + "\n"
        p = params(source="local", path=_local(workdir, text))
        expected = "no normal traffic"
    else:
        p = params(source="local", path=_local(workdir, ""))
        expected = "is empty"
    assert _run_cli(workdir, p) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert not (workdir / "data" / "traffic" / "raw").exists()
    assert (
        not list((workdir / "data" / "traffic").glob(".tmp*"))
        if (workdir / "data" / "traffic").exists()
        else True
    )


@pytest.mark.parametrize("percentile", [0, 100, 120])
def test_threshold_percentile_outside_0_100(workdir, capsys, percentile):
    p = params()
    p["traffic"]["evaluate"]["threshold_percentile"] = percentile
    assert _run_cli(workdir, p, "evaluate") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "traffic.evaluate.threshold_percentile" in err[0]
    assert not (workdir / "metrics").exists()


def test_held_out_types_are_whole_types_drawn_within_each_category():
    from xlalab.traffic.featurize import held_out_types

    types = {"DoS": ["a", "b", "c", "d", "e", "f"], "Probe": ["g", "h"], "U2R": ["u"]}
    rows = pd.DataFrame(
        [(t, c) for c, names in types.items() for i, t in enumerate(names) for _ in range(i + 1)],
        columns=["attack", "category"],
    )
    for seed in range(5):
        held = held_out_types(rows, 0.3, seed)
        assert held == held_out_types(rows, 0.3, seed)  # seeded
        by_category = {c: [t for t in held if t in names] for c, names in types.items()}
        # round(0.3 * 6) = 2 of DoS; one of Probe's two; none of U2R's single type
        assert [len(v) for v in by_category.values()] == [2, 1, 0]
    assert len({tuple(held_out_types(rows, 0.3, seed)) for seed in range(8)}) > 1
    # no category with a choice: a share of all the types, at least one
    single = pd.DataFrame({"attack": ["x", "y", "z"], "category": ["x", "y", "z"]})
    assert len(held_out_types(single, 0.3, 0)) == 1


def test_no_validation_attack_type_is_in_the_rows_the_detectors_fit(workdir):
    """With ``fit_on: all`` the detectors fit on training attacks too: none of them is of a type
    held out for validation (on which the settings and the headline are chosen), and every row
    of a held-out type is in the validation traffic."""
    p = _slice(workdir)
    p["traffic"]["featurize"]["fit_on"] = "all"
    run_stage("traffic", "download", p)
    run_stage("traffic", "featurize", p)
    meta = json.loads(Path("data/traffic/features/meta.json").read_text())
    rows = pd.read_csv("data/traffic/features/training_rows.csv", keep_default_na=False)
    fit, val_attacks = rows[rows["split"] == "fit"], rows[rows["split"] == "val_attacks"]
    assert len(fit) == len(np.load("data/traffic/features/fit.npy"))
    assert len(val_attacks) == len(np.load("data/traffic/features/val_attacks.npy"))
    fitted_attacks = set(fit.loc[fit["attack"] != "normal", "attack"])
    assert fitted_attacks and not fitted_attacks & set(val_attacks["attack"])
    assert set(val_attacks["attack"]) == set(meta["validation_attack_types"])
    assert (
        meta["fit_attack_types"]
        == fit.loc[fit["attack"] != "normal", "attack"].value_counts().to_dict()
    )
    all_attacks = [line.split(",")[41] for line in nsl_lines("train", 400)]
    held = [a for a in all_attacks if a in meta["validation_attack_types"]]
    assert len(val_attacks) == len(held)  # every row of each held-out type


def test_ranking_verdict_is_roc_auc_with_a_paired_bootstrap():
    from sklearn.metrics import roc_auc_score

    from xlalab.traffic.analysis import bootstrap_rows, ranking_verdict

    rng = np.random.default_rng(11)
    y = rng.random(3000) < 0.5
    scores = {
        "knn": rng.normal(size=3000) + 1.2 * y,
        "forest": rng.normal(size=3000) + 1.0 * y,
        "flag_everything": np.ones(3000),
    }
    v = ranking_verdict("knn", scores, y, seed=0, rows=3000)
    assert v["metric"] == "roc_auc" and v["best_baseline"] == "forest"
    assert v["score"] == pytest.approx(roc_auc_score(y, scores["knn"]))
    assert v["baseline_score"] == pytest.approx(roc_auc_score(y, scores["forest"]))
    assert v["baselines"]["flag_everything"]["score"] == pytest.approx(0.5)
    assert v["verdict"] == "beats" and v["difference_interval"][0] > 0
    # Shifting or rescaling a detector's scores (a threshold's only levers) changes nothing.
    moved = scores | {"knn": 3 * scores["knn"] + 7}
    assert ranking_verdict("knn", moved, y, seed=0, rows=3000) == v
    assert bootstrap_rows(3000, 5000, 0) is None
    sample = bootstrap_rows(3000, 500, 0)
    assert len(np.unique(sample)) == 500 and (np.diff(sample) > 0).all()


# --- the chain on a slice ---------------------------------------------------------------------
def _slice(workdir) -> dict:
    folder = workdir / "NSL-KDD"
    folder.mkdir()
    (folder / "KDDTrain+.txt").write_text("\n".join(nsl_lines("train", 400)) + "\n")
    test = nsl_lines("test", 150)
    test[1] = test[1].replace(
        ",private,", ",no_such_service,", 1
    )  # a category never seen in training
    (folder / "KDDTest+.txt").write_text("\n".join(test) + "\n")
    p = params(source="nsl_kdd", path=str(folder))
    p["traffic"]["evaluate"]["study_sets"] = ["basic", "all"]
    return p


def test_featurize_learns_on_normal_training_traffic_only(workdir):
    p = _slice(workdir)
    run_stage("traffic", "download", p)
    run_stage("traffic", "featurize", p)
    meta = json.loads(Path("data/traffic/features/meta.json").read_text())
    fit = np.load("data/traffic/features/fit.npy")
    assert meta["rows"]["fit_attacks"] == 0 and meta["rows"]["fit"] + meta["rows"]["val"] == 400
    # whole attack types held out as labelled validation traffic: every row of each
    held_out = meta["validation_attack_types"]
    attacks = pd.Series([line.split(",")[41] for line in nsl_lines("train", 400)])
    assert held_out == attacks[attacks.isin(held_out)].value_counts().to_dict()
    assert meta["rows"]["val_attacks"] == sum(held_out.values())
    shape = (sum(held_out.values()), len(meta["columns"]))
    assert np.load("data/traffic/features/val_attacks.npy").shape == shape
    scaled = [i for i, c in enumerate(meta["columns"]) if not c.startswith("cat__")]
    assert np.allclose(
        fit[:, scaled].mean(axis=0), 0, atol=1e-4
    )  # the scaler saw exactly these rows
    test = np.load("data/traffic/features/test.npy")
    other = meta["columns"].index("cat__service_other")
    assert test[1, other] == 1 and test[0, other] == 0
    assert "log__src_bytes" in meta["columns"] and "num__serror_rate" in meta["columns"]
    assert set(meta["groups"]) == {"basic", "content", "time", "host", "traffic", "all"}


@pytest.mark.slow
def test_whole_chain_on_a_slice(workdir):
    p = _slice(workdir)
    for stage in ("download", "featurize", "train", "evaluate", "plot"):
        run_stage("traffic", stage, p)
    m = json.loads(Path("reports/traffic/details.json").read_text())
    detectors = {"isolation_forest", "autoencoder", "ecod", "copod", "knn"}
    assert set(m["detectors"]) == detectors and m["headline"] == "knn"
    for d in m["detectors"].values():
        assert 0.0 <= d["val_alarm_rate"] <= 0.1  # the 95th percentile of normal validation scores
        assert set(d["recall_per_category"]) <= {"DoS", "Probe", "R2L", "U2R"}
        fixed = d["at_fixed_false_alarm_rate"]  # the 99th percentile: a stricter threshold
        assert fixed["rate"] == 0.01 and fixed["threshold"] >= d["threshold"]
        assert fixed["recall"] <= d["recall"]
    assert m["baselines"]["flag_everything"]["recall"] == 1.0
    assert m["baselines"]["flag_everything"]["precision"] == pytest.approx(0.5)
    assert m["detectors"]["isolation_forest"]["roc_auc"] > 0.7
    # the verdict: the headline's ROC-AUC against the strongest other detector or baseline
    v = m["verdict"]
    others = {**m["detectors"], **m["baselines"]}
    del others["knn"]
    assert v["model"] == "knn" and set(v["baselines"]) == set(others) and v["metric"] == "roc_auc"
    strongest = max(others, key=lambda n: others[n]["roc_auc"] or 0.5)
    assert v["best_baseline"] == strongest == m["strongest_other"]
    assert v["score"] == pytest.approx(m["detectors"]["knn"]["roc_auc"])
    assert v["interval"][0] <= v["score"] <= v["interval"][1]
    assert v["verdict"] in ("beats", "ties", "loses") and v["line"].startswith("knn roc_auc")
    # F1 at the common operating point beside it, and the same-test-rate diagnostic
    op = m["operating_point"]
    assert op["metric"] == "f1" and op["score"] == pytest.approx(m["detectors"]["knn"]["f1"])
    same = m["diagnostics"]["same_test_false_alarm_rate"]
    assert same["rate"] == pytest.approx(0.05) and set(same["detectors"]) == detectors
    for d in same["detectors"].values():  # each threshold at 5 % of the 150 normal TEST rows
        assert d["test_false_alarm_rate"] <= 0.05 + 1 / 150
    # validation: the held-out attack types; each setting the best of its candidates there
    val = m["validation"]
    meta = json.loads(Path("data/traffic/features/meta.json").read_text())
    assert val["attack_types"] == meta["validation_attack_types"]
    assert val["rows"] == {"normal": 80, "attacks": sum(val["attack_types"].values())}
    assert set(val["detectors"]) == detectors
    assert val["verdict"]["model"] == "knn" and val["verdict"]["metric"] == "roc_auc"
    assert val["verdict"]["score"] == pytest.approx(val["detectors"]["knn"]["roc_auc"])
    for name, setting in (("knn", "neighbours"), ("isolation_forest", "max_samples")):
        tried = val["detectors"][name]
        assert len(tried["candidates"]) == 3 and tried["setting"] == setting
        best = max(tried["candidates"], key=tried["candidates"].get)
        assert tried["chosen"] == {setting: int(best)}
    summary = json.loads(Path("models/traffic/summary.json").read_text())
    choice = summary["autoencoder_choice"]
    assert len(choice["candidates"]) == len(p["traffic"]["train"]["hidden_choices"])
    assert choice["chosen"] == max(
        choice["candidates"], key=lambda c: choice["candidates"][c]["val_roc_auc"]
    )
    assert (
        summary["models"]["autoencoder"]["config"]["hidden"]
        == (choice["candidates"][choice["chosen"]]["hidden"])
    )
    assert sorted(Path("models/traffic").glob("*.safetensors")) == [
        Path("models/traffic/autoencoder.safetensors")
    ]
    # the test's attack types, by what the detectors saw of them
    types = m["test"]["attack_types"]
    test_attacks = {line.split(",")[41] for line in nsl_lines("test", 150)} - {"normal"}
    assert set().union(*types.values()) == test_attacks
    assert set(types["in_validation"]) <= set(val["attack_types"])
    assert types["never_seen"] == m["test"]["unseen_attack_types"]
    assert m["scoring"]["knn"]["search"] == "exact"  # 320 training rows cannot fill 128 cells
    assert m["runtime"]["backend"] == "accelerate" and m["runtime"]["processes"] == 1
    assert {(r["feature_set"], r["detector"]) for r in m["feature_sets"]} == {
        (s, d) for s in ("basic", "all") for d in ("isolation_forest", "ecod")
    }
    predictions = pd.read_csv("data/traffic/predictions.csv")
    assert len(predictions) == 300 and "score_knn" in predictions
    assert (predictions["row"] == np.arange(300)).all()
    report = Path("plots/traffic/figures/report.md").read_text()
    assert f"{m['analysis']['false_positives']} normal records were flagged" in report
    assert "**Verdict** (ROC-AUC" in report and "headline knn" in report
    roc = json.loads(Path("plots/traffic/figures/roc.json").read_text())
    assert roc[0]["fpr"] == 0 and roc[-1]["knn"] == pytest.approx(1.0)
    published = json.loads(Path("metrics/traffic.json").read_text())  # every project's keys
    assert tuple(published) == METRIC_KEYS and published["test_rows"] == 300
    assert (published["model"], published["baseline"]) == ("knn", m["strongest_other"])
    # Threshold-free: another alarm threshold moves F1, not the verdict.
    p["traffic"]["evaluate"]["threshold_percentile"] = 90
    run_stage("traffic", "evaluate", p)
    moved = json.loads(Path("reports/traffic/details.json").read_text())
    assert moved["verdict"] == v
    assert moved["detectors"]["knn"]["f1"] != m["detectors"]["knn"]["f1"]
    # More test rows than bootstrap_rows: the verdict resamples a seeded sample of them, and its
    # interval is wider than the one from every row.
    p["traffic"]["evaluate"]["bootstrap_rows"] = 100
    run_stage("traffic", "evaluate", p)
    sampled = json.loads(Path("reports/traffic/details.json").read_text())["verdict"]
    assert sampled["bootstrap"]["test_rows"] == 100 and sampled["bootstrap"]["of"] == 300
    assert json.loads(Path("metrics/traffic.json").read_text())["test_rows"] == 100
    width = lambda pair: pair[1] - pair[0]  # noqa: E731
    assert width(sampled["difference_interval"]) > width(v["difference_interval"])


@pytest.mark.slow
def test_shuffled_test_labels_change_the_scores_alone(workdir):
    """No threshold, no headline, no row kept and no detector score depends on a test label:
    shuffling the labels of the test rows leaves all of them as they were and moves only the
    metrics. Running evaluate again unshuffled gives the same metrics (determinism)."""
    from xlalab.traffic.model import TailProbabilities

    p = _slice(workdir)
    p["traffic"]["evaluate"]["study_sets"] = []
    p["traffic"]["evaluate"]["detectors"] = ["copod", "knn", "autoencoder", "ecod"]
    for stage in ("download", "featurize", "train", "evaluate"):
        run_stage("traffic", stage, p)
    before = json.loads(Path("reports/traffic/details.json").read_text())
    kept = pd.read_csv("data/traffic/predictions.csv")
    features = Path("data/traffic/features")
    direct = TailProbabilities(np.load(features / "fit.npy"))(np.load(features / "test.npy"))
    for name in ("ecod", "copod"):  # each detector's column holds its own scores
        np.testing.assert_allclose(kept[f"score_{name}"], direct[name], rtol=1e-12)
    run_stage("traffic", "evaluate", p)
    again = json.loads(Path("reports/traffic/details.json").read_text())
    assert {k: v for k, v in again.items() if k != "scoring"} == {
        k: v for k, v in before.items() if k != "scoring"
    }
    meta = Path("data/traffic/features/test_meta.csv")
    rows = pd.read_csv(meta, keep_default_na=False)
    order = np.random.default_rng(1).permutation(len(rows))
    labels = ["attack", "category", "is_attack"]
    rows[labels] = rows[labels].to_numpy()[order]
    rows.to_csv(meta, index=False)
    run_stage("traffic", "evaluate", p)
    after = json.loads(Path("reports/traffic/details.json").read_text())
    shuffled = pd.read_csv("data/traffic/predictions.csv")
    assert after["headline"] == before["headline"] and after["validation"] == before["validation"]
    for name, d in after["detectors"].items():
        assert d["threshold"] == before["detectors"][name]["threshold"]
        fixed = d["at_fixed_false_alarm_rate"]["threshold"]
        assert fixed == before["detectors"][name]["at_fixed_false_alarm_rate"]["threshold"]
    assert len(shuffled) == len(kept) and (shuffled["row"] == kept["row"]).all()
    produced = [c for c in kept if c.startswith(("score_", "flag_"))]
    pd.testing.assert_frame_equal(shuffled[produced], kept[produced])
    assert after["verdict"]["score"] != before["verdict"]["score"]
    assert after["detectors"]["knn"]["roc_auc"] == pytest.approx(0.5, abs=0.15)


@pytest.mark.slow
@pytest.mark.xla
def test_autoencoder_on_xla_compiles_once(workdir):
    p = _slice(workdir)
    p["runtime"]["backend"] = "xla"
    p["traffic"]["train"]["epochs"] = 3
    p["traffic"]["train"]["patience"] = None
    p["traffic"]["train"]["hidden_choices"] = [[64, 16]]  # one candidate: one model's graphs
    for stage in ("download", "featurize", "train"):
        run_stage("traffic", stage, p)
    entry = json.loads(Path("models/traffic/summary.json").read_text())["models"]["autoencoder"]
    counts = entry["compile_counts"]
    assert counts[0] is not None and counts[1:] == [counts[0]] * (len(counts) - 1), counts


def _columns(rng, n):
    return np.column_stack(
        [
            rng.lognormal(size=n),
            -rng.exponential(size=n),
            rng.normal(size=n),
            rng.integers(0, 4, n).astype(float),
            np.zeros(n),
        ]
    )


@pytest.mark.parametrize("kind", ["ecod", "copod"])
def test_tail_scores_are_pyod_scores_of_each_row_alone(kind):
    """ECOD/COPOD scores equal PyOD's ``decision_function`` of each row given alone, whatever the
    batch: PyOD's own call on a batch pools the batch into "normal" and scores it differently."""
    from pyod.models.copod import COPOD
    from pyod.models.ecod import ECOD

    from xlalab.traffic.model import TailProbabilities

    rng = np.random.default_rng(0)
    train, new = _columns(rng, 500), _columns(rng, 60)
    new[:5] *= 8  # some far outside the training range
    new[5, 4] = 1.0  # a value never seen in the constant column
    score = TailProbabilities(train)
    reference = {"ecod": ECOD, "copod": COPOD}[kind]().fit(train)
    alone = np.array([reference.decision_function(r[None])[0] for r in new])
    np.testing.assert_allclose(score(new)[kind], alone, rtol=1e-9)
    halves = np.concatenate([score(new[:7])[kind], score(new[7:])[kind]])
    np.testing.assert_allclose(halves, score(new)[kind])
    assert not np.allclose(
        reference.decision_function(new), alone
    )  # what a pooled batch would give


def test_tail_lookup_equals_the_formulas_at_every_cut_and_between():
    """The per-column lookup gives what PyOD's formulas give for a value (``tail_scores``, from the
    counts of training values at or below and at or above it) on the training values and the next
    floats on either side, between them, beyond them, and at and near the points where the pooled
    skewness changes sign (not within a few floats of those: there the formula's own rounding
    decides the sign, as does scipy's, differently, in PyOD)."""
    from xlalab.traffic.model import TailProbabilities, tail_scores

    rng = np.random.default_rng(5)
    train = _columns(rng, 300)
    for j in range(train.shape[1]):
        column = np.sort(train[:, j])
        score = TailProbabilities(column[:, None])  # one column: the score is its term
        cuts = score.cuts[0]
        seen, roots = np.unique(column), np.setdiff1d(cuts, column)
        near = 1e-6 * np.maximum(1.0, np.abs(roots))
        values = np.concatenate(
            [
                cuts,
                (cuts[:-1] + cuts[1:]) / 2,
                np.nextafter(seen, np.inf),
                np.nextafter(seen, -np.inf),
                roots - near,
                roots + near,
                [cuts[0] - 10, cuts[-1] + 10],
            ]
        )
        below = np.searchsorted(column, values, side="right").astype(float)
        above = len(column) - np.searchsorted(column, values, side="left").astype(float)
        centred = column - column.mean()
        moments = (column.mean(), (centred**2).sum(), (centred**3).sum())
        expected = tail_scores(below, above, values, moments, len(column))
        got = score(values[:, None])
        np.testing.assert_allclose(got["ecod"], expected[0], rtol=1e-12)
        np.testing.assert_allclose(got["copod"], expected[1], rtol=1e-12)


def test_isolation_forest_scores_are_scikit_learns_to_the_last_bit():
    """Walking the fitted trees level by level, rows in parallel, gives scikit-learn's own
    ``-score_samples``, bit for bit, on one thread or two, rows outside the training range
    included."""
    import numba
    from sklearn.ensemble import IsolationForest

    from xlalab.traffic.model import IsolationForestScores

    rng = np.random.default_rng(9)
    train = rng.normal(size=(700, 8)).astype(np.float32)
    rows = np.concatenate([rng.normal(size=(900, 8)), 6 * rng.normal(size=(100, 8))])
    rows = rows.astype(np.float32)
    ours = IsolationForestScores(train, n_estimators=40, max_samples=128, seed=3)
    theirs = IsolationForest(n_estimators=40, max_samples=128, random_state=3).fit(train)
    expected = -theirs.score_samples(rows)
    for threads in (1, 2):
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        np.testing.assert_array_equal(ours(rows)["isolation_forest"], expected)
    np.testing.assert_array_equal(ours(rows[:3])["isolation_forest"], expected[:3])


def test_nearest_neighbour_distance_is_the_mean_distance_to_the_k_nearest():
    from sklearn.neighbors import NearestNeighbors

    from xlalab.traffic.model import NearestNeighbourDistance

    rng = np.random.default_rng(6)
    train = rng.normal(size=(800, 6)).astype(np.float32)
    rows = np.concatenate([rng.normal(size=(200, 6)), 4 + rng.normal(size=(20, 6))])
    rows = rows.astype(np.float32)
    exact = NearestNeighbors(n_neighbors=5).fit(train).kneighbors(rows)[0].mean(axis=1)
    flat = NearestNeighbourDistance(train, neighbours=5, lists=0, probes=1, seed=0)
    assert flat.search["search"] == "exact"
    np.testing.assert_allclose(flat(rows)["knn"], exact, rtol=1e-4)
    ivf = NearestNeighbourDistance(train, neighbours=5, lists=16, probes=4, seed=0)
    assert ivf.search == {"search": "ivf", "reference_rows": 800, "lists": 16, "probes": 4}
    approximate = ivf(rows)["knn"]
    assert (approximate >= exact - 1e-4).all()  # never nearer than the true neighbours
    assert np.mean(np.isclose(approximate, exact, rtol=1e-4)) > 0.8
    # Far more neighbours than one cell holds: the rows whose cells run short are searched exactly.
    many = NearestNeighbourDistance(train, neighbours=120, lists=20, probes=1, seed=0)
    exact_many = NearestNeighbors(n_neighbors=120).fit(train).kneighbors(rows)[0].mean(axis=1)
    np.testing.assert_allclose(many(rows)["knn"], exact_many, rtol=1e-4)
    # One search for the most neighbours serves every fewer (the validation choice of k): the
    # first k distances of a 20-neighbour search are the k-neighbour search's.
    for k in (1, 5):
        fewer = NearestNeighbourDistance(train, neighbours=k, lists=16, probes=4, seed=0)
        wide = NearestNeighbourDistance(train, neighbours=20, lists=16, probes=4, seed=0)
        prefix = wide.distances(rows)[:, :k].mean(axis=1)
        np.testing.assert_allclose(prefix, fewer(rows)["knn"], rtol=1e-5)
    # Too few rows to fill the cells (faiss asks for 39 per cell): exact search.
    small = NearestNeighbourDistance(train[:100], neighbours=5, lists=16, probes=4, seed=0)
    assert small.search["search"] == "exact"


def test_ranking_metrics_are_scikit_learns():
    from sklearn import metrics as skm

    from xlalab.results.reports import anomaly as sklearn_report
    from xlalab.traffic.analysis import anomaly

    rng = np.random.default_rng(7)
    for n, decimals in ((2000, None), (2000, 1), (12, 0)):
        y = rng.random(n) < 0.4
        scores = rng.random(n) + 0.3 * y
        if decimals is not None:  # many ties
            scores = np.round(scores, decimals)
        flagged = scores > 0.6
        ours, theirs = anomaly(y, scores, flagged), sklearn_report(y, scores, flagged)
        assert {k: ours[k] for k in theirs} == pytest.approx(theirs, rel=1e-12)
        assert ours["accuracy"] == pytest.approx(skm.accuracy_score(y, flagged))
    constant = anomaly(np.ones(4, bool), np.zeros(4), np.ones(4, bool))
    assert constant["roc_auc"] is None and constant["pr_auc"] is None


def test_rows_stream_through_npy_files_block_by_block(tmp_path):
    from xlalab.traffic.arrays import RowWriter, blocks, shape

    x = np.random.default_rng(8).normal(size=(1003, 7)).astype(np.float32)
    with RowWriter(tmp_path / "x.npy", 1003, 7) as out:
        for start in range(0, 1003, 100):
            out.write(x[start : start + 100])
    assert out.written == 1003 and shape(tmp_path / "x.npy") == (1003, 7)
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), x)
    parts = list(blocks(tmp_path / "x.npy", 300))
    assert [len(b) for b in parts] == [300, 300, 300, 103]
    np.testing.assert_array_equal(np.concatenate(parts), x)


def test_the_headline_must_be_a_detector_that_runs(workdir, capsys):
    p = params()
    p["traffic"]["evaluate"]["detectors"] = ["isolation_forest", "ecod"]
    assert _run_cli(workdir, p, "evaluate") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "traffic.evaluate" in err[0] and "headline 'knn'" in err[0], err
