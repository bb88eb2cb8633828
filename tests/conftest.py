import os

# XLA runs on the CPU in tests; set before anything imports torch_xla.
os.environ.setdefault("PJRT_DEVICE", "CPU")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DVCLIVE_LOGLEVEL", "WARNING")
os.environ.setdefault("MPLBACKEND", "Agg")

import xlalab  # noqa: E402,F401  first: it opts Accelerate out of XLA before anything imports it
import pytest  # noqa: E402
import torch_xla  # noqa: E402  the autograd engine sizes its device queues at the first backward:
# torch_xla must register its device before any test runs one, or later XLA backwards fail.
torch_xla.device()


@pytest.fixture(scope="session")
def xla_backend():
    from xlalab.core.runtime import XlaBackend

    return XlaBackend()


@pytest.fixture
def accelerate_backend():
    from xlalab.core.runtime import AccelerateBackend

    return AccelerateBackend(cpu=True)


@pytest.fixture(params=["accelerate", "xla"])
def backend(request):
    return request.getfixturevalue(f"{request.param}_backend")
