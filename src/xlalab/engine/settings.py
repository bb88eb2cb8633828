"""The settings the engine reads, as strict typed sections of params.yaml.

``Params`` is the base of every params section of every project: unknown keys are errors (a typo
must not pass silently) and values are checked on assignment too. ``Runtime`` (the root
``runtime`` section: where and how training runs) and ``TrainConfig`` (the loop's keys, the same in
every project's ``train`` section) are the two sections the loop and the backends read. They live
in the engine so that it imports nothing from the pipeline; reading params.yaml and turning a
problem into one line is the pipeline's job (pipeline/params.py).
"""

from __future__ import annotations

import glob
import os
from typing import Literal

import pydantic
from pydantic import Field

from ..errors import UserError


class Params(pydantic.BaseModel):
    """Base of every params section: unknown keys are errors (a typo must not pass silently) and
    values are checked on assignment too."""

    # strict: YAML already gives typed values, so "3" is not silently an int (ints still pass as
    # floats)
    model_config = pydantic.ConfigDict(
        extra="forbid", strict=True, validate_assignment=True, protected_namespaces=()
    )


class Runtime(Params):
    """The root ``runtime`` section: where and how every training and prediction runs
    (``resolve_backend`` below says what ``auto`` means on this host)."""

    backend: Literal["auto", "xla", "accelerate"]  # auto: xla on a TPU host, else accelerate
    bf16: bool
    # torch's intra-op threads on the host (torch.set_num_threads), per process; None: torch's
    # default
    # (one per core; under several processes the launcher sets one each)
    cpu_threads: int | None = Field(ge=1)
    # Data-parallel processes on this machine (accelerate backend): `python -m xlalab` starts them
    # through Accelerate's launcher (core/launch.py). The xla backend instead uses every device of
    # the host in one process through SPMD.
    processes: int = Field(ge=1)


class TrainConfig(Params):
    """The loop's params, the same keys in every project's ``train`` section (projects subclass
    it to add their own). ``seed`` comes from the project's top-level seed."""

    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    lr: float = Field(gt=0.0)
    weight_decay: float = Field(ge=0.0)
    optimizer: Literal["adamw", "sgd"]
    scheduler: Literal["cosine", "linear", "constant"]
    warmup_fraction: float = Field(ge=0.0, le=1.0)
    grad_accum_steps: int = Field(ge=1)
    max_grad_norm: float | None = Field(gt=0.0)
    patience: int | None = Field(ge=1)  # early stopping: epochs without improvement
    eval_batch_size: int | None = Field(ge=1)  # null: batch_size
    # Not a params.yaml key, so the one field with a default in code: ``seeded`` sets it from the
    # project's top-level ``seed``, which every stage of the project reads.
    seed: int = Field(default=0, ge=0)

    def seeded(self, seed: int) -> TrainConfig:
        return self.model_copy(update={"seed": seed})


BACKENDS = ("auto", "xla", "accelerate")  # runtime.backend


def on_tpu_host() -> bool:
    """True on a Cloud TPU VM, decided without importing torch_xla (that would grab the chips)."""
    if os.environ.get("PJRT_DEVICE", "").upper() == "TPU" or os.environ.get("TPU_NAME"):
        return True
    return bool(glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"))


def resolve_backend(name: str) -> str:
    if name not in BACKENDS:
        raise UserError(f"`runtime.backend` is {name!r}; choose one of: {', '.join(BACKENDS)}")
    if name == "auto":
        return "xla" if on_tpu_host() else "accelerate"
    return name
