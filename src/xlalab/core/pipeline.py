"""dvc.yaml, generated from the project contracts: ``python -m xlalab.core.pipeline > dvc.yaml``
(``make dvc.yaml``).

Each stage's deps are its input paths plus every xlalab module its code can import, directly or
through other xlalab modules, found by reading the import statements of the source (function-level
imports included). Its params are its ``Params`` fields. So a code or params change re-runs the
stages that depend on it, and only those; tests/test_pipeline.py checks the committed file.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import yaml

from .params import param_keys
from .project import GIT_TRACKED, Project, Stage, built_projects

SRC = Path(__file__).resolve().parents[2]  # .../src
PACKAGE = "xlalab"
# Every stage runs through the package, which opts Accelerate out of XLA (xlalab/__init__.py).
ENTRY = ("xlalab",)
HEADER = """\
# GENERATED from each project's contract (src/xlalab/<project>/project.py) by `make dvc.yaml`; do
# not edit.
# One DAG per project: download -> featurize -> train -> evaluate -> plot. Each stage lists the
# params it
# reads and every xlalab module its code imports, so `dvc exp run -S <key>=<value>` or a code change
# re-runs what depends on it and nothing else. PYTHONPATH=src makes a stage run the code of the copy
# DVC runs it in (queued experiments run in their own copies).
"""


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
    modules = import_closure(*ENTRY, stage.module)
    files = sorted({module_file(m) for m in modules})
    root = SRC.parent
    return [f.relative_to(root).as_posix() for f in files]


def stage_entry(project: Project, stage: Stage) -> dict[str, Any]:
    paths = project.paths
    outs, metrics = [], []
    for name in stage.outs:
        path = getattr(paths, name).as_posix()
        if name == "metrics":
            metrics.append({path: {"cache": False}})
        elif name == "timing":  # a metrics file too (dvc metrics show), kept out of git
            metrics.append(path)
        elif name in GIT_TRACKED:
            outs.append({path: {"cache": False}})
        else:
            outs.append(path)
    metrics.append(paths.cost(stage.name).as_posix())  # by the runner; DVC-cached, as timing
    entry: dict[str, Any] = {
        "cmd": f"PYTHONPATH=src python -m {stage.module}",
        "deps": [getattr(paths, name).as_posix() for name in stage.inputs]
        + code_deps(project, stage),
    }
    keys = param_keys(stage.params, project.name)
    if keys:
        entry["params"] = keys
    entry["outs"] = outs
    entry["metrics"] = metrics
    return entry


def render(projects: list[Project] | None = None) -> str:
    projects = built_projects() if projects is None else projects
    stages = {f"{p.name}-{s.name}": stage_entry(p, s) for p in projects for s in p.stages}
    plots = [plot for p in projects for plot in p.plots]
    body = yaml.safe_dump({"stages": stages, "plots": plots}, sort_keys=False, width=110)
    return HEADER + body


if __name__ == "__main__":
    sys.stdout.write(render())
