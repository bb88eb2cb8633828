"""xlalab: reproducible ML projects on one device-agnostic training loop."""

import os

# Accelerate switches to torch_xla whenever it can import it, even for CPU or CUDA runs.
# Our XLA backend drives torch_xla directly, so Accelerate never needs it: opt out before
# anything imports accelerate (transformers may, lazily). Users can still override.
os.environ.setdefault("USE_TORCH_XLA", "0")

PROJECTS = ("cifar10", "imdb", "lstm", "housing", "reviews", "traffic")
