"""One table of every built project: data source, headline metric, best baseline, verdict.

``python -m xlalab summary`` prints it as Markdown (the README's results table is this output).
"""
from __future__ import annotations

import json

from .project import built_projects


def rows() -> list[dict]:
    found = []
    for project in built_projects():
        path = project.paths.metrics
        if not path.exists():
            found.append({"project": project.name, "source": "-", "verdict": "not evaluated yet (dvc repro)"})
            continue
        metrics = json.loads(path.read_text())
        verdict = metrics.get("verdict", {})
        found.append({"project": project.name, "source": (metrics.get("data") or {}).get("source") or metrics.get("source", "-"),
                      "model": verdict.get("model", "-"), "metric": verdict.get("metric", "-"),
                      "score": verdict.get("score"), "baseline": verdict.get("best_baseline", "-"),
                      "baseline_score": verdict.get("baseline_score"),
                      "verdict": "beats its best baseline" if verdict.get("beats_baseline")
                      else "does NOT beat its best baseline" if verdict else "no verdict recorded"})
    return found


def markdown() -> str:
    def fmt(value) -> str:
        return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| project | data source | headline model | metric | score | best baseline | its score | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows():
        lines.append("| " + " | ".join(fmt(r.get(k)) for k in ("project", "source", "model", "metric", "score",
                                                               "baseline", "baseline_score", "verdict")) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    print(markdown(), end="")
    return 0
