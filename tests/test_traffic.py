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

from xlalab.__main__ import main
from xlalab.core.project import run_stage
from xlalab.traffic import data

ROOT = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
NSL = data.OFFLINE_DIR


def nsl_lines(split: str, n: int) -> list[str]:
    """The first n normal and n attack lines of the shipped NSL-KDD file (its published layout)."""
    with gzip.open(NSL / data.OFFLINE_FILES[split], "rt") as f:
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
    assert digests["KDDTrain+_20Percent.txt.gz"] == "7ea86479faab5ca2190b7f18b4982fb058ce5bf2b46e0e1017d0d9ef90f9c16e"
    assert digests["KDDTest+.txt.gz"] == "fa46b0935342616aa83b7c2578db355b6a7aaabbc492248172c7a1e8b7ab8f84"
    assert c["splits"]["test"] | {"labels": None} == {"rows": 22544, "attacks": 12833, "normal": 9711,
                                                       "attack_share": pytest.approx(0.5692, abs=1e-4), "labels": None}
    assert c["splits"]["train"]["rows"] == 25192 and c["splits"]["train"]["normal"] == 13449
    test = pd.read_csv("data/traffic/raw/test.csv", usecols=["attack", "category"])
    assert (test.loc[test.attack == "mailbomb", "category"] == "DoS").all()
    assert set(test.category) == {"normal", "DoS", "Probe", "R2L", "U2R"}  # every test-only attack mapped


def test_nsl_kdd_crlf_without_final_newline(workdir):
    folder = workdir / "NSL-KDD"
    folder.mkdir()
    for split, name in (("train", "KDDTrain+.txt"), ("test", "KDDTest+.txt")):
        (folder / name).write_bytes("\r\n".join(nsl_lines(split, 30)).encode())  # the other copies' layout
    run_stage("traffic", "download", params(source="nsl_kdd", path=str(folder)))
    c = card()
    assert c["splits"]["train"]["rows"] == 60 and c["splits"]["train"]["attacks"] == 30
    assert len(c["features"]) == 41 and c["groups"]["basic"][:4] == ["duration", "protocol_type", "service", "flag"]
    train = pd.read_csv("data/traffic/raw/train.csv")
    assert not train.attack.str.contains("\r").any() and "difficulty" not in train.columns


def test_kdd99_file_labels_end_with_a_dot(workdir):
    lines = [",".join(x.split(",")[:41] + [x.split(",")[41] + "."]) for x in nsl_lines("train", 100)]
    path = workdir / "kddcup.data_10_percent.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    run_stage("traffic", "download", params(source="kdd99", path=str(path), test_fraction=0.3))
    c = card()
    assert c["splits"]["train"]["rows"] + c["splits"]["test"]["rows"] == 200
    assert "normal" in c["splits"]["train"]["labels"] and not any(k.endswith(".") for k in c["splits"]["train"]["labels"])


@pytest.mark.parametrize("subset", ["SA", "http"])
def test_kdd99_sklearn_fetch_mocked(workdir, monkeypatch, subset):
    import sklearn.datasets
    from sklearn.utils import Bunch

    rng = np.random.default_rng(123)  # not the split's seed, or the split would follow the labels
    n = 200
    labels = np.where(rng.random(n) < 0.3, b"smurf.", b"normal.").astype(object)
    if subset == "http":  # sklearn's http subset: three log-transformed columns
        frame = pd.DataFrame({"duration": rng.random(n), "src_bytes": rng.random(n) * 5,
                              "dst_bytes": rng.random(n) * 8, "labels": labels})
    else:
        frame = pd.DataFrame({c: rng.random(n) for c in data.KDD_FEATURES})
        for c in data.KDD_CATEGORICAL:
            frame[c] = np.array([b"tcp", b"udp"], dtype=object)[rng.integers(0, 2, n)]
        frame["labels"] = labels
    calls = []
    monkeypatch.setattr(sklearn.datasets, "fetch_kddcup99",
                        lambda **kw: calls.append(kw) or Bunch(frame=frame.copy()))
    run_stage("traffic", "download", params(source="kdd99", path=None, kdd99_subset=subset))
    assert calls[0]["subset"] == subset
    c = card()
    assert set(c["splits"]["train"]["labels"]) == {"normal", "smurf"}
    assert c["categorical"] == ([] if subset == "http" else list(data.KDD_CATEGORICAL))
    if subset == "SA":
        train = pd.read_csv("data/traffic/raw/train.csv")
        assert set(train.protocol_type) == {"tcp", "udp"}  # bytes decoded


