"""One table of every built project: data source, headline model and metric, its score beside its
strongest baseline's on the same test rows with 95 % bootstrap intervals, their difference, the
verdict (beats / ties / loses), and what trained it (backend, devices, processes). Under it, in
words, the projects whose model ties or loses.

``xlalab summary`` prints it as Markdown (the README's results table is this output). It reads each
project's ``metrics/<project>.json``: the ``verdict`` of core/evidence.py's ``compare``, or, for
metrics written before verdicts had intervals, the older ``beats_baseline`` point estimates, which
the table marks as such.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence

from ..pipeline.contract import built_projects

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
POINT_ONLY = "point estimate, no interval"


def rows() -> list[dict]:
    found = []
    for project in built_projects():
        path = project.paths.metrics
        if not path.exists():
            found.append({"project": project.name, "shape": "none", "verdict": NOT_EVALUATED})
            continue
        metrics = json.loads(path.read_text())
        found.append(
            {
                "project": project.name,
                "source": (metrics.get("data") or {}).get("source") or metrics.get("source", "-"),
                "trained_on": trained_on(metrics.get("runtime")),
                **verdict_cells(metrics.get("verdict") or {}),
            }
        )
    return found


def verdict_cells(v: dict) -> dict:
    """The table's cells of one verdict: with intervals (``shape: evidence``), or the older point
    estimates (``shape: point``), or nothing recorded."""
    if "verdict" in v and "interval" in v:
        arrow = " ↑" if v["higher_is_better"] else " ↓"
        return {
            "shape": "evidence",
            "model": v["model"],
            "metric": v["metric"] + arrow,
            "score": with_interval(v["score"], v["interval"]),
            "baseline": v["best_baseline"],
            "baseline_score": with_interval(v["baseline_score"], v["baseline_interval"]),
            "difference": with_interval(v["difference"], v["difference_interval"], sign=True),
            "verdict": v["verdict"],
        }
    if "beats_baseline" in v:
        return {
            "shape": "point",
            "model": v["model"],
            "metric": v["metric"],
            "score": f"{v['score']:.4g}",
            "baseline": v["best_baseline"],
            "baseline_score": f"{v['baseline_score']:.4g}",
            "difference": f"{v['score'] - v['baseline_score']:+.4g}",
            "verdict": f"{'beats' if v['beats_baseline'] else 'does not beat'} ({POINT_ONLY})",
        }
    return {"shape": "none", "verdict": "no verdict recorded"}


def with_interval(value: float, interval: Sequence[float], sign: bool = False) -> str:
    """``0.908 [0.890, 0.926]``: as many decimals as the interval's width supports (two
    significant digits of it), so the digits shown are the ones the data can tell apart."""
    low, high = interval
    width = high - low
    digits = 4 if not width > 0 else min(6, max(0, 1 - math.floor(math.log10(width))))
    point = f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"
    return f"{point} [{low:.{digits}f}, {high:.{digits}f}]"


def trained_on(runtime: dict | None) -> str:
    """``accelerate, 1 cpu``; ``accelerate, 2 cpu, 2 processes``; ``xla, 4 cpu (spmd)``;
    ``accelerate, 1 cuda, fp16`` (mixed precision is named; float32 is not)."""
    if not runtime:
        return "-"
    text = (
        f"{runtime['backend']}, {runtime.get('device_count', 1)} {runtime.get('device_type', '?')}"
    )
    if runtime.get("processes", 1) > 1:
        text += f", {runtime['processes']} processes"
    if runtime.get("spmd"):
        text += " (spmd)"
    if runtime.get("precision", "no") != "no":
        text += f", {runtime['precision']}"
    return text


def in_words(found: list[dict]) -> str:
    """The verdicts in words: which projects' models tie or lose (or do not beat their baseline on
    a point estimate), then which have no intervals or no metrics yet."""
    short = [
        f"**{r['project']}**'s {r['model']} {r['verdict']} "
        f"{'with' if r['verdict'] == 'ties' else 'to'} {r['baseline']} "
        f"(difference {r['difference']}{', which holds 0' if r['verdict'] == 'ties' else ''})"
        for r in found
        if r["shape"] == "evidence" and r["verdict"] != "beats"
    ] + [
        f"**{r['project']}**'s {r['model']} does not beat {r['baseline']} ({POINT_ONLY})"
        for r in found
        if r["shape"] == "point" and r["verdict"].startswith("does not")
    ]
    parts = [
        ("Where the model does not win: " + "; ".join(short) + ".")
        if short
        else "No model ties or loses to its strongest baseline."
    ]
    winners = [r["project"] for r in found if r["shape"] == "evidence" and r["verdict"] == "beats"]
    if winners:
        parts.append(
            f"The model beats its strongest baseline (the difference's interval excludes 0) in "
            f"{', '.join(winners)}."
        )
    point = [r["project"] for r in found if r["shape"] == "point" and r["verdict"].startswith("b")]
    if point:
        parts.append(
            "On point estimates alone (older metrics, no intervals), the model beats its "
            f"strongest baseline in {', '.join(point)}."
        )
    missing = [r["project"] for r in found if r["shape"] == "none"]
    if missing:
        parts.append(f"No verdict yet: {', '.join(missing)}.")
    return " ".join(parts)


LEGEND = (
    "↑ higher is better, ↓ lower is better. Intervals: 95 % bootstrap over the test rows; the "
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
