"""DVCLive's curves are written where `dvc plots show` and VS Code's DVC extension read them,
``plots/<project>/train``, while the train stage runs, not moved there when it ends; the model is
still staged, so a failed stage leaves no half-written model and puts the previous curves back."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from xlalab.engine.settings import Params
from xlalab.errors import UserError
from xlalab.pipeline.contract import STAGE_NAMES, Paths, Project
from xlalab.pipeline.runner import run_stage

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 12


def lstm_params() -> dict:
    """params.yaml's lstm section (offline MSFT prices) training only the LSTM, small, one thread,
    every epoch run (no early stop)."""
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p = {
        "runtime": {**p["runtime"], "backend": "accelerate", "cpu_threads": 1, "processes": 1},
        "lstm": copy.deepcopy(p["lstm"]),
    }
    p["lstm"]["train"].update(compare_cells=[], hidden=8, epochs=EPOCHS, patience=None)
    return p


def rows(tsv: Path) -> int:
    """Epochs logged in a DVCLive series (its header line aside); 0 while it does not exist."""
    try:
        return max(0, len(tsv.read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def test_lstm_curves_grow_under_plots_while_the_train_stage_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = lstm_params()
    for stage in ("download", "featurize"):
        run_stage("lstm", stage, copy.deepcopy(p))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    series = tmp_path / "plots/lstm/train/lstm/plots/metrics/train/loss.tsv"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PJRT_DEVICE": "CPU"}
    stage = subprocess.Popen(
        [sys.executable, "-m", "xlalab.lstm.train"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen_while_running = set()
    deadline = time.monotonic() + 600
    while stage.poll() is None and time.monotonic() < deadline:
        seen_while_running.add(rows(series))
        time.sleep(0.02)
    assert stage.wait(timeout=60) == 0, stage.stderr.read()[-3000:]
    partial = sorted(n for n in seen_while_running if 0 < n < EPOCHS)
    assert partial, f"epochs logged while the stage ran: {sorted(seen_while_running)}"
    assert rows(series) == EPOCHS
    assert (tmp_path / "models/lstm/lstm.safetensors").exists()
    leftovers = [p.name for p in tmp_path.glob("**/.*.tmp*")]
    assert not leftovers, leftovers


# --- the runner's contract, on a toy project --------------------------------------------------
class ToyParams(Params):
    fail: bool


TOY = Project("toy", dict.fromkeys(STAGE_NAMES, ToyParams))


def toy_train(p: ToyParams, paths: Paths) -> None:
    """Writes a curve and a model; fails half-way with ``fail``. Records what it saw."""
    real = Paths.of("toy")
    toy_train.seen = {
        "live is the real folder": paths.live == real.live,
        "staged": paths.staged,
        "model is staged": paths.model != real.model,
    }
    (paths.live / "loss.tsv").write_text("step\tloss\n1\t0.5\n")
    toy_train.seen["curve visible at the real path"] = (real.live / "loss.tsv").exists()
    (paths.model / "weights.bin").write_bytes(b"half")
    if p.fail:
        raise UserError("the data went bad half-way")
    (paths.model / "weights.bin").write_bytes(b"whole")


@pytest.fixture
def toy_workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Paths.of("toy").features.mkdir(parents=True)
    return tmp_path


def test_the_stage_sees_the_real_curves_folder_and_a_staged_model(toy_workdir):
    run_stage(TOY, "train", {"toy": {"fail": False}}, toy_train)
    assert toy_train.seen == {
        "live is the real folder": True,
        "staged": ("model",),
        "model is staged": True,
        "curve visible at the real path": True,
    }
    paths = Paths.of("toy")
    assert (paths.model / "weights.bin").read_bytes() == b"whole"
    assert (paths.live / "loss.tsv").exists()


def test_a_failed_stage_leaves_no_model_and_puts_the_previous_curves_back(toy_workdir):
    paths = Paths.of("toy")
    paths.live.mkdir(parents=True)
    (paths.live / "loss.tsv").write_text("step\tloss\n1\t0.9\n2\t0.8\n")
    with pytest.raises(UserError, match="went bad"):
        run_stage(TOY, "train", {"toy": {"fail": True}}, toy_train)
    assert toy_train.seen["curve visible at the real path"]
    assert not paths.model.exists()
    assert (paths.live / "loss.tsv").read_text() == "step\tloss\n1\t0.9\n2\t0.8\n"
    assert sorted(p.name for p in paths.live.parent.iterdir()) == ["train"]  # nothing kept aside


def test_a_failed_first_run_leaves_neither_curves_nor_model(toy_workdir):
    with pytest.raises(UserError):
        run_stage(TOY, "train", {"toy": {"fail": True}}, toy_train)
    paths = Paths.of("toy")
    assert not paths.model.exists() and not paths.live.exists()
