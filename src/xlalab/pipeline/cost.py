"""What a stage cost: its wall time and peak resident memory, recorded by the runner in a small
JSON file beside the stage's outputs (``timing/cost/<project>-<stage>.json``, a DVC metric, so
``dvc metrics show`` lists it) and in the stage's last log lines: ``cifar10 train: 54.2 s, peak
1,234 MB``.

Seconds run from the start of the stage's command (the launcher's start, for a stage run as several
processes) to the moment its outputs are ready; in-process calls of ``run_stage`` count from the
call. Peak memory is the peak resident set of the stage's process, summed over every process of a
launch (each measures its own; the first gathers them and writes the file): on a machine that
holds them all, about what the stage needs at once. Not counted: the launcher process, which
imports the stage's module and waits, and worker processes a stage might start (none does: the
forest and the BLAS libraries use threads, which are counted). Timings differ from run to run; the
projects' own metrics never hold them, so comparing metrics stays exact, and the cost files are
DVC-cached (shared by ``dvc push``/``pull``), not git-tracked, so a re-run leaves ``git status``
clean.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

BYTES_PER_MB = 1_000_000
# ru_maxrss is in KiB on Linux, in bytes on macOS.
_MAXRSS_BYTES = 1 if sys.platform == "darwin" else 1024


def command_started() -> float:
    """The wall-clock time at which this stage's command started: this process's start, or its
    parent's in a process that a launcher started (``WORLD_SIZE`` set; the launcher's torchrun
    starts each process directly)."""
    pid = os.getppid() if "WORLD_SIZE" in os.environ else os.getpid()
    return time.time() - seconds_since_start(pid)


def seconds_since_start(pid: int) -> float:
    """How long process ``pid`` has run. On Linux from /proc, to the clock tick (psutil's start
    time rests on a boot time rounded to the second)."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        ticks = int(stat.read_text().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - ticks / os.sysconf("SC_CLK_TCK")
    import psutil

    return time.time() - psutil.Process(pid).create_time()


def peak_memory_mb() -> float:
    """This process's peak resident memory in MB (10^6 bytes): on Linux its VmHWM, the high-water
    mark of its own memory since it started. (getrusage's ru_maxrss would also count the image of
    the process that forked it, dvc or pytest, which Linux carries across exec.)"""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / BYTES_PER_MB  # in kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _MAXRSS_BYTES / BYTES_PER_MB


def every_process(value: float) -> list[float]:
    """``value`` from every process of a launch, in rank order (a collective: every process must
    call it); ``[value]`` without one. torch.distributed is only set up (and imported) when the
    stage trained with several processes."""
    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return [value]
    gathered: list[float] = [0.0] * dist.get_world_size()
    dist.all_gather_object(gathered, value)  # fills every slot
    return [float(v) for v in gathered]


def measure(started: float, peaks: list[float]) -> dict:
    """The cost file's content: seconds since ``started`` (wall clock), the summed peak memory of
    ``peaks`` (one per process, in MB) and how many processes ran."""
    return {
        "seconds": round(time.time() - started, 1),
        "peak_memory_mb": round(sum(peaks)),
        "processes": len(peaks),
    }


def describe(project: str, stage: str, cost: dict) -> str:
    """``cifar10 train: 54.2 s, peak 1,234 MB`` (``... over 2 processes`` for a launch)."""
    line = f"{project} {stage}: {cost['seconds']:,.1f} s, peak {cost['peak_memory_mb']:,} MB"
    if cost["processes"] > 1:
        line += f" over {cost['processes']} processes"
    return line
