"""The project contract: what every project declares, and how a stage runs.

A project is a package ``xlalab/<name>/`` whose ``project.py`` defines ``PROJECT``: its stages (the
same five everywhere), the ``Params`` class each stage reads, and its DVC plots. Everything else
follows from the name:

* paths: one layout for every project (``Paths``), derived here and nowhere else;
* dvc.yaml: generated from the contracts (core/pipeline.py), params and code deps included;
* running: ``run_stage`` parses the stage's params once, then calls the stage function with
  (params, paths). Outputs are written to temporary siblings and moved into place only when the
  stage succeeds, so a failed or interrupted stage leaves the previous outputs as they were.

A stage function lives in the project's own modules and is named as ``"module:function"``, so that
running one stage imports only the code that stage needs (and dvc.yaml lists exactly that code).
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import UserError
from .params import Params, load_params, parse

STAGE_NAMES = ("download", "featurize", "train", "evaluate", "plot")


@dataclass(frozen=True)
class Paths:
    """Where a project's artifacts live. Directories unless the name has a suffix."""

    project: str        # the project's name (for titles and messages)
    raw: Path           # download: the source data as fetched, plus card.json (the data card)
    features: Path      # featurize: model-ready splits
    model: Path         # train: weights (safetensors) and summary.json
    live: Path          # train: DVCLive per-epoch logs (git-tracked)
    predictions: Path   # evaluate: one row per test example (CSV)
    metrics: Path       # evaluate: the project's metrics, model beside its baselines (git-tracked)
    figures: Path       # plot: images and plot data (git-tracked)
    checkpoints: Path   # train: resume state while a run is unfinished (not a DVC output)
    cache: Path         # anything worth keeping between runs that is not an output

    @classmethod
    def of(cls, project: str) -> "Paths":
        return cls(project=project, raw=Path(f"data/{project}/raw"), features=Path(f"data/{project}/features"),
                   model=Path(f"models/{project}"), live=Path(f"plots/{project}/train"),
                   predictions=Path(f"data/{project}/predictions.csv"), metrics=Path(f"metrics/{project}.json"),
                   figures=Path(f"plots/{project}/figures"), checkpoints=Path(f"checkpoints/{project}"),
                   cache=Path(f"data/{project}/cache"))

    @property
    def card(self) -> Path:
        return self.raw / "card.json"

    @property
    def summary(self) -> Path:
        return self.model / "summary.json"


# What each stage writes: fixed, so every project has the same layout. Cached outputs are data
# and models (DVC's cache); the others are small and git-tracked (cache: false).
OUTS = {
    "download": ("raw",),
    "featurize": ("features",),
    "train": ("model", "live"),
    "evaluate": ("predictions", "metrics"),
    "plot": ("figures",),
}
GIT_TRACKED = ("live", "metrics", "figures")
# What each stage reads unless the project says otherwise.
DEPS = {
    "download": (),
    "featurize": ("raw",),
    "train": ("features",),
    "evaluate": ("features", "model"),
    "plot": ("predictions", "live"),
}

StageFunction = Callable[[Any, Paths], None]


# Where each stage's function lives: the file roles every project package shares.
MODULES = {"download": "data", "featurize": "features", "train": "train", "evaluate": "evaluate", "plot": "figures"}


@dataclass(frozen=True)
class Stage:
    name: str
    module: str               # the module that holds the stage function (named like the stage)
    params: type[Params]      # the keys it reads
    inputs: tuple[str, ...]   # the Paths fields it reads

    @property
    def outs(self) -> tuple[str, ...]:
        return OUTS[self.name]


@dataclass(frozen=True)
class Project:
    """A project, declared in ``xlalab/<name>/project.py`` as ``PROJECT``.

    ``params``: the Params class of each of the five stages (the keys it reads). The stage functions
    follow from the file roles (MODULES): ``download`` in the project's ``data.py``, ``train`` in
    ``train.py``, ... A family of projects that share their later stages (imdb and reviews) names the
    package that holds them in ``family``; ``download`` always stays the project's own.
    ``inputs``: for a stage that reads more (or less) than the previous stage's outputs (DEPS).
    """

    name: str
    params: dict[str, type[Params]]
    inputs: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    family: str | None = None
    plots: tuple[Any, ...] = ()  # dvc.yaml plot entries; ids start with the project name

    def __post_init__(self) -> None:
        if tuple(self.params) != STAGE_NAMES:
            raise ValueError(f"{self.name} must declare the stages {STAGE_NAMES} in order, not {tuple(self.params)}")
        unknown = set(self.inputs) - set(STAGE_NAMES)
        if unknown:
            raise ValueError(f"{self.name} declares inputs for unknown stages {sorted(unknown)}")

    @property
    def stages(self) -> tuple[Stage, ...]:
        own = f"xlalab.{self.name}"
        return tuple(Stage(name, f"{own if name == 'download' or not self.family else self.family}.{MODULES[name]}",
                           self.params[name], self.inputs.get(name, DEPS[name])) for name in STAGE_NAMES)

    @property
    def paths(self) -> Paths:
        return Paths.of(self.name)

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise UserError(f"{self.name} has no stage {name!r}; stages: {', '.join(STAGE_NAMES)}")

    def function(self, stage: Stage) -> StageFunction:
        """The stage function, imported only now: running one stage imports that stage's code alone."""
        return getattr(importlib.import_module(stage.module), stage.name)


