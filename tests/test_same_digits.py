"""The fits whose published digits once moved with the machine give the same digits with 1 and 2
threads and with other BLAS and numpy kernels: housing's forest (its target's last bit came from
numpy's AVX-512 log1p on some processors and the C library's on others) and cifar10's logistic
regression on raw pixels (in float32, each OpenBLAS kernel steered its solver elsewhere).

Each runs as a fresh process (tests/digits_job.py), because thread pools and kernels are chosen
when the libraries load. The other kernels: OpenBLAS's Sandybridge ones (``OPENBLAS_CORETYPE``:
AVX, which x86-64 processors have had since 2011 and which none with AVX2 picks; with float32
pixels they gave a validation accuracy of 0.905 where SkylakeX gave 0.9 and Haswell 0.8975) and
numpy's baseline code, every optimisation it would pick at run time switched off
(``NPY_DISABLE_CPU_FEATURES``; with np.log1p as the target, the forest's RMSE(log) went from
0.1398 to 0.1403)."""

from __future__ import annotations

import copy
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from numpy._core import _multiarray_umath as numpy_dispatch

from xlalab.pipeline.runner import run_stage

ROOT = Path(__file__).resolve().parents[1]
JOB = Path(__file__).with_name("digits_job.py")
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def threads(n: int) -> dict[str, str]:
    """``n`` threads for every pool: OpenMP, BLAS, and joblib's ``n_jobs=-1`` (the forest)."""
    return {**dict.fromkeys(THREAD_VARIABLES, str(n)), "LOKY_MAX_CPU_COUNT": str(n)}


def other_kernels() -> dict[str, str]:
    """Kernels this processor would not pick: OpenBLAS's for Sandybridge (x86-64 only: the names are
    per architecture) and numpy without its run-time dispatched SIMD code."""
    found = [f for f in numpy_dispatch.__cpu_dispatch__ if numpy_dispatch.__cpu_features__.get(f)]
    kernels = {"NPY_DISABLE_CPU_FEATURES": " ".join(found)} if found else {}
    if platform.machine() in ("x86_64", "AMD64"):
        kernels["OPENBLAS_CORETYPE"] = "Sandybridge"
    return kernels


VARIANTS = {
    "1 thread": threads(1),
    "2 threads": threads(2),
    "2 threads, other kernels": {**threads(2), **other_kernels()},
}


def scores(project: str, workdir: Path, variables: dict[str, str]) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "MKL_CBWR")}
    env.update(variables, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run(
        [sys.executable, str(JOB), project],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def downloaded(project: str, root: Path, stages: tuple[str, ...]) -> Path:
    root.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for stage in stages:
            run_stage(project, stage, copy.deepcopy(PARAMS))
    return root


def same_digits_everywhere(project: str, prepared: Path, tmp_path: Path) -> None:
    found = {}
    for name, variables in VARIANTS.items():
        workdir = tmp_path / name.replace(" ", "_").replace(",", "")
        shutil.copytree(prepared, workdir)
        found[name] = scores(project, workdir, variables)
    assert len(set(map(json.dumps, found.values()))) == 1, json.dumps(found, indent=1)


def test_housing_forest_has_the_same_digits_with_any_threads_and_kernels(tmp_path):
    # featurize runs in every variant: the target it computes is what moved
    prepared = downloaded("housing", tmp_path / "downloaded", ("download",))
    same_digits_everywhere("housing", prepared, tmp_path)


def test_cifar10_pixel_logreg_has_the_same_digits_with_any_threads_and_kernels(tmp_path):
    prepared = downloaded("cifar10", tmp_path / "featurized", ("download", "featurize"))
    same_digits_everywhere("cifar10", prepared, tmp_path)
