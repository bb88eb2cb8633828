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

A stage that ran on XLA also records what torch_xla compiled (graphs, seconds) and what its
persistent compilation cache (``runtime.xla_cache``) gave back, under ``xla``, and says it in the
same log line: ``lstm train: 41.0 s, peak 1,234 MB; XLA: 14 graphs compiled in 9.3 s, 0 from the
cache``.
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


# torch_xla's counters (torch_xla.debug.metrics): a graph compiled because neither the process's
# memory nor the persistent cache held it; one loaded from the persistent cache; one the cache held
# but torch_xla could not load (it then compiles it, counted in the first).
XLA_COUNTERS = {
    "graphs_compiled": "UncachedCompile",
    "graphs_from_cache": "PersistentCacheHit",
    "graphs_not_loadable": "PersistentCacheDeserializeFailure",
}


def xla_counts() -> dict[str, float]:
    """torch_xla's compile counters and compile seconds in this process so far; all 0 when it has
    not been imported (it is never imported here)."""
    met = sys.modules.get("torch_xla.debug.metrics")
    if met is None:
        return dict.fromkeys([*XLA_COUNTERS, "compile_seconds"], 0)
    counts = {key: int(met.counter_value(name) or 0) for key, name in XLA_COUNTERS.items()}
    compile_time = met.metric_data("CompileTime")  # (count, total nanoseconds, samples) or None
    return {**counts, "compile_seconds": compile_time[1] / 1e9 if compile_time else 0.0}


def xla_compilation(before: dict[str, float]) -> dict[str, float] | None:
    """What torch_xla compiled since ``before`` (``xla_counts()`` at the stage's start); None when
    the stage ran nothing on XLA."""
    now = xla_counts()
    spent = {key: now[key] - before[key] for key in now}
    if not spent["graphs_compiled"] and not spent["graphs_from_cache"]:
        return None
    spent["compile_seconds"] = round(spent["compile_seconds"], 1)
    return spent


def measure(started: float, peaks: list[float], xla: dict | None = None) -> dict:
    """The cost file's content: seconds since ``started`` (wall clock), the summed peak memory of
    ``peaks`` (one per process, in MB), how many processes ran and, for a stage that ran on XLA,
    what it compiled (``xla_compilation``)."""
    spent = {
        "seconds": round(time.time() - started, 1),
        "peak_memory_mb": round(sum(peaks)),
        "processes": len(peaks),
    }
    return {**spent, "xla": xla} if xla else spent


def describe(project: str, stage: str, cost: dict) -> str:
    """``cifar10 train: 54.2 s, peak 1,234 MB`` (``... over 2 processes`` for a launch; ``; XLA: 14
    graphs compiled in 9.3 s, 3 from the cache`` for a stage that ran on XLA)."""
    line = f"{project} {stage}: {cost['seconds']:,.1f} s, peak {cost['peak_memory_mb']:,} MB"
    if cost["processes"] > 1:
        line += f" over {cost['processes']} processes"
    xla = cost.get("xla")
    if xla:
        line += (
            f"; XLA: {xla['graphs_compiled']} graphs compiled in {xla['compile_seconds']:.1f} s, "
            f"{xla['graphs_from_cache']} from the cache"
        )
        if xla["graphs_not_loadable"]:
            line += f" ({xla['graphs_not_loadable']} found there but not loadable by torch_xla)"
    return line
