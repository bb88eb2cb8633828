"""One table of every built project: data source, headline model and metric (with the way that is
better), its score beside its strongest baseline's on the same test rows with 95 % bootstrap
intervals, their difference, the verdict (beats / ties / loses), and what trained it (backend,
devices, processes). Under it, in words, the projects whose model ties or loses.

``xlalab summary`` prints it as Markdown (the README's results table is this output). It reads each
project's ``metrics/<project>.json``, the headline of the Report its evaluate stage returned
(pipeline/report.py), and prints every number as xlalab/numbers.py does.
"""

from __future__ import annotations

import argparse
import json

from ..numbers import LEGEND as ARROWS_LEGEND
from ..numbers import metric_name, with_interval
from ..pipeline.contract import built_projects
from ..pipeline.report import headline

COLUMNS = {
    "project": "project",
    "source": "data source",
    "model": "headline model",
    "metric": "metric",
    "score": "score [95 % CI]",
    "baseline": "strongest baseline",
    "baseline_score": "its score [95 % CI]",
    "difference": "difference [95 % CI]",
    "verdict": "verdict",
    "trained_on": "trained on",
}
NOT_EVALUATED = "not evaluated yet (dvc repro)"
NO_VERDICT = "no verdict recorded"


def rows() -> list[dict]:
    found = []
    for project in built_projects():
        path = project.paths.metrics
        if not path.exists():
            found.append({"project": project.name, "judged": False, "verdict": NOT_EVALUATED})
            continue
        h = headline(json.loads(path.read_text()))
        found.append({"project": project.name, **(cells(h) if h else {"verdict": NO_VERDICT})})
    return found


def cells(h: dict) -> dict:
    """The table's cells of one project's headline (pipeline/report.py's METRIC_KEYS)."""
    return {
        "judged": True,
        "source": h["source"],
        "model": h["model"],
        "metric": metric_name(h["metric"], h["better"]),
        "score": with_interval(h["score"], (h["score_low"], h["score_high"])),
        "baseline": h["baseline"],
        "baseline_score": with_interval(
            h["baseline_score"], (h["baseline_low"], h["baseline_high"])
        ),
        "difference": with_interval(h["diff"], (h["diff_low"], h["diff_high"]), sign=True),
        "verdict": h["verdict"],
        "trained_on": h["trained_on"],
    }


def in_words(found: list[dict]) -> str:
    """The verdicts in words: which projects' models tie or lose, which win, which have no
    verdict yet."""
    judged = [r for r in found if r.get("judged")]
    short = [
        f"**{r['project']}**'s {r['model']} {r['verdict']} "
        f"{'with' if r['verdict'] == 'ties' else 'to'} {r['baseline']} "
        f"(difference {r['difference']}{', which holds 0' if r['verdict'] == 'ties' else ''})"
        for r in judged
        if r["verdict"] != "beats"
    ]
    parts = [
        ("Where the model does not win: " + "; ".join(short) + ".")
        if short
        else "No model ties or loses to its strongest baseline."
    ]
    winners = [r["project"] for r in judged if r["verdict"] == "beats"]
    if winners:
        parts.append(
            f"The model beats its strongest baseline (the difference's interval excludes 0) in "
            f"{', '.join(winners)}."
        )
    missing = [r["project"] for r in found if not r.get("judged")]
    if missing:
        parts.append(f"No verdict yet: {', '.join(missing)}.")
    return " ".join(parts)


LEGEND = (
    f"{ARROWS_LEGEND}. Intervals: 95 % bootstrap over the test rows; the "
    "difference (model - baseline) is paired, on the same resamples. A verdict of *ties* means "
    "the interval of the difference holds 0."
)


def markdown() -> str:
    found = rows()
    lines = [
        "| " + " | ".join(COLUMNS.values()) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for r in found:
        lines.append("| " + " | ".join(str(r.get(key, "-")) for key in COLUMNS) + " |")
    return "\n".join([*lines, "", in_words(found), "", LEGEND]) + "\n"


HELP = "print the results table of every project (the README's) from metrics/*.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass  # the table has no options


def run(args: argparse.Namespace) -> int:
    print(markdown(), end="")
    return 0
