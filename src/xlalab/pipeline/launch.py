"""Several data-parallel processes for one stage, started through Accelerate's launcher.

``runtime.processes: N`` (N > 1) makes a stage module (``python -m xlalab.cifar10.train``) start
itself N times through ``accelerate launch`` (torchrun underneath): gloo between processes on CPU,
NCCL on GPUs. The runner (pipeline/runner.py) asks here before it runs a stage; only stages that
train or predict (their Params read ``runtime``) are ever started more than once. A process
started by a launcher (``WORLD_SIZE`` is set: ours, or ``accelerate launch`` run by hand across
machines) never launches again.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

import pydantic

from ..engine.settings import Runtime, resolve_backend
from ..errors import UserError
from ..pipeline.contract import Stage
from ..pipeline.params import RUNTIME, describe_error, load_params

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
    machine
    (``command``: a script and its arguments, or ``-m module ...``). ``--multi_gpu`` is Accelerate's
    torchrun-based launcher, the one that starts several processes without MPI; on a host without
    GPUs the processes ask Accelerate for the CPU (runtime.make_backend), which then uses gloo."""
    args = [
        "--multi_gpu",
        "--num_processes",
        str(processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
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
    and return the exit status. None: run the stage here, in this process."""
    runtime = stage_runtime(stage, params_file)
    if runtime is None or runtime.processes == 1 or inside_launch():
        return None
    if resolve_backend(runtime.backend) == "xla":
        raise UserError(
            f"runtime.processes is {runtime.processes} with the xla backend, which already uses "
            "every device of the host in one process (SPMD); set runtime.processes: 1, or "
            "runtime.backend: accelerate"
        )
    command = [*stage.command, *_options(argv)]
    return launch(runtime.processes, command, cpu_threads=runtime.cpu_threads)


def _options(argv: Sequence[str] | None) -> list[str]:
    """The command line's options (``--params``, ``-v``), without the project a shared module's
    command names (``stage.command`` adds it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    return [a for i, a in enumerate(args) if a.startswith("-") or (i and args[i - 1] == "--params")]
