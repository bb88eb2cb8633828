"""One table of every built project: data source, headline metric, best baseline, verdict, and what
trained it (backend, devices, processes), so a run on another backend or with several processes
shows as such.

``xlalab summary`` prints it as Markdown (the README's results table is this output).
"""

from __future__ import annotations

import argparse
import json

from .project import built_projects


def rows() -> list[dict]:
    found = []
    for project in built_projects():
        path = project.paths.metrics
        if not path.exists():
            found.append(
                {"project": project.name, "source": "-", "verdict": "not evaluated yet (dvc repro)"}
            )
            continue
        metrics = json.loads(path.read_text())
        verdict = metrics.get("verdict", {})
        found.append(
            {
                "project": project.name,
                "source": (metrics.get("data") or {}).get("source") or metrics.get("source", "-"),
                "model": verdict.get("model", "-"),
                "metric": verdict.get("metric", "-"),
                "score": verdict.get("score"),
                "baseline": verdict.get("best_baseline", "-"),
                "baseline_score": verdict.get("baseline_score"),
                "trained_on": trained_on(metrics.get("runtime")),
                "verdict": "beats its best baseline"
                if verdict.get("beats_baseline")
                else "does NOT beat its best baseline"
                if verdict
                else "no verdict recorded",
            }
        )
    return found


def trained_on(runtime: dict | None) -> str:
    """``accelerate, 1 cpu``; ``accelerate, 2 cpu, 2 processes``; ``xla, 4 cpu (spmd)``."""
    if not runtime:
        return "-"
    text = (
        f"{runtime['backend']}, {runtime.get('device_count', 1)} {runtime.get('device_type', '?')}"
    )
    if runtime.get("processes", 1) > 1:
        text += f", {runtime['processes']} processes"
    if runtime.get("spmd"):
        text += " (spmd)"
    return text


def markdown() -> str:
    def fmt(value) -> str:
        return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = [
        "| project | data source | headline model | metric | score | best baseline | its score | "
        "verdict "
        "| trained on |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows():
        lines.append(
            "| "
            + " | ".join(
                fmt(r.get(k))
                for k in (
                    "project",
                    "source",
                    "model",
                    "metric",
                    "score",
                    "baseline",
                    "baseline_score",
                    "verdict",
                    "trained_on",
                )
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


HELP = "print the results table of every project (the README's) from metrics/*.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass  # the table has no options


def run(args: argparse.Namespace) -> int:
    print(markdown(), end="")
    return 0
