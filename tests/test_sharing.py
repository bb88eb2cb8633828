"""Sharing results without re-running them (docs/sharing.md): a DVC remote holds every cached
output, so a fresh clone that runs `dvc pull` has the whole pipeline up to date, and an experiment
run in one clone reaches another through `dvc exp push` / `dvc exp pull`.

The round trip runs on a copy of this repository restricted to housing (small params: a Lasso
and a small forest, two folds), with a bare git repository as `origin` and a local folder as the
DVC remote, exactly as a shared folder remote is set up. Each clone has its own DVC cache, so
everything the second clone has came through the remote.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xlalab.pipeline import dvcyaml as pipeline
from xlalab.pipeline.contract import load_project

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "housing"
STAGES = [f"{PROJECT}-{stage.name}" for stage in load_project(PROJECT).stages]
IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
ENV = {
    **os.environ,
    **IDENTITY,
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    # The stages run `python -m xlalab...`: this interpreter's, with this venv's dvc.
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
}


def run(cwd: Path, *command: str) -> str:
    done = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def small_housing(params: dict) -> dict:
    """The offline data and every stage as in params.yaml, sized to run in seconds."""
    housing = params[PROJECT]
    # the headline needs a fitted model to be judged against: a small forest
    housing["train"].update(models=["linear", "forest"], blend=[], headline="linear", cv_folds=2)
    housing["train"]["forest"]["n_estimators"] = 20
    housing["train"]["linear"]["alphas"] = 10
    housing["plot"].update(lime_samples=200, shap_background=10)
    return params


def make_repository(path: Path) -> None:
    """The repository's code and config with a dvc.yaml of housing's stages only."""
    tracked = run(ROOT, "git", "ls-files", "-z").split("\0")
    keep = ("src/", ".dvc/")
    for rel in tracked:
        if (rel.startswith(keep) or rel in (".gitignore", ".dvcignore")) and (ROOT / rel).is_file():
            (path / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, path / rel)
    (path / "dvc.yaml").write_text(pipeline.render([load_project(PROJECT)]))
    params = small_housing(yaml.safe_load((ROOT / "params.yaml").read_text()))
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def clone(origin: Path, path: Path) -> Path:
    run(origin.parent, "git", "clone", "-q", str(origin), str(path))
    for key, value in (("user.name", "t"), ("user.email", "t@example.com")):
        run(path, "git", "config", key, value)  # dvc exp commits through its own git library
    return path


def digests(repo: Path) -> dict[str, str]:
    """Every file of the pipeline's outputs, cached (data/, models/) and git-tracked."""
    files = [
        f
        for top in ("data", "models", "metrics", "reports", "plots", "timing")
        for f in sorted((repo / top).rglob("*"))
        if f.is_file()
    ]
    return {f.relative_to(repo).as_posix(): hashlib.md5(f.read_bytes()).hexdigest() for f in files}


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> dict:
    """`first`: the pipeline run and committed, pushed to `origin.git` and to the DVC remote."""
    base = tmp_path_factory.mktemp("sharing")
    first = base / "first"
    make_repository(first)
    run(first, "git", "init", "-q", "-b", "main")
    run(first, "git", "config", "user.name", "t")
    run(first, "git", "config", "user.email", "t@example.com")
    run(first, "dvc", "remote", "add", "-d", "store", str(base / "store"))
    run(first, "dvc", "repro")
    run(first, "git", "add", "-A")
    run(first, "git", "commit", "-q", "-m", "housing, run")
    run(base, "git", "clone", "-q", "--bare", str(first), str(base / "origin.git"))
    run(first, "git", "remote", "add", "origin", str(base / "origin.git"))
    pushed = run(first, "dvc", "push")
    return {"base": base, "first": first, "outputs": digests(first), "pushed": pushed}


def test_a_fresh_clone_pulls_every_output_and_reruns_nothing(shared):
    second = clone(shared["base"] / "origin.git", shared["base"] / "second")
    # before the pull: the metrics are in git, so DVC loads every one (timings are not metrics)
    assert "failed to load" not in run(second, "dvc", "metrics", "show")
    run(second, "dvc", "pull")
    assert run(second, "dvc", "status").strip() == "Data and pipelines are up to date."
    repro = run(second, "dvc", "repro")
    assert "Running stage" not in repro
    assert all(f"Stage '{stage}' didn't change, skipping" in repro for stage in STAGES)
    assert digests(second) == shared["outputs"]
    assert run(second, "git", "status", "--porcelain") == ""


def test_an_experiment_travels_from_one_clone_to_another(shared):
    first, base = shared["first"], shared["base"]
    ran = run(first, "dvc", "exp", "run", "-n", "alphas20", "-S", "housing.train.linear.alphas=20")
    assert "Running stage 'housing-train'" in ran and "housing-featurize' didn't change" in ran
    result = digests(first)
    assert result["metrics/housing.json"] != shared["outputs"]["metrics/housing.json"]
    run(first, "dvc", "exp", "push", "origin", "alphas20")

    third = clone(base / "origin.git", base / "third")  # has no outputs at all
    assert "alphas20" in run(third, "dvc", "exp", "list", "origin")
    run(third, "dvc", "exp", "pull", "origin", "alphas20")
    run(third, "dvc", "exp", "apply", "alphas20")
    assert run(third, "dvc", "status").strip() == "Data and pipelines are up to date."
    assert "Running stage" not in run(third, "dvc", "repro")
    assert digests(third) == result
