"""What the last run of each stage cost on the machine that ran it: ``xlalab costs`` prints, from
``timing/``, every stage's wall time and peak memory (``timing/cost/<project>-<stage>.json``,
written by the runner: pipeline/cost.py) and the times and speeds each evaluate stage measured
(``timing/<project>.json``). The results page shows the same per project.

These files are DVC outputs, cached and shared by ``dvc push``/``pull``, not in git and not DVC
metrics: times differ on every run, and a metrics file that only the cache holds makes ``dvc
metrics diff`` fail to load it in a fresh clone.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from ..pipeline.contract import STAGE_NAMES, Project, built_projects, load_project

NOT_RUN = "no timings yet: run the stages (`dvc repro`) or fetch them (`dvc pull`)"
COLUMNS = ("project", "stage", "seconds", "peak memory (MB)", "processes")


def stage_costs(project: Project) -> list[dict[str, Any]]:
    """The cost of each of ``project``'s stages that has one, in pipeline order."""
    found = []
    for stage in STAGE_NAMES:
        path = project.paths.cost(stage)
        if path.exists():
            found.append({"project": project.name, "stage": stage, **json.loads(path.read_text())})
    return found


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"seconds": 3}}`` -> ``{"train.seconds": 3}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def measured(project: Project) -> dict[str, Any]:
    """The times and speeds ``project``'s evaluate stage took out of its details, flattened."""
    path = project.paths.timing
    return flatten(json.loads(path.read_text())) if path.exists() else {}


def cost_cells(cost: Mapping[str, Any]) -> list[str]:
    return [
        cost["project"],
        cost["stage"],
        f"{cost['seconds']:,.1f}",
        f"{cost['peak_memory_mb']:,}",
        str(cost["processes"]),
    ]


def speed_text(name: str, value: Any) -> str:
    """``train.samples_per_sec 440.0``; numbers with thousands separators."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{name} {value}"
    return f"{name} {value:,}"


def markdown(projects: list[Project]) -> str:
    """The table of every stage's cost, its total, and each project's measured speeds."""
    costs = [cost for project in projects for cost in stage_costs(project)]
    if not costs:
        return NOT_RUN + "\n"
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cost_cells(cost)) + " |" for cost in costs]
    total = sum(cost["seconds"] for cost in costs)
    lines.append(f"| all | {len(costs)} stages | {total:,.1f} | | |")
    speeds = [
        f"- {project.name}: " + "; ".join(speed_text(k, v) for k, v in found.items())
        for project in projects
        if (found := measured(project))
    ]
    if speeds:
        lines += ["", "Measured by the evaluate stages (timing/<project>.json):", *speeds]
    return "\n".join(lines) + "\n"


HELP = "print what each stage cost (seconds, peak memory) and the measured speeds, from timing/"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .. import PROJECTS

    parser.add_argument(
        "project", nargs="?", choices=PROJECTS, help="one project (default: every one)"
    )


def run(args: argparse.Namespace) -> int:
    projects = [load_project(args.project)] if args.project else built_projects()
    print(markdown(projects), end="")
    return 0
