"""Two runtime backends behind one small abstract interface, so the training loop is written once.

* ``XlaBackend``: native torch_xla (TPU, or CPU with ``PJRT_DEVICE=CPU``): steps compiled with
  ``torch_xla.compile``, values read through step closures; several devices of a host as one SPMD
  program over a 1-D ``data`` mesh (the compiler inserts the gradient all-reduce).
* ``AccelerateBackend``: HuggingFace Accelerate on CPU, CUDA or several processes
  (``runtime.processes``, started by pipeline/launch.py, or ``accelerate launch`` across machines).

Precision (``runtime.precision``) and ``torch.compile`` (``runtime.compile``) are the backends'
business: the loop enters ``Backend.autocast`` and calls ``Backend.backward``. A backend lacking a
method fails when built. Projects never import torch_xla or accelerate; they ask ``make_backend``.
"""

from __future__ import annotations

import abc
import contextlib
import itertools
import logging
import os
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserError
from .settings import (
    XLA_CACHE,
    Runtime,
    check_batch_split,
    resolve_backend,
    resolve_precision,
    resolve_xla_precision,
)

logger = logging.getLogger(__name__)


def make_backend(runtime: Runtime) -> Backend:
    """Build the backend that ``runtime`` (the params.yaml section) asks for."""
    if runtime.cpu_threads is not None:
        torch.set_num_threads(runtime.cpu_threads)
    name = resolve_backend(runtime.backend)
    if runtime.processes > 1 and "WORLD_SIZE" not in os.environ:
        raise UserError(
            f"runtime.processes is {runtime.processes} but this process was not started by a "
            "launcher; run the stage with `dvc repro` (or `python -m xlalab.<project>.<module>`), "
            "which starts the processes, or set runtime.processes: 1"
        )
    if name == "xla":
        if runtime.compile:
            logger.debug("runtime.compile: the xla backend compiles every step anyway")
        return XlaBackend(
            precision=runtime.precision, cache=XLA_CACHE if runtime.xla_cache else None
        )
    return AccelerateBackend(precision=runtime.precision, compile=runtime.compile)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Backend(abc.ABC):
    """The interface the loop is written against. Abstract: a subclass that leaves out one of the
    methods below cannot be built (TypeError), rather than failing in the middle of training."""

    name: str
    device: torch.device
    device_type: str  # "cpu", "cuda", "tpu", ...
    num_replicas: int  # data-parallel processes: each reads its own share of every batch
    device_count: int  # devices taking part, over all processes (SPMD: several in one process)
    rank: int
    is_main: bool
    precision: str  # what runtime.precision resolved to here: "no", "bf16" or "fp16"

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "device_type": self.device_type,
            "device_count": self.device_count,
            "processes": self.num_replicas,
            "precision": self.precision,
        }

    def local_batch_size(self, batch_size: int, what: str, exact: bool = True) -> int:
        """This process's share of a global batch: training (``exact``) needs an even split over
        the devices; evaluation rounds up (its padded rows weigh nothing)."""
        if exact:
            check_batch_split(batch_size, self.device_count, self.num_replicas, what)
        per_device = -(-batch_size // self.device_count)
        return per_device * (self.device_count // self.num_replicas)

    # set-up
    @abc.abstractmethod
    def seed(self, seed: int) -> None: ...
    @abc.abstractmethod
    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module: ...
    @abc.abstractmethod
    def prepare_optimizer(self, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer: ...
    @abc.abstractmethod
    def unwrap(self, model: torch.nn.Module) -> torch.nn.Module: ...
    @abc.abstractmethod
    def device_loader(self, batches: Iterable[dict]) -> Iterable[dict]: ...
    @abc.abstractmethod
    def compile_step(self, fn: Callable, name: str, max_graphs: int) -> Callable: ...
    # a value the loop changes between steps (the learning rate): made once, then updated in place
    @abc.abstractmethod
    def hyperparameter(self, value: float) -> float | torch.Tensor: ...
    @abc.abstractmethod
    def update_hyperparameter(
        self, holder: float | torch.Tensor, value: float
    ) -> float | torch.Tensor: ...
    # inside a step
    @abc.abstractmethod
    def autocast(self) -> contextlib.AbstractContextManager: ...
    @abc.abstractmethod
    def no_sync(self, model: torch.nn.Module, skip: bool) -> contextlib.AbstractContextManager: ...
    @abc.abstractmethod
    def backward(self, loss: torch.Tensor) -> None: ...
    @abc.abstractmethod
    def clip_grad_norm(self, model: torch.nn.Module, max_norm: float) -> None: ...
    @abc.abstractmethod
    def optimizer_step(self, optimizer: torch.optim.Optimizer) -> None: ...
    # values and collectives
    @abc.abstractmethod
    def reduce_sum(self, t: torch.Tensor) -> torch.Tensor: ...
    @abc.abstractmethod
    def gather(self, t: torch.Tensor) -> torch.Tensor: ...
    @abc.abstractmethod
    def on_host(self, fn: Callable[..., None], *tensors: torch.Tensor) -> None: ...
    @abc.abstractmethod
    def sync(self) -> None: ...
    @abc.abstractmethod
    def barrier(self, tag: str) -> None: ...
    def compile_count(self) -> int | None:
        return None


class AccelerateBackend(Backend):
    name = "accelerate"

    def __init__(self, precision: str = "no", compile: bool = False, cpu: bool = False):
        """``cpu``: the CPU even where CUDA sees a GPU. Without CUDA it is always the CPU: on a
        Mac, Accelerate would pick MPS, which no project here has been measured on."""
        os.environ["USE_TORCH_XLA"] = "0"  # must be set before accelerate is imported
        from accelerate import Accelerator
        from accelerate.state import AcceleratorState

        cuda = torch.cuda.is_available() and not cpu
        self.precision = resolve_precision(
            precision,
            "cuda" if cuda else "cpu",
            native_bf16=cuda and torch.cuda.is_bf16_supported(including_emulation=False),
            # `accelerate launch` passes on the mixed precision of the user's accelerate config
            configured=os.environ.get("ACCELERATE_MIXED_PRECISION", "").lower(),
        )
        # Accelerator state is a process-wide singleton; a new backend (tests build several)
        # must be free to choose its own precision. The distributed set-up is kept.
        AcceleratorState._reset_state(reset_partial_state=False)
        # fp16: Accelerate scales the loss (backward) and unscales before clipping and stepping.
        # compile: Accelerate compiles the model in prepare_model (TorchDynamo, inductor); left
        # off, the dynamo backend of the user's accelerate config, if any, applies.
        self.acc = Accelerator(
            mixed_precision=self.precision,
            cpu=not cuda,
            dynamo_backend="inductor" if compile else None,
        )
        if self.acc.device.type == "xla":
            # accelerate was imported (by transformers, say) before xlalab could opt it out of XLA
            raise UserError(
                "runtime.backend is accelerate but Accelerate picked the XLA device, because it "
                "was imported before xlalab; set USE_TORCH_XLA=0 in the environment, or use "
                "runtime.backend: xla"
            )
        self.compiled = self.acc.state.dynamo_plugin.backend.value != "NO"
        self.device = self.acc.device
        self.device_type = self.device.type
        self.num_replicas = self.acc.num_processes
        self.device_count = self.num_replicas  # one device per process
        self.rank = self.acc.process_index
        self.is_main = self.acc.is_main_process

    def describe(self):
        return {**super().describe(), "compile": self.compiled}

    def seed(self, seed: int) -> None:
        seed_everything(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)

    def prepare_model(self, model):
        return self.acc.prepare_model(model)

    def prepare_optimizer(self, optimizer):
        return self.acc.prepare_optimizer(optimizer)

    def unwrap(self, model):
        # the module itself, compiled or not, so its state dict has the module's own keys
        return self.acc.unwrap_model(model, keep_torch_compile=False)

    def device_loader(self, batches):
        non_blocking = self.device.type == "cuda"
        for batch in batches:
            yield {k: v.to(self.device, non_blocking=non_blocking) for k, v in batch.items()}

    def compile_step(self, fn, name, max_graphs):
        return fn  # eager

    def hyperparameter(self, value):
        return value  # eager steps read a Python float at no cost

    def update_hyperparameter(self, holder, value):
        return value

    def autocast(self):
        return self.acc.autocast()

    def no_sync(self, model, skip):
        return (
            self.acc.no_sync(model) if skip and self.num_replicas > 1 else contextlib.nullcontext()
        )

    def backward(self, loss):
        self.acc.backward(loss)

    def clip_grad_norm(self, model, max_norm):
        self.acc.clip_grad_norm_(model.parameters(), max_norm)

    def optimizer_step(self, optimizer):
        optimizer.step()

    def reduce_sum(self, t):
        return self.acc.reduce(t, reduction="sum") if self.num_replicas > 1 else t

    def gather(self, t):
        return self.acc.gather(t) if self.num_replicas > 1 else t

    def on_host(self, fn, *tensors):
        fn(*(t.detach().cpu() for t in tensors))

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def barrier(self, tag):
        self.acc.wait_for_everyone()


class XlaBackend(Backend):
    name = "xla"

    def __init__(self, precision: str = "no", cache: Path | None = None):
        """``cache``: the folder of torch_xla's persistent compilation cache (None: off)."""
        try:
            import torch_xla
            import torch_xla.core.xla_model as xm
            import torch_xla.debug.metrics as met
            import torch_xla.distributed.parallel_loader as pl
            import torch_xla.runtime as xr
        except ImportError as e:  # resolve_backend has checked it is installed: it is broken
            raise UserError(
                f"runtime.backend is xla but torch_xla does not import ({e}); "
                "run `make venv`, or set runtime.backend: accelerate"
            ) from None
        resolve_xla_precision(precision, "")  # fp16 stops here, before the device is set up
        self._xla, self._xm, self._met, self._pl, self._xr = torch_xla, xm, met, pl, xr
        self.cache = None
        if cache is not None:
            # Only before the first graph of the process is compiled; a test process that has
            # compiled already runs without it.
            if torch_xla._XLAC._xla_computation_cache_is_initialized():
                logger.debug("XLA's compilation cache is already set up: %s is not used", cache)
            else:
                cache.mkdir(parents=True, exist_ok=True)
                xr.initialize_cache(str(cache.resolve()), readonly=False)
                self.cache = cache
        self.mesh = None
        devices = xr.global_runtime_device_count()
        if devices > 1 and not xr.is_spmd():
            # Every device of the host in this one process: torch_xla's recommended data parallelism
            # for pods (torch_xla.launch's per-device processes deadlock in collectives on CPU).
            # Must come before any tensor reaches the device; use_spmd replicates earlier ones.
            xr.use_spmd()
        if xr.is_spmd():
            import torch_xla.distributed.spmd as xs

            self._xs = xs
            self.mesh = xs.Mesh(np.arange(devices), (devices,), ("data",))
        self.device = torch_xla.device()  # under SPMD the one virtual device standing for all
        self.device_type = (xr.device_type() or "cpu").lower()  # None before a device is set up
        self.precision = resolve_xla_precision(precision, self.device_type)
        self.num_replicas = xr.world_size()  # processes: 1 under SPMD
        self.device_count = devices if self.mesh is not None else self.num_replicas
        self.rank = xr.global_ordinal()
        self.is_main = xm.is_master_ordinal(local=False)

    def describe(self):
        return {**super().describe(), "spmd": self.mesh is not None}

    def seed(self, seed: int) -> None:
        seed_everything(seed)
        self._xla.manual_seed(seed)

    def prepare_model(self, model):
        return model.to(self.device)  # before the optimizer is built, as XLA requires

    def prepare_optimizer(self, optimizer):
        return optimizer

    def unwrap(self, model):
        return model

    def device_loader(self, batches):
        # Moves batches to the device on background threads and marks a step per batch.
        if self.mesh is None:
            return self._pl.MpDeviceLoader(batches, self.device)
        # SPMD: split every tensor of the batch along its first (batch) dimension over the mesh;
        # the other dimensions stay whole. The spec depends on each tensor's rank, so it is read
        # off a first batch (``batches`` is a data.Batches: it can be iterated again).
        first = next(iter(batches), None)
        if first is None:
            return iter(())
        sharding = {
            k: self._xs.ShardingSpec(self.mesh, ("data",) + (None,) * (v.dim() - 1))
            for k, v in first.items()
        }
        return self._pl.MpDeviceLoader(batches, self.device, input_sharding=sharding)

    def compile_step(self, fn, name, max_graphs):
        # max_different_graphs turns an accidental recompile (a new shape, a host value baked
        # into the graph) into an error instead of a silent slowdown. It counts the graphs traced
        # by the calls after the first: the first call also traces one-time set-up whose ops are
        # not part of later graphs (an optimizer's state at its first step; torch_xla's scan
        # capturing its loop body with AOTAutograd, core/recurrent.py), and the checker compares
        # traced ops, not compiled graphs. The compile-count tests watch the first call too.
        first = self._xla.compile(fn, full_graph=True, name=name)
        checked = self._xla.compile(fn, full_graph=True, name=name, max_different_graphs=max_graphs)
        calls = itertools.count()
        return lambda *args, **kwargs: (checked if next(calls) else first)(*args, **kwargs)

    def hyperparameter(self, value):
        # Device data, so the compiled step reads the current value instead of baking it in.
        # A Python float reaches the graph as device data too, except when it is exactly 0 or
        # +-1 ("special scalars"): then it becomes a constant and a new graph. AdamW's decay
        # factor 1 - lr * weight_decay rounds to 1.0 in float32 once a schedule takes lr below
        # ~3e-8 / weight_decay, so cosine runs recompiled near their end. Shape [1], not []:
        # a 0-d tensor of value 0 or 1 copied to the device is turned into a constant as well.
        # requires_grad: torch.optim.SGD multiplies by a tensor lr in the graph only when it
        # requires grad; otherwise it calls .item(), a host sync in the middle of the step.
        return torch.tensor([value], dtype=torch.float32, device=self.device, requires_grad=True)

    def update_hyperparameter(self, holder, value):
        with torch.no_grad():  # a host-to-device copy of one float; it adds no graph
            holder.copy_(torch.tensor([value], dtype=holder.dtype))
        return holder

    def autocast(self):
        # torch_xla.amp.autocast is TPU-only and fails on XLA:CPU; torch.autocast works on both.
        return torch.autocast("xla", dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def no_sync(self, model, skip):
        return contextlib.nullcontext()  # gradients are all-reduced in optimizer_step only

    def backward(self, loss):
        loss.backward()

    def clip_grad_norm(self, model, max_norm):
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)  # torch_xla makes it sync-free

    def optimizer_step(self, optimizer):
        if self.num_replicas > 1:
            self._xm.optimizer_step(optimizer)  # all-reduce gradients, then step
        else:
            optimizer.step()

    def reduce_sum(self, t):
        return self._xm.all_reduce("sum", t) if self.num_replicas > 1 else t

    def gather(self, t):
        return self._xm.all_gather(t, dim=0) if self.num_replicas > 1 else t

    def on_host(self, fn, *tensors):
        # Runs after the step has executed, so logging never forces an early execution.
        self._xm.add_step_closure(lambda *ts: fn(*(t.cpu() for t in ts)), args=tensors)

    def sync(self):
        self._xla.sync()
        self._xm.wait_device_ops()

    def barrier(self, tag):
        if self.num_replicas > 1:
            self._xm.rendezvous(tag)

    def compile_count(self):
        return int(self._met.counter_value("UncachedCompile") or 0)