def load_project(name: str) -> Project:
    from .. import PROJECTS

    if name not in PROJECTS:
        raise UserError(f"unknown project {name!r}; projects: {', '.join(PROJECTS)}")
    try:
        module = importlib.import_module(f"xlalab.{name}.project")
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith(f"xlalab.{name}"):
            raise UserError(f"project {name!r} is not built yet") from None
        raise
    return module.PROJECT


def built_projects() -> list[Project]:
    from .. import PROJECTS

    found = []
    for name in PROJECTS:
        try:
            found.append(load_project(name))
        except UserError:
            continue
    return found


def run_stage(project: Project | str, stage_name: str, params: dict[str, Any] | str | Path = "params.yaml"
              ) -> list[Path]:
    """Run one stage: parse its params, write its outputs atomically. Returns the outputs written."""
    project = load_project(project) if isinstance(project, str) else project
    stage = project.stage(stage_name)
    raw_params = params if isinstance(params, dict) else load_params(params)
    config = parse(stage.params, raw_params, project.name)
    known = {name for s in project.stages for name in s.params.model_fields}
    unknown = sorted(set(raw_params[project.name]) - known)
    if unknown:  # a typo in a key that only another stage would have read
        raise UserError(f"params.yaml has `{project.name}.{unknown[0]}`, which no stage reads; remove it or "
                        "check its spelling")
    final = project.paths
    for name in stage.inputs:
        if not getattr(final, name).exists():
            maker = next(s.name for s in project.stages if name in s.outs)
            raise UserError(f"{getattr(final, name)} is missing; run `python -m xlalab {project.name} {maker}` "
                            "(or `dvc repro`) first")
    function = project.function(stage)
    if not is_main_process():
        # One of several data-parallel processes, not the first: it computes what the main one
        # does but its outputs are thrown away, so it can never race the main process on the
        # real paths (nor leave a half-moved output if it fails).
        # Its messages would repeat the main process's line for line: silenced (an error still
        # surfaces, as the exception leaves this block).
        with tempfile.TemporaryDirectory(prefix=f"xlalab-rank{os.environ.get('RANK')}-") as scratch, \
                open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            thrown_away = {name: _temporary(Path(scratch) / name / getattr(final, name).name) for name in stage.outs}
            function(config, dataclasses.replace(final, **thrown_away))
            _wait_for_other_processes()
        return []
    # Folders this run creates for its outputs: a failed run removes them again if they stay empty.
    new_folders = sorted({d for name in stage.outs for d in getattr(final, name).parents if not d.exists()},
                         key=lambda d: len(d.parts), reverse=True)
    staged = {name: _temporary(getattr(final, name)) for name in stage.outs}
    done = False
    try:
        function(config, dataclasses.replace(final, **staged))
        for name, tmp in staged.items():
            if not tmp.exists():
                raise RuntimeError(f"{project.name} {stage.name} did not write its output {name} ({tmp})")
        for name, tmp in staged.items():
            _move_into_place(tmp, getattr(final, name))
        done = True
    finally:
        for tmp in staged.values():
            _remove(tmp)
        for folder in [] if done else new_folders:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    # Every process leaves together, once the outputs are in place: the launcher's success then
    # means the stage's success.
    _wait_for_other_processes()
    return [getattr(final, name) for name in stage.outs]


_held_back: list[str] | None = None


def say_last(line: str) -> None:
    """Print ``line`` (a verdict) to stderr, or, inside ``lines_said_last``, hold it back so that the
    caller prints it after the list of what the stage wrote: a stage's log ends with its verdict.
    With several processes every one reaches the same verdict; the first alone says it."""
    if not is_main_process():
        return
    if _held_back is None:
        print(line, file=sys.stderr)
    else:
        _held_back.append(line)


@contextlib.contextmanager
def lines_said_last():
    global _held_back
    outer, _held_back = _held_back, []
    try:
        yield _held_back
    finally:
        _held_back = outer


def is_main_process() -> bool:
    """False in every process but the first of a launch (``accelerate launch`` / torchrun set
    RANK, the global rank over all machines); True without a launcher."""
    return int(os.environ.get("RANK", "0")) == 0


def _wait_for_other_processes() -> None:
    # torch.distributed is only set up (and only imported) when the stage trained with several processes.
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.barrier()


def _temporary(path: Path) -> Path:
    """A fresh sibling of ``path`` with the same suffix (matplotlib and pandas go by it); created
    empty when ``path`` is a directory output (no suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Left by a run that was killed (SIGKILL skips the clean-up below). No other run of this stage
    # can be writing here: DVC locks the workspace, and queued experiments run in their own copies.
    for stale in path.parent.glob(f".tmp-*-{path.name}"):
        _remove(stale)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    if not path.suffix:  # a directory output: ready to write into
        tmp.mkdir()
    return tmp


def _move_into_place(tmp: Path, path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    os.replace(tmp, path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()
