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
import importlib.util
import logging
import os
import platform
from pathlib import Path
from typing import Literal

import pydantic
from pydantic import Field

from ..errors import UserError

logger = logging.getLogger(__name__)


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
    (``resolve_backend`` and ``resolve_precision`` below say what ``auto`` means on this host)."""

    backend: Literal["auto", "xla", "accelerate"]  # auto: xla on a TPU host, else accelerate
    # Autocast: bf16 (TPU, CUDA GPUs from Ampere on, CPU), fp16 with loss scaling (CUDA only), or
    # no (float32). auto: bf16 where the device computes in it natively, fp16 on older CUDA GPUs
    # (T4, P100, V100), no on a CPU.
    precision: Literal["no", "bf16", "fp16", "auto"]
    # torch.compile of the model on the accelerate backend (the xla backend always compiles).
    compile: bool
    # torch_xla's persistent compilation cache in .xla_cache/ (xla backend): graphs compiled by
    # one stage or run, looked up by the next.
    xla_cache: bool
    # torch's intra-op threads on the host (torch.set_num_threads), per process; None: torch's
    # default (one per core; under several processes the launcher sets one each)
    cpu_threads: int | None = Field(ge=1)
    # Data-parallel processes on this machine (accelerate backend): `python -m xlalab` starts them
    # through Accelerate's launcher (pipeline/launch.py). The xla backend instead uses every device
    # of the host in one process through SPMD.
    processes: int = Field(ge=1)

    @pydantic.field_validator("precision", mode="before")
    @classmethod
    def _unquoted_no(cls, value):
        # YAML 1.1 (PyYAML) reads an unquoted `no`, as `dvc exp run -S runtime.precision=no` may
        # write it, as false
        return "no" if value is False else value


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
XLA_CACHE = Path(".xla_cache")  # runtime.xla_cache: beside params.yaml; ignored by git and DVC


def on_tpu_host() -> bool:
    """True on a Cloud TPU VM, decided without importing torch_xla (that would grab the chips)."""
    if os.environ.get("PJRT_DEVICE", "").upper() == "TPU" or os.environ.get("TPU_NAME"):
        return True
    return bool(glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"))


def xla_installed() -> bool:
    """Whether torch_xla can be imported here, found without importing it. It publishes wheels for
    Linux x86-64 only, so the locks install it there alone."""
    try:
        return importlib.util.find_spec("torch_xla") is not None
    except (ImportError, ValueError):
        return False


def resolve_backend(name: str) -> str:
    if name not in BACKENDS:
        raise UserError(f"`runtime.backend` is {name!r}; choose one of: {', '.join(BACKENDS)}")
    if name == "xla" and not xla_installed():
        raise UserError(
            f"runtime.backend is xla but torch_xla is not installed ({platform.system()} "
            f"{platform.machine()}; it has wheels for Linux x86-64 only); set runtime.backend: "
            "auto or accelerate, or on Linux x86-64 run `make venv` (`make venv EXTRAS=tpu` on a "
            "TPU VM)"
        )
    if name == "auto":
        if on_tpu_host() and not xla_installed():
            logger.warning(
                "a TPU host without torch_xla: training with Accelerate on the CPU; "
                "`make venv EXTRAS=tpu` installs torch_xla and the TPU runtime"
            )
        return "xla" if on_tpu_host() and xla_installed() else "accelerate"
    return name


def resolve_precision(asked: str, device: str, *, native_bf16: bool, configured: str = "") -> str:
    """The precision a backend on ``device`` ("cpu", "cuda", "tpu") trains in when
    ``runtime.precision`` is ``asked``. ``native_bf16``: the device computes in bf16 natively (a
    CUDA GPU of compute capability 8.0 or more). ``configured``: the mixed precision the user's
    ``accelerate config`` asks for (``accelerate launch`` hands it over in
    ACCELERATE_MIXED_PRECISION), which ``auto`` follows. A precision the device cannot run is one
    line naming what can."""
    if asked == "auto":
        if configured in ("bf16", "fp16"):
            asked = configured  # checked below like an asked one
        elif device == "cuda":
            return "bf16" if native_bf16 else "fp16"
        else:
            return "bf16" if device == "tpu" else "no"
    if asked == "fp16" and device != "cuda":
        raise UserError(
            f"runtime.precision is fp16, which needs a CUDA GPU (its loss scaling is CUDA's), but "
            f"this run is on {device}; set runtime.precision: auto (bf16 on a TPU, none on a CPU), "
            "bf16 or no"
        )
    if asked == "bf16" and device == "cuda" and not native_bf16:
        raise UserError(
            "runtime.precision is bf16, but this GPU has no bf16 arithmetic (compute capability "
            "below 8.0: T4, P100, V100); set runtime.precision: fp16 (with loss scaling) or auto"
        )
    return asked


def resolve_xla_precision(asked: str, device: str) -> str:
    """``resolve_precision`` for the xla backend: bf16 autocast on a TPU (``auto``) or wherever it
    is asked (XLA:CPU too); fp16 needs the loss scaling only the accelerate backend has."""
    if asked == "fp16":
        raise UserError(
            "runtime.precision is fp16, which runs on the accelerate backend with a CUDA GPU; "
            "with the xla backend set runtime.precision: bf16, auto or no"
        )
    if asked == "auto":
        return "bf16" if device == "tpu" else "no"
    return asked


def check_batch_split(batch_size: int, devices: int, processes: int, what: str) -> None:
    """A training batch must split evenly over the devices, so the global batch stays what params
    say. Also checked before several processes are started (pipeline/launch.py), so the problem is
    said once rather than by every process."""
    if batch_size % devices:
        raise UserError(
            f"{what} {batch_size} does not split evenly over {devices} devices "
            f"({processes} processes); make it a multiple of {devices}"
        )
