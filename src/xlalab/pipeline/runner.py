"""The stage runner: what every stage module's ``__main__`` block calls.

``python -m xlalab.cifar10.train`` runs ``cifar10/train.py``, whose last line hands its stage
function to ``main`` here; ``main`` decides whether to start several processes first
(pipeline/launch.py). ``run_stage`` parses the stage's params once, checks its inputs, and
calls the function with (params, paths) whose outputs are temporary siblings of the real ones
(``paths.staged`` names them): they are moved into place only when the stage succeeds, so a failed
or interrupted stage leaves the previous outputs as they were. The exception is DVCLive's folder
(contract.WRITTEN_IN_PLACE), written at its real path so that its curves can be watched during
training; the previous one is kept aside meanwhile and put back if the stage fails. An evaluate
stage returns its result, a ``Report``, which the runner writes (pipeline/report.py): the headline
numbers to the metrics file, the rest to the details file, their times and speeds to the timing
file, every number rounded. With the outputs it writes what the stage cost (seconds, peak memory;
pipeline/cost.py) to
``timing/cost/<project>-<stage>.json``, and says it in the log.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

from ..errors import UserError
from ..files import atomic_path, written_in_place
from ..pipeline import cost, launch, log
from ..pipeline.contract import (
    WRITTEN_IN_PLACE,
    Paths,
    Project,
    Stage,
    StageFunction,
    built_projects,
    load_project,
)
from ..pipeline.params import load_params, parse
from ..pipeline.report import publish

logger = logging.getLogger(__name__)


def parse_args(
    project: Project | None, stage_name: str, module: str, argv: list[str] | None
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=f"The {stage_name} stage of "
        + (f"{project.name} (dvc.yaml: {project.name}-{stage_name})." if project else "a project."),
    )
    if project is None:  # a module shared by several projects: the command names the project
        parser.add_argument("project", choices=shared_by(module), help="the project to run it for")
    parser.add_argument(
        "--params", default="params.yaml", help="params file (default: params.yaml)"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more messages")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="warnings and errors only")
    return parser.parse_args(argv)


def shared_by(module: str) -> list[str]:
    """The projects whose stage runs in ``module`` (a shared family's stage module)."""
    return [p.name for p in built_projects() for s in p.stages if s.module == module]


def main(
    function: StageFunction, project: Project | None = None, argv: list[str] | None = None
) -> NoReturn:
    """Run the stage ``function`` (named like its stage) as a command: what every stage module's
    ``__main__`` block calls. ``project``: None for a module that several projects share, whose
    first argument then names the project (``python -m xlalab.textclf.train imdb``).

    With ``runtime.processes: N`` (N > 1), a stage that trains or predicts starts itself N times
    through Accelerate's launcher (pipeline/launch.py) and waits for them. Exit 0 when its outputs
    are in place, 2 with one line naming the problem when the input or the params are wrong, 130
    when interrupted."""
    stage_name = function.__name__
    module = function.__module__ if function.__module__ != "__main__" else _main_module()
    args = parse_args(project, stage_name, module, argv)
    project = project or load_project(args.project)
    log.setup(args.verbose - args.quiet)
    try:
        status = launch.start_processes_if_asked(project.stage(stage_name), args.params, argv)
    except UserError as e:
        logger.error("%s %s: %s", project.name, stage_name, e)
        sys.exit(2)
    if status is None:
        status = run_as_command(project, stage_name, function, args.params)
    sys.exit(status)


def _main_module() -> str:
    """The dotted name ``python -m`` ran (``__main__``'s spec), for messages and relaunching."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return spec.name if spec is not None else "__main__"


def run_as_command(project: Project, stage_name: str, function: StageFunction, params: str) -> int:
    """``run_stage`` with a command's manners: the outputs written, then the verdict, as the log's
    last lines; a UserError as one line and status 2."""
    try:
        with log.lines_said_last() as last_lines:
            outputs = run_stage(project, stage_name, params, function, cost.command_started())
    except UserError as e:
        logger.error("%s %s: %s", project.name, stage_name, e)
        return 2
    except KeyboardInterrupt:
        logger.error(
            "%s %s: interrupted; `dvc repro` resumes training from the last checkpoint",
            project.name,
            stage_name,
        )
        return 130
    for path in outputs:
        logger.info("wrote %s", path)
    cost_file = project.paths.cost(stage_name)
    if cost_file in outputs:  # the first process of several says it for all of them
        logger.info(cost.describe(project.name, stage_name, json.loads(cost_file.read_text())))
    for line in last_lines:
        logger.info(line)
    return 0


def run_stage(
    project: Project | str,
    stage_name: str,
    params: dict[str, Any] | str | Path = "params.yaml",
    function: StageFunction | None = None,
    started: float | None = None,
) -> list[Path]:
    """Run one stage: parse its params, write its outputs atomically, and with them its cost file.
    Returns the paths written, the cost file last (none in processes other than the first).
    ``function``: the stage's module's, by default. ``started``: when the stage began (wall clock,
    ``time.time()``; by default now), which its cost counts from."""
    started = time.time() if started is None else started
    project = load_project(project) if isinstance(project, str) else project
    stage = project.stage(stage_name)
    config = parse_stage_params(project, stage, params)
    check_inputs(project, stage)
    function = function or project.function(stage)
    if not log.is_main_process():
        _run_thrown_away(function, config, project.paths, stage)
        return []
    final = project.paths
    xla_before = cost.xla_counts()
    outputs = [getattr(final, name) for name in stage.outs]
    cost_file = final.cost(stage.name)
    # Folders this run creates for its outputs: a failed run removes them again if they stay empty.
    new_folders = sorted(
        {d for path in [*outputs, cost_file] for d in path.parents if not d.exists()},
        key=lambda d: len(d.parts),
        reverse=True,
    )
    try:
        with contextlib.ExitStack() as stack:
            # Entered first, so moved into place last: a cost file means every output is in place.
            cost_tmp = stack.enter_context(atomic_path(cost_file))
            staged = open_outputs(stack, stage, final)
            result = function(config, final.staging(staged))
            _check_written(result, staged, f"{project.name} {stage.name}")
            spent = cost.measure(
                started,
                cost.every_process(cost.peak_memory_mb()),
                cost.xla_compilation(xla_before),
            )
            cost_tmp.write_text(json.dumps(spent, indent=2) + "\n")
    except BaseException:
        for folder in new_folders:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    # Every process leaves together, once the outputs are in place: the launcher's success then
    # means the stage's success.
    _wait_for_other_processes()
    return [*outputs, cost_file]


def _check_written(result: Any, staged: dict[str, Path], stage: str) -> None:
    """An evaluate stage's Report written out (metrics, details, timing); every output there."""
    if "metrics" in staged:
        publish(result, staged["metrics"], staged["details"], staged["timing"], stage)
    for name, tmp in staged.items():
        if not tmp.exists():
            raise RuntimeError(f"{stage} did not write its output {name}")


def open_outputs(stack: contextlib.ExitStack, stage: Stage, final: Paths) -> dict[str, Path]:
    """The temporary sibling of each of the stage's outputs (by field), open on ``stack`` until
    the stage ends; those written in place (WRITTEN_IN_PLACE) are opened at their real path, with
    the previous ones kept aside, and are not in the result."""
    staged = {}
    for name in stage.outs:
        path = getattr(final, name)
        if name in WRITTEN_IN_PLACE:
            stack.enter_context(written_in_place(path))
        else:
            staged[name] = stack.enter_context(atomic_path(path, is_dir=not path.suffix))
    return staged


def parse_stage_params(project: Project, stage: Stage, params: dict[str, Any] | str | Path) -> Any:
    raw = params if isinstance(params, dict) else load_params(params)
    config = parse(stage.params, raw, project.name)
    known = {name for s in project.stages for name in s.params.model_fields}
    unknown = sorted(set(raw[project.name]) - known)
    if unknown:  # a typo in a key that only another stage would have read
        raise UserError(
            f"params.yaml has `{project.name}.{unknown[0]}`, which no stage reads; "
            "remove it or check its spelling"
        )
    return config


def check_inputs(project: Project, stage: Stage) -> None:
    for name in stage.inputs:
        path = getattr(project.paths, name)
        if not path.exists():
            maker = next(s for s in project.stages if name in s.outs)
            raise UserError(
                f"{path} is missing; run `dvc repro {project.name}-{maker.name}` (or "
                f"`python {' '.join(maker.command)}`) first"
            )


def _run_thrown_away(function: StageFunction, config: Any, final: Paths, stage: Stage) -> None:
    """One of several data-parallel processes, not the first: it computes what the main one does
    but its outputs go to a scratch folder that is thrown away, so it can never race the main
    process on the real paths (nor leave a half-moved output if it fails). What it prints would
    repeat the main process's line for line: silenced (it logs errors only; see log.setup)."""
    rank = os.environ.get("RANK")
    with (
        tempfile.TemporaryDirectory(prefix=f"xlalab-rank{rank}-") as scratch,
        open(os.devnull, "w") as quiet,
        contextlib.redirect_stdout(quiet),
        contextlib.redirect_stderr(quiet),
    ):
        thrown_away = {}
        for name in stage.outs:
            path = Path(scratch) / name / getattr(final, name).name
            path.parent.mkdir(parents=True)
            if not path.suffix:
                path.mkdir()
            thrown_away[name] = path
        function(config, final.staging(thrown_away))
        cost.every_process(cost.peak_memory_mb())  # the first process sums every one's peak
        _wait_for_other_processes()


def _wait_for_other_processes() -> None:
    # torch.distributed is only set up (and imported) when the stage trained with several processes.
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.barrier()