UNSW_PARTITION_COLUMNS = (
    "id,dur,proto,service,state,spkts,dpkts,sbytes,dbytes,rate,sttl,dttl,sload,dload,sloss,dloss,sinpkt,dinpkt,"
    "sjit,djit,swin,stcpb,dtcpb,dwin,tcprtt,synack,ackdat,smean,dmean,trans_depth,response_body_len,ct_srv_src,"
    "ct_state_ttl,ct_dst_ltm,ct_src_dport_ltm,ct_dst_sport_ltm,ct_dst_src_ltm,is_ftp_login,ct_ftp_cmd,"
    "ct_flw_http_mthd,ct_src_ltm,ct_srv_dst,is_sm_ips_ports,attack_cat,label").split(",")


def test_unsw_partition(workdir):
    folder = workdir / "unsw"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name, n in zip(data.UNSW_PARTITION, (80, 40)):
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
        values = ["59.166.0.0", "0x000b" if i == 5 else "1390", "149.171.126.6", "53", "udp", "CON", "0.001", "132",
                  "164", "31", "29", "0", "0", "dns", "500473.9", "621800.9", "2", "2", "0", "0", "0", "0", "66",
                  "82", "0", "0", "0", "0", str(1421927414 + i), str(1421927414 + i), "0.017", "0.013", "0", "0",
                  "0", "0", "0", "0", "0", " " if i == 7 else "0", "3", "7", "1", "3", "1", "1", "1",
                  (" Fuzzers " if i % 8 == 0 else "Backdoors") if attack else "", "1" if attack else "0"]
        rows.append(",".join(values))
    (folder / "UNSW-NB15_1.csv").write_text("\n".join(rows) + "\n")
    run_stage("traffic", "download", params(source="unsw_nb15", path=str(folder), test_fraction=0.3))
    c = card()
    assert c["has_time"] and "Stime" not in c["features"] and "srcip" not in c["features"]
    labels = set(c["splits"]["train"]["labels"]) | set(c["splits"]["test"]["labels"])
    assert labels == {"Normal", "Fuzzers", "Backdoor"}
    train = pd.read_csv("data/traffic/raw/train.csv")
    assert train.time.min() >= 1421927414


CIC_FEATURES = [" Destination Port", " Flow Duration", " Total Fwd Packets", "Flow Bytes/s", " Flow Packets/s",
                " Fwd Header Length", " Bwd Header Length", " Fwd Header Length"]


@pytest.mark.parametrize("variant", ["MachineLearningCVE", "TrafficLabelling"])
def test_cic_ids2017(workdir, variant):
    folder = workdir / variant
    folder.mkdir()
    ids = ["Flow ID", " Source IP", " Source Port", " Destination IP", " Destination Port", " Protocol",
           " Timestamp"]
    header = (ids if variant == "TrafficLabelling" else [" Destination Port"]) + CIC_FEATURES[1:] + [" Label"]
    lines = [",".join(header)]
    labels = ["BENIGN", "DDoS", "Web Attack \u2013 Brute Force", "BENIGN"]
    for i in range(80):
        label = labels[i % 4]
        flow = ["1.2.3.4-5.6.7.8-80-1234-6", "192.168.10.5", "1234", "192.168.10.50", "80", "6",
                f"3/7/2017 8:{i % 60:02d}"] if variant == "TrafficLabelling" else ["80"]
        rate = "Infinity" if i == 3 else ("NaN" if i == 6 else str(100.5 + i))
        lines.append(",".join(flow + [str(1000 + i), "2", rate, "3000.0", "40", "20", "40", label]))
    body = ("\r\n".join(lines) + "\r\n").encode("cp1252")
    (folder / "Tuesday-WorkingHours.pcap_ISCX.csv").write_bytes(body)
    run_stage("traffic", "download", params(source="cic_ids2017", path=str(folder), test_fraction=0.25))
    c = card()
    assert "Fwd Header Length.1" not in c["features"] and "Fwd Header Length" in c["features"]
    assert "Label" not in c["features"] and "Timestamp" not in c["features"]
    labels = set(c["splits"]["train"]["labels"])
    assert labels == {"BENIGN", "DDoS", "Web Attack - Brute Force"}
    assert c["has_time"] == (variant == "TrafficLabelling")
    train = pd.read_csv("data/traffic/raw/train.csv")
    assert np.isfinite(train["Flow Bytes/s"].dropna()).all()
    if variant == "TrafficLabelling":
        assert pd.to_datetime(train.time, unit="s").dt.month.eq(7).all()  # day first: 3 July 2017


def test_local_csv_with_bom(workdir):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"bytes": rng.integers(0, 10**6, 100), "proto": rng.choice(["tcp", "udp"], 100),
                          "when": pd.date_range("2024-01-01", periods=100, freq="min").astype(str),
                          "verdict": np.where(rng.random(100) < 0.2, "bad", "ok")})
    path = workdir / "flows.csv"
    path.write_bytes(b"\xef\xbb\xbf" + frame.to_csv(index=False).encode())
    run_stage("traffic", "download", params(source="local", path=str(path), label_column="verdict",
                                             normal_value="ok", time_column="when"))
    c = card()
    assert c["features"] == ["bytes", "proto"] and c["categorical"] == ["proto"] and c["has_time"]
    assert c["splits"]["train"]["attacks"] + c["splits"]["test"]["attacks"] == int((frame.verdict == "bad").sum())


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
        p = params(source="local", path=_local(workdir, "a,b,label\n1,2,normal\n"), label_column="class")
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
    assert not list((workdir / "data" / "traffic").glob(".tmp*")) if (workdir / "data" / "traffic").exists() else True


