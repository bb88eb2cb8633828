import os

# XLA runs on the CPU in tests; set before anything imports torch_xla.
os.environ.setdefault("PJRT_DEVICE", "CPU")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DVCLIVE_LOGLEVEL", "WARNING")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest
import torch_xla

import xlalab  # noqa: F401  opts Accelerate out of XLA before anything imports accelerate
from xlalab.pipeline import log

# The autograd engine sizes its device queues at the first backward: torch_xla must register its
# device before any test runs one, or later XLA backwards fail.
torch_xla.device()
log.setup(0)  # messages reach stderr as they do from a stage command


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
