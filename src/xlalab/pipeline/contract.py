"""The project contract: what every project declares.

A project is a package ``xlalab/<name>/`` whose ``project.py`` defines ``PROJECT``: the ``Params``
class each of its five stages reads, the paths each reads besides the previous stage's outputs,
and its DVC plots. Everything else follows from the name:

* paths: one layout for every project (``Paths``), derived here and nowhere else;
* code: one module per stage, named after it: the download stage is ``xlalab/<name>/download.py``,
  run as ``python -m xlalab.<name>.download``; each stage module holds a function named like the
  stage and hands it to ``pipeline.runner.main`` from its ``__main__`` block. A project whose
  stages after download are a shared family's (imdb and reviews: ``xlalab/textclf``) names that
  package as ``shared``, and its commands pass the project's name: ``python -m
  xlalab.textclf.train imdb``;
* dvc.yaml: generated from the contracts (pipeline/dvcyaml.py), params and code deps included.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engine.settings import Params
from ..errors import UserError
from ..pipeline.params import RUNTIME

STAGE_NAMES = ("download", "featurize", "train", "evaluate", "plot")


@dataclass(frozen=True)
class Paths:
    """Where a project's artifacts live. Directories unless the name has a suffix.

    Inside a stage (pipeline/runner.py) every field is the real path, except the outputs named in
    ``staged``: each of those is a temporary sibling of the real output, moved into place when the
    stage succeeds and deleted when it fails (the model, predictions, metrics, figures, ...). The
    DVCLive folder (``live``) is written in place, so its curves can be watched while training
    goes on (WRITTEN_IN_PLACE below)."""

    project: str  # the project's name (for titles and messages)
    raw: Path  # download: the source data as fetched, plus card.json (the data card)
    features: Path  # featurize: model-ready splits
    model: Path  # train: weights (safetensors) and summary.json
    live: Path  # train: DVCLive per-epoch logs (git-tracked)
    predictions: Path  # evaluate: one row per test example (CSV)
    metrics: Path  # evaluate: the headline numbers, the same keys in every project (a DVC metric)
    details: Path  # evaluate: everything else it found, every baseline included (git-tracked)
    timing: Path  # evaluate: the times and speeds taken out of the details (DVC-cached, not git)
    figures: Path  # plot: images and plot data (git-tracked)
    checkpoints: Path  # train: resume state while a run is unfinished (not a DVC output)
    cache: Path  # anything worth keeping between runs that is not an output
    costs: Path  # every stage: what it cost (seconds, peak memory), written by the runner
    # metrics, details and timing are written by the runner from the Report evaluate returns
    # (pipeline/report.py).
    staged: tuple[str, ...] = ()  # the fields above that point at a staging path, not the real one

    @classmethod
    def of(cls, project: str) -> Paths:
        return cls(
            project=project,
            raw=Path(f"data/{project}/raw"),
            features=Path(f"data/{project}/features"),
            model=Path(f"models/{project}"),
            live=Path(f"plots/{project}/train"),
            predictions=Path(f"data/{project}/predictions.csv"),
            metrics=Path(f"metrics/{project}.json"),
            details=Path(f"reports/{project}/details.json"),
            timing=Path(f"timing/{project}.json"),
            figures=Path(f"plots/{project}/figures"),
            checkpoints=Path(f"checkpoints/{project}"),
            cache=Path(f"data/{project}/cache"),
            costs=Path("timing/cost"),
        )

    @property
    def card(self) -> Path:
        return self.raw / "card.json"

    @property
    def summary(self) -> Path:
        return self.model / "summary.json"

    def cost(self, stage: str) -> Path:
        """The cost file of ``stage`` (pipeline/cost.py): an output of every stage, written by the
        runner (not by the stage) with its other outputs; DVC-cached, not in git, not a metric."""
        return self.costs / f"{self.project}-{stage}.json"

    def staging(self, outputs: dict[str, Path]) -> Paths:
        """These paths with ``outputs`` (field -> temporary path) in place of the real ones, and
        named in ``staged``."""
        changes: dict[str, Any] = {**outputs, "staged": tuple(outputs)}
        return dataclasses.replace(self, **changes)

    def figure(self, name: str) -> str:
        """A file of the plot stage's folder, as dvc.yaml names it."""
        return (self.figures / name).as_posix()

    def series(self, metric: str, model: str | None = None) -> str:
        """The per-epoch TSV that DVCLive writes for ``metric`` (``train/loss``) under ``live``, or
        under ``live/<model>`` for a project that trains several models, as dvc.yaml names it."""
        live = self.live / model if model else self.live
        return (live / "plots" / "metrics" / f"{metric}.tsv").as_posix()