@pytest.mark.parametrize("percentile", [0, 100, 120])
def test_threshold_percentile_outside_0_100(workdir, capsys, percentile):
    p = params()
    p["traffic"]["evaluate"]["threshold_percentile"] = percentile
    assert _run_cli(workdir, p, "evaluate") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "traffic.evaluate.threshold_percentile" in err[0]
    assert not (workdir / "metrics").exists()


# --- the chain on a slice ---------------------------------------------------------------------
def _slice(workdir) -> dict:
    folder = workdir / "NSL-KDD"
    folder.mkdir()
    (folder / "KDDTrain+.txt").write_text("\n".join(nsl_lines("train", 400)) + "\n")
    test = nsl_lines("test", 150)
    test[1] = test[1].replace(",private,", ",no_such_service,", 1)  # a category never seen in training
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
    scaled = [i for i, c in enumerate(meta["columns"]) if not c.startswith("cat__")]
    assert np.allclose(fit[:, scaled].mean(axis=0), 0, atol=1e-4)  # the scaler saw exactly these rows
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
    m = json.loads(Path("metrics/traffic.json").read_text())
    assert set(m["detectors"]) == {"isolation_forest", "autoencoder", "ecod", "copod"}
    for d in m["detectors"].values():
        assert 0.0 <= d["val_alarm_rate"] <= 0.1  # the 95th percentile of normal validation scores
        assert set(d["recall_per_category"]) <= {"DoS", "Probe", "R2L", "U2R"}
    assert m["baselines"]["flag_everything"]["recall"] == 1.0
    assert m["baselines"]["flag_everything"]["precision"] == pytest.approx(0.5)
    assert m["detectors"]["isolation_forest"]["roc_auc"] > 0.7
    assert m["verdict"]["line"].startswith(m["best"])
    assert {(r["feature_set"], r["detector"]) for r in m["feature_sets"]} == {
        (s, d) for s in ("basic", "all") for d in ("isolation_forest", "ecod")}
    predictions = pd.read_csv("data/traffic/predictions.csv")
    assert len(predictions) == 300 and "score_autoencoder" in predictions
    report = Path("plots/traffic/figures/report.md").read_text()
    assert "Verdict" in report and f"{m['analysis']['false_positives']} normal records were flagged" in report
    roc = json.loads(Path("plots/traffic/figures/roc.json").read_text())
    assert roc[0]["fpr"] == 0 and roc[-1]["autoencoder"] == pytest.approx(1.0)


@pytest.mark.slow
def test_autoencoder_on_xla_compiles_once(workdir):
    p = _slice(workdir)
    p["runtime"]["backend"] = "xla"
    p["traffic"]["train"]["epochs"] = 3
    p["traffic"]["train"]["patience"] = None
    for stage in ("download", "featurize", "train"):
        run_stage("traffic", stage, p)
    entry = json.loads(Path("models/traffic/summary.json").read_text())["models"]["autoencoder"]
    counts = entry["compile_counts"]
    assert counts[0] is not None and counts[1:] == [counts[0]] * (len(counts) - 1), counts


@pytest.mark.parametrize("kind", ["ecod", "copod"])
def test_tail_scores_are_pyod_scores_of_each_row_alone(kind):
    """ECOD/COPOD scores equal PyOD's ``decision_function`` of each row given alone, whatever the
    batch: PyOD's own call on a batch pools the batch into "normal" and scores it differently."""
    from pyod.models.copod import COPOD
    from pyod.models.ecod import ECOD

    from xlalab.traffic.model import classical_detector

    rng = np.random.default_rng(0)
    def rows(n):  # noqa: E306  skewed left and right, normal, ties (integers), a constant column
        return np.column_stack([rng.lognormal(size=n), -rng.exponential(size=n), rng.normal(size=n),
                                rng.integers(0, 4, n).astype(float), np.zeros(n)])
    train, new = rows(500), rows(60)
    new[:5] *= 8  # some far outside the training range
    new[5, 4] = 1.0  # a value never seen in the constant column
    score = classical_detector(kind, seed=0).fit(train).score
    reference = {"ecod": ECOD, "copod": COPOD}[kind]().fit(train)
    alone = np.array([reference.decision_function(r[None])[0] for r in new])
    np.testing.assert_allclose(score(new), alone, rtol=1e-9)
    np.testing.assert_allclose(np.concatenate([score(new[:7]), score(new[7:])]), score(new))
    assert not np.allclose(reference.decision_function(new), alone)  # what a pooled batch would give
