"""Several data-parallel processes for one stage, started through Accelerate's launcher.

``runtime.processes: N`` (N > 1) makes a stage module (``python -m xlalab.cifar10.train``) start
itself N times through ``accelerate launch`` (torchrun underneath): gloo between processes on CPU,
NCCL on GPUs. The runner (pipeline/runner.py) asks here before it runs a stage; only stages that
train or predict (their Params read ``runtime``) are ever started more than once. A process
started by a launcher (``WORLD_SIZE`` is set: ours, or ``accelerate launch`` run by hand across
machines) never launches again.

What params set is passed on (the number of processes, their threads); the rest of the user's
``accelerate config`` (``accelerate launch`` reads it) stays in force. Precision and compile are
set by each process's backend from params, which win where they name a value (docs/scaling.md).
Problems that every process would meet alike (a batch that does not split over the processes, a
precision the device lacks) are checked here first, so they are said once.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

import pydantic

from ..engine.settings import (
    Params,
    Runtime,
    TrainConfig,
    check_batch_split,
    on_tpu_host,
    resolve_backend,
    resolve_precision,
    resolve_xla_precision,
)
from ..errors import UserError
from ..pipeline.contract import Stage
from ..pipeline.params import RUNTIME, describe_error, load_params, parse

logger = logging.getLogger(__name__)


def stage_runtime(stage: Stage, params_file: str) -> Runtime | None:
    """The runtime section a stage reads, checked; None for stages that do not read it."""
    if not stage.reads_runtime:
        return None
    try:
        return Runtime.model_validate(load_params(params_file).get(RUNTIME) or {})
    except pydantic.ValidationError as e:
        raise UserError(describe_error(e, RUNTIME)) from None  # names the key as runtime.<key>


def inside_launch() -> bool:
    return "WORLD_SIZE" in os.environ


def launcher_args(
    processes: int, command: Sequence[str], *, port: int = 0, cpu_threads: int | None = None
) -> list[str]:
    """``accelerate launch`` arguments that start ``processes`` copies of ``command`` on this
    machine (``command``: a script and its arguments, or ``-m module ...``). Only what params set:
    mixed precision, dynamo and the rest come from the user's accelerate config, if any, and each
    process's backend decides them from params (runtime.make_backend). ``--multi_gpu`` is
    Accelerate's torchrun-based launcher, the one that starts several processes without MPI; on a
    host without GPUs the processes ask Accelerate for the CPU, which then uses gloo."""
    args = [
        "--multi_gpu",
        "--num_processes",
        str(processes),
        "--num_machines",
        "1",
        "--main_process_port",
        str(port),
    ]  # 0: a free port, so parallel experiments do not collide
    if cpu_threads is not None:
        args += ["--num_cpu_threads_per_process", str(cpu_threads)]
    return args + list(command)


def launch(processes: int, command: Sequence[str], *, cpu_threads: int | None = None) -> int:
    """Run ``command`` in ``processes`` processes and wait for them; the exit status (0: all ended
    well)."""
    os.environ.setdefault(
        "USE_TORCH_XLA", "0"
    )  # before accelerate is imported (see xlalab/__init__.py)
    from accelerate.commands.launch import launch_command, launch_command_parser
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    args = launch_command_parser().parse_args(
        launcher_args(processes, command, cpu_threads=cpu_threads)
    )
    try:
        launch_command(args)
    except ChildFailedError as e:
        # Each process has printed its own error; pass on the first failure's status (2: UserError).
        codes = [f.exitcode for f in e.failures.values()]
        return next((c for c in codes if c and c > 0), 1)
    return 0


def start_processes_if_asked(
    stage: Stage, params_file: str, argv: Sequence[str] | None
) -> int | None:
    """When the stage asks for several processes and this is not one of them yet: start them, wait,
    and return the exit status. None: run the stage here, in this process. Either way a runtime
    this machine cannot run (torch_xla missing, a precision the device lacks) stops here, before
    the stage reads its inputs or starts processes."""
    runtime = stage_runtime(stage, params_file)
    if runtime is None or inside_launch():
        return None
    spmd = (
        f"runtime.processes is {runtime.processes} with the xla backend, which already uses "
        "every device of the host in one process (SPMD); set runtime.processes: 1, or "
        "runtime.backend: accelerate"
    )
    if runtime.processes > 1 and runtime.backend == "xla":
        raise UserError(spmd)
    backend = check_runtime(runtime)
    if runtime.processes == 1:
        return None
    if backend == "xla":
        raise UserError(spmd)
    check_batches_split(stage, params_file, runtime.processes)
    command = [*stage.command, *_options(argv)]
    return launch(runtime.processes, command, cpu_threads=runtime.cpu_threads)


def check_runtime(runtime: Runtime) -> str:
    """The backend ``runtime`` resolves to here, once its precision is known to run on this
    machine (each process's backend resolves both again, with the device it gets)."""
    backend = resolve_backend(runtime.backend)
    if backend == "xla":
        resolve_xla_precision(runtime.precision, "tpu" if on_tpu_host() else "cpu")
        return backend
    import torch

    cuda = torch.cuda.is_available()
    resolve_precision(
        runtime.precision,
        "cuda" if cuda else "cpu",
        native_bf16=cuda and torch.cuda.is_bf16_supported(including_emulation=False),
        configured=os.environ.get("ACCELERATE_MIXED_PRECISION", "").lower(),
    )
    return backend


def check_batches_split(stage: Stage, params_file: str, processes: int) -> None:
    """Every training batch of the stage splits over ``processes`` processes (one device each),
    checked once here rather than by every process after the launch."""
    config = parse(stage.params, load_params(params_file), stage.project)
    for key, train in _train_configs(config, stage.project):
        check_batch_split(train.batch_size, processes, processes, f"{key}.batch_size")


def _train_configs(config: Params, prefix: str = "") -> list[tuple[str, TrainConfig]]:
    """Every loop section (``train``, ``mlp.train``, ...) in a stage's parsed params."""
    found = []
    for name in type(config).model_fields:
        value = getattr(config, name)
        if isinstance(value, TrainConfig):
            found.append((stage_key(prefix, name), value))
        elif isinstance(value, Params) and name != RUNTIME:
            found += _train_configs(value, stage_key(prefix, name))
    return found


def stage_key(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _options(argv: Sequence[str] | None) -> list[str]:
    """The command line's options (``--params``, ``-v``), without the project a shared module's
    command names (``stage.command`` adds it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    return [a for i, a in enumerate(args) if a.startswith("-") or (i and args[i - 1] == "--params")]
