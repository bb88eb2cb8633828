"""dvc.yaml, generated from the project contracts: ``python -m xlalab.pipeline.dvcyaml > dvc.yaml``
(``make dvc.yaml``).

Each stage gets a ``desc`` (the first sentence of its module's docstring), its params (its
``Params`` fields), and as deps its input paths plus the code it can import, found by reading the
import statements of the source (function-level imports included), written as folders where a
folder is what it uses: the project's own package, the shared text package, the pipeline
framework, and the training engine for the stages that train or predict. Where a stage that does
not train imports one module of the engine or of the results tools (the settings, the plotting
helpers), that file is listed alone, so a change to the backends re-runs no download, featurize or
plot stage. tests/test_pipeline.py checks the committed file against this.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from ..pipeline.contract import GIT_TRACKED, METRICS, Project, Stage, built_projects
from ..pipeline.params import param_keys

SRC = Path(__file__).resolve().parents[2]  # .../src
PACKAGE = "xlalab"
# Every stage runs through the package, which opts Accelerate out of XLA (xlalab/__init__.py).
ENTRY = ("xlalab",)
HEADER = """\
# GENERATED from each project's contract (src/xlalab/<project>/project.py) by `make dvc.yaml`;
# do not edit. One DAG per project: download -> featurize -> train -> evaluate -> plot.
# Each stage lists the params it reads and the code it imports (folders: a project's package,
# the pipeline framework, the engine for stages that train or predict), so `dvc exp run -S
# <key>=<value>` or a code change re-runs what depends on it and nothing else. PYTHONPATH=src
# makes a stage run the code of the copy DVC runs it in (queued experiments run in their own).
"""
# Packages a stage depends on as a whole folder when it imports any of their modules. The engine
# only for stages that train or predict; others list the engine files they import.
WHOLE = ("pipeline",)


def module_file(module: str) -> Path | None:
    base = SRC.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports_of(module: str) -> set[str]:
    """xlalab modules named by the import statements of ``module`` (anywhere in the file)."""
    path = module_file(module)
    if path is None:
        return set()
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            # `from pkg import name`: name may be a submodule
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] == PACKAGE and module_file(m) is not None}


def import_closure(*roots: str) -> set[str]:
    """Every xlalab module reachable from ``roots``, with the packages Python runs on the way."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages
        todo.extend(_imports_of(module))
    return seen


def code_deps(project: Project, stage: Stage) -> list[str]:
    """The stage's code deps: folders where it uses the package, single files elsewhere."""
    modules = import_closure(*ENTRY, stage.module)
    whole = {project.name, *([project.shared] if project.shared else []), *WHOLE}
    if stage.reads_runtime:
        whole.add("engine")
    root = SRC.parent
    deps: set[str] = set()
    for module in modules:
        parts = module.split(".")
        if len(parts) > 1 and parts[1] in whole:
            deps.add((SRC / PACKAGE / parts[1]).relative_to(root).as_posix())
        else:
            path = module_file(module)
            if path is not None and (path.name != "__init__.py" or path.read_text().strip()):
                deps.add(path.relative_to(root).as_posix())  # empty package markers left out
    return sorted(deps, key=lambda d: (d.endswith(".py"), d))


def describe(stage: Stage) -> str:
    """The first sentence of the stage module's docstring, without "The <stage> stage: "."""
    path = module_file(stage.module)
    doc = ast.get_docstring(ast.parse(path.read_text())) if path else None
    first = " ".join((doc or stage.name).split("\n\n")[0].split())
    first = re.split(r"(?<=\.)\s", first)[0].rstrip(".")
    first = re.sub(r"^The (\w+ )?\w+ stage[:.,]?\s*", "", first).replace("``", "")
    if len(first) > 110:  # a long first sentence: its first clause
        first = re.split(r"[;(]", first)[0].strip().rstrip(",:")
    if len(first) > 110:  # still long: up to the last comma that keeps it short
        first = first[: max(first.rfind(", ", 0, 110), 40)]
    return first[:1].upper() + first[1:]


def flow(value: Any) -> str:
    """``value`` in YAML's one-line flow style."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...")


def stage_lines(project: Project, stage: Stage) -> list[str]:
    paths = project.paths
    outs: list[Any] = []
    metrics: list[Any] = []
    for name in stage.outs:
        path = getattr(paths, name).as_posix()
        if name in METRICS:  # git-tracked, so `dvc metrics diff` reads it in any clone
            metrics.append({path: {"cache": False}})
        elif name in GIT_TRACKED:
            outs.append({path: {"cache": False}})
        else:
            outs.append(path)
    # By the runner. Cached, like timing: not a metric, since a metrics file that only DVC's cache
    # holds makes `dvc metrics diff` in a fresh clone fail to load it (`xlalab costs` shows them).
    outs.append(paths.cost(stage.name).as_posix())
    inputs = [getattr(paths, name).as_posix() for name in stage.inputs]
    inputs += project.files.get(stage.name, [])
    lines = [
        f"  {project.name}-{stage.name}:",
        f"    desc: {flow(describe(stage))}",
        f"    cmd: PYTHONPATH=src python {' '.join(stage.command)}",
        f"    deps: {flow(inputs + code_deps(project, stage))}",
    ]
    keys = param_keys(stage.params, project.name)
    if keys:
        lines.append(f"    params: {flow(keys)}")
    lines.append(f"    outs: {flow(outs)}")
    if metrics:
        lines.append(f"    metrics: {flow(metrics)}")
    return lines


def render(projects: list[Project] | None = None) -> str:
    projects = built_projects() if projects is None else projects
    lines = [HEADER.rstrip("\n"), "stages:"]
    for project in projects:
        lines.append(f"  # {project.name}")
        for stage in project.stages:
            lines.extend(stage_lines(project, stage))
    lines.append("plots:")
    for project in projects:
        lines.append(f"  # {project.name}")
        lines.extend(f"  - {flow(plot)}" for plot in project.plots)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
