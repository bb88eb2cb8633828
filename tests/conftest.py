import os

# XLA runs on the CPU in tests; set before anything imports torch_xla.
os.environ.setdefault("PJRT_DEVICE", "CPU")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DVCLIVE_LOGLEVEL", "WARNING")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest

import xlalab  # noqa: F401  opts Accelerate out of XLA before anything imports accelerate
from xlalab.engine.settings import xla_installed
from xlalab.pipeline import log

# torch_xla has wheels for Linux x86-64 only: elsewhere (or with it made unimportable, as
# test_platforms.py does) the tests that need it are skipped and the rest run on Accelerate.
XLA = xla_installed()
if XLA:
    import torch_xla

    # The autograd engine sizes its device queues at the first backward: torch_xla must register
    # its device before any test runs one, or later XLA backwards fail.
    torch_xla.device()
log.setup(0)  # messages reach stderr as they do from a stage command


def needs_xla(item: pytest.Item) -> bool:
    """A test marked ``xla``, one using an XLA fixture (``xla_backend``, ``xla_run``, ...) or one
    parametrized with the value "xla" (``backend``, ``runtime``, ``trained_on``)."""
    if item.get_closest_marker("xla"):
        return True
    if any(name.startswith("xla") for name in getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "xla" in callspec.params.values()


def pytest_collection_modifyitems(config, items):
    if XLA:
        return
    skip = pytest.mark.skip(reason="torch_xla is not installed here (Linux x86-64 only)")
    for item in items:
        if needs_xla(item):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def xla_backend():
    from xlalab.engine.runtime import XlaBackend

    return XlaBackend()


@pytest.fixture
def accelerate_backend():
    from xlalab.engine.runtime import AccelerateBackend

    return AccelerateBackend(cpu=True)


@pytest.fixture(params=["accelerate", "xla"])
def backend(request):
    return request.getfixturevalue(f"{request.param}_backend")