# What each stage writes: fixed, so every project has the same layout. Cached outputs are data,
# models and timings (DVC's cache); the others are small and git-tracked (cache: false). Timings
# stay out of git so that re-running the same code leaves every git-tracked file as committed, and
# out of DVC's metrics, whose files must be in git for `dvc metrics diff` to read them in a clone.
OUTS = {
    "download": ("raw",),
    "featurize": ("features",),
    "train": ("model", "live"),
    "evaluate": ("predictions", "metrics", "details", "timing"),
    "plot": ("figures",),
}
GIT_TRACKED = ("live", "metrics", "details", "figures")
METRICS = ("metrics",)  # the outputs dvc.yaml declares as metrics (git-tracked too)
# Outputs a stage writes at their real path while it runs, to be watched as they grow (DVCLive's
# curves: `dvc plots show`, VS Code's DVC extension); the runner puts the previous ones back if the
# stage fails. Every other output is staged and moved into place on success.
WRITTEN_IN_PLACE = ("live",)
# Besides these, every stage has a cost file (Paths.cost), which the runner writes.
# What each stage reads unless the project says otherwise.
DEPS = {
    "download": (),
    "featurize": ("raw",),
    "train": ("features",),
    "evaluate": ("features", "model"),
    "plot": ("predictions", "live"),
}

# (params, paths) -> None; an evaluate stage returns its pipeline.report.Report.
StageFunction = Callable[[Any, Paths], Any]


@dataclass(frozen=True)
class Stage:
    name: str
    module: str  # the module that runs it: ``python -m <module>``; its function is named like it
    project: str  # the project it belongs to
    shared: bool  # its module serves several projects: the command names the project
    params: type[Params]  # the keys it reads
    inputs: tuple[str, ...]  # the Paths fields it reads

    @property
    def outs(self) -> tuple[str, ...]:
        return OUTS[self.name]

    @property
    def command(self) -> list[str]:
        """``python -m <module>`` arguments that run it (the project's name for a shared module)."""
        return ["-m", self.module, *([self.project] if self.shared else [])]

    @property
    def reads_runtime(self) -> bool:
        """Whether it trains or predicts through a backend: the stages launched as several
        processes (core/launch.py) and the only ones that depend on the backends' code."""
        return RUNTIME in self.params.model_fields


@dataclass(frozen=True)
class Project:
    """A project, declared in ``xlalab/<name>/project.py`` as ``PROJECT``.

    ``params``: the Params class of each of the five stages (the keys it reads). Each stage runs in
    the module named after it: ``download`` in the project's ``download.py``, ``train`` in
    ``train.py``, ...
    ``inputs``: for a stage that reads more (or less) than the previous stage's outputs (DEPS).
    ``files``: git-tracked files of the repository a stage reads besides those (paths from the
    repository's root), e.g. measurements kept under docs/ that a plot stage draws.
    ``shared``: the package whose modules run every stage but download, where a family of
    projects shares them (``textclf`` for imdb and reviews); None: the project's own package.
    ``key_figures``: the images a reader should see first, in order.
    """

    name: str
    params: dict[str, type[Params]]
    inputs: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    files: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    plots: tuple[Any, ...] = ()  # dvc.yaml plot entries; ids start with the project name
    shared: str | None = None
    # The plot stage's images (names under ``Paths.figures``) that answer the project's question,
    # most telling first: the results page shows them before the others.
    key_figures: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if tuple(self.params) != STAGE_NAMES:
            raise ValueError(
                f"{self.name} must declare the stages {STAGE_NAMES} in order, not "
                f"{tuple(self.params)}"
            )
        unknown = (set(self.inputs) | set(self.files)) - set(STAGE_NAMES)
        if unknown:
            raise ValueError(f"{self.name} declares inputs for unknown stages {sorted(unknown)}")

    @property
    def stages(self) -> tuple[Stage, ...]:
        return tuple(self._stage(name) for name in STAGE_NAMES)

    def _stage(self, name: str) -> Stage:
        shared = self.shared is not None and name != "download"
        package = self.shared if shared else self.name
        return Stage(
            name=name,
            module=f"xlalab.{package}.{name}",
            project=self.name,
            shared=shared,
            params=self.params[name],
            inputs=self.inputs.get(name, DEPS[name]),
        )

    @property
    def paths(self) -> Paths:
        return Paths.of(self.name)

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise UserError(f"{self.name} has no stage {name!r}; stages: {', '.join(STAGE_NAMES)}")

    def function(self, stage: Stage) -> StageFunction:
        """The stage function, from the stage's module (what ``python -m <module>`` runs)."""
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

    return [load_project(name) for name in PROJECTS]
