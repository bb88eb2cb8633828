"""A pytest plugin that runs the loop's tests (tests/test_loop.py) on the Accelerate backend on
whatever device Accelerate picks: CUDA on a GPU machine. bench/gpu.py loads it in place of
tests/conftest.py (``--noconftest -p gpu_loop_plugin``), because that conftest imports torch_xla,
which GPU machines do not have; the XLA tests are skipped here.

It gives the fixtures the tests ask for, sets up logging as the conftest does, counts a test that
fails only because a package this machine lacks (dvclive, needed by the stage-level tests that log
per epoch) as skipped with the package named, and writes what ran where to the file named by
GPU_LOOP_PLUGIN_OUT: the devices the backends used and whether anything imported torch_xla.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DVCLIVE_LOGLEVEL", "WARNING")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest

import xlalab  # noqa: F401  opts Accelerate out of XLA before anything imports accelerate
from xlalab.pipeline import log

log.setup(0)  # messages reach stderr as they do from a stage command (tests read the warnings)

# Packages that a GPU machine without the pipeline's tools lacks; a test that needs one is
# skipped, not failed, and the report names the package.
NOT_HERE = ("dvclive", "dvc", "torch_xla")
devices: set[str] = set()


@pytest.fixture
def accelerate_backend():
    from xlalab.engine.runtime import AccelerateBackend

    backend = AccelerateBackend()  # CUDA where there is one
    devices.add(str(backend.device))
    return backend


@pytest.fixture
def xla_backend():
    pytest.skip("the XLA backend is not tested here (no torch_xla)")


@pytest.fixture(params=["accelerate", "xla"])
def backend(request):
    return request.getfixturevalue(f"{request.param}_backend")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    error = call.excinfo.value if call.excinfo is not None else None
    missing = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
    if missing and missing.split(".")[0] in NOT_HERE:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1], f"needs {missing}, not installed")


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("GPU_LOOP_PLUGIN_OUT")
    if out:
        with open(out, "w") as f:
            json.dump(
                {"devices": sorted(devices), "torch_xla_imported": "torch_xla" in sys.modules}, f
            )
