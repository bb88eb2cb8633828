"""One page with every result: ``xlalab report`` (``make report``) writes ``reports/index.html``
from the git-tracked results: metrics/<project>.json (the headline), reports/<project>/details.json
(every baseline, the data, the warnings), plots/<project>/figures/*.png and docs/seeds.json, with
what each stage cost from timing/ where this clone has it.

The page holds the results table and the table over seeds, then per project its verdict, the model's
score beside every baseline's with their 95 % intervals, where its data came from, what trained it,
its warnings, what its stages cost and its figures (the key figures of its contract,
``Project.key_figures``, first), each with a caption saying what it shows (results/captions.py).
Every number is printed as ``xlalab summary`` prints it (xlalab/numbers.py). It is a single static
file: the figures are embedded as data URIs (``--link`` refers to them by relative path instead),
the style is inline, and nothing is loaded from the network, so it opens offline and can be passed
around as one file.

It is a command rather than a DVC stage: it reads only files that git already tracks (and the
timings, when present), takes well under a second, and as a stage it would put a multi-megabyte
generated file into git or the cache and tie all six pipelines together in dvc.yaml.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import logging
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..files import atomic_path, read_json
from ..numbers import LEGEND, metric_name, with_interval
from ..pipeline.contract import Project, built_projects
from ..pipeline.report import headline
from . import costs, seed_table, summary
from .captions import caption_or_name
from .seeds import DEFAULT_OUT as SEEDS_FILE

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT = Path("reports/index.html")
OUTCOMES = {
    "beats": "beats its strongest baseline",
    "ties": "ties with its strongest baseline",
    "loses": "loses to its strongest baseline",
}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { display: inline-block; padding: 0.1rem 0.5rem; border-radius: 0.3rem; color: #fff; }
.beats { background: #2e7d32; } .ties { background: #9e7b00; }
.loses { background: #c62828; } .none { background: #777; }
.line { font-size: 0.95rem; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 1rem; }
figure { margin: 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85rem; color: #555; }
.warning { color: #8a4b00; }
.note { font-size: 0.85rem; color: #555; }
"""


def badge(outcome: str | None, short: bool = False) -> str:
    css = outcome if outcome in OUTCOMES else "none"
    text = OUTCOMES.get(outcome, "no verdict recorded")
    if short and outcome in OUTCOMES:
        text = outcome
    return f'<span class="verdict {css}">{html.escape(text)}</span>'


def table(head: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    """An HTML table of cells that are HTML already; columns in ``numeric`` right-aligned."""
    header = "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table>{header}{body}</table>"


def summary_table(results: Mapping[str, dict | None]) -> str:
    """The results table, cell for cell ``xlalab summary``'s; each project linked to its section."""
    rows = []
    for name, result in results.items():
        h = result and result["headline"]
        if not h:
            cells = [f'<a href="#{name}">{name}</a>'] + ["-"] * (len(summary.COLUMNS) - 3)
            missing = summary.NOT_EVALUATED if result is None else summary.NO_VERDICT
            rows.append([*cells, html.escape(missing), "-"])
            continue
        found = summary.cells(h)
        row = [f'<a href="#{name}">{name}</a>']
        for key in list(summary.COLUMNS)[1:]:
            cell = badge(h["verdict"], short=True) if key == "verdict" else html.escape(found[key])
            row.append(cell)
        rows.append(row)
    return table([html.escape(h) for h in summary.COLUMNS.values()], rows, {4, 6, 7})


def sentence(h: dict) -> str:
    """The verdict in words, with the page's numbers: ``lstm (mae ↓) 0.43 [0.38, 0.49] against
    the strongest baseline arima 0.43 [0.38, 0.49]: difference -0.0001 [-0.0040, 0.0044], ties``."""
    found = summary.cells(h)
    return (
        f"{h['model']} ({found['metric']}) {found['score']} against the strongest baseline "
        f"{h['baseline']} {found['baseline_score']}: difference {found['difference']} (95 %), "
        f"{h['verdict']}."
    )


def scores_table(h: dict, verdict: Mapping[str, Any]) -> str:
    """The model and every baseline (the details' verdict): score and 95 % interval, best
    first."""
    sign = 1 if h["better"] == "higher" else -1
    baselines = sorted(
        (verdict.get("baselines") or {}).items(),
        key=lambda item: -sign * (item[1].get("score") or 0.0),
    )
    if not baselines:  # no details: the strongest baseline from the metrics alone
        interval = [h["baseline_low"], h["baseline_high"]]
        baselines = [(h["baseline"], {"score": h["baseline_score"], "interval": interval})]
    rows = [[html.escape(h["model"]), "headline model", score_cell(h["score"], h, "score")]]
    for name, entry in baselines:
        role = "strongest baseline" if name == h["baseline"] else "baseline"
        text = with_interval(entry.get("score"), entry.get("interval"))
        rows.append([html.escape(name), role, html.escape(text)])
    metric = html.escape(metric_name(h["metric"], h["better"]))
    return table(["candidate", "role", f"{metric} [95 % CI]"], rows, {2})


def score_cell(value: float, h: dict, key: str) -> str:
    return html.escape(with_interval(value, (h[f"{key}_low"], h[f"{key}_high"])))


def figure(project: str, path: Path, page_dir: Path, embed: bool) -> str:
    if embed:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        src = f"data:image/png;base64,{data}"
    else:
        src = Path(os.path.relpath(path, page_dir)).as_posix()
    caption = html.escape(caption_or_name(project, path.stem))
    return (
        f'<figure><img src="{html.escape(src)}" alt="{caption}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def ordered_figures(project: Project) -> list[Path]:
    """The project's images, its key figures first in the order its contract gives them (those
    drawn), then the others by name."""
    drawn = {path.name: path for path in sorted(project.paths.figures.glob("*.png"))}
    key = [drawn[name] for name in project.key_figures if name in drawn]
    return key + [path for path in drawn.values() if path not in key]


def costs_part(project: Project) -> str:
    """What the project's stages cost when this clone last ran them (timing/, not in git)."""
    found = costs.stage_costs(project)
    if not found:
        return ""
    rows = [[html.escape(c) for c in costs.cost_cells(cost)[1:]] for cost in found]
    speeds = costs.measured(project)
    note = (
        '<p class="note">Measured: '
        + html.escape("; ".join(costs.speed_text(k, v) for k, v in speeds.items()))
        + ".</p>"
        if speeds
        else ""
    )
    return (
        "<h3>What its stages cost</h3>"
        + table(list(costs.COLUMNS[1:]), rows, {1, 2, 3})
        + '<p class="note">On the machine that last ran them (timing/, DVC-cached, not in git; '
        "<code>xlalab costs</code>).</p>" + note
    )


def project_section(project: Project, result: dict | None, page_dir: Path, embed: bool) -> str:
    name = project.name
    parts = [f'<section id="{name}"><h2>{name}</h2>']
    h = result and result["headline"]
    if result is None:
        parts.append(f"<p>Not evaluated yet: run <code>dvc repro {name}-plot</code>.</p>")
    elif not h:
        parts.append(f"<p>{badge(None)}</p>")
    else:
        details = result["details"]
        parts.append(f"<p>{badge(h['verdict'])}</p>")
        parts.append(f'<p class="line">{html.escape(sentence(h))}</p>')
        parts.append(scores_table(h, details.get("verdict") or {}))
        data = details.get("data") or {}
        about = (data.get("note") or data.get("description")) if isinstance(data, dict) else None
        parts.append(
            f"<p>Data: {html.escape(str(h['source']))}"
            + (f" ({html.escape(about)})" if about else "")
            + (f". Test rows: {h['test_rows']:,}" if isinstance(h.get("test_rows"), int) else "")
            + f". Trained on: {html.escape(h['trained_on'])}.</p>"
        )
        parts += [f'<p class="warning">{html.escape(w)}</p>' for w in details.get("warnings", [])]
    parts.append(costs_part(project))
    figures = ordered_figures(project)
    if figures:
        parts.append('<div class="figures">')
        parts += [figure(name, f, page_dir, embed) for f in figures]
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def read_result(project: Project) -> dict | None:
    """The project's headline (metrics) and details; None before its evaluate stage has run."""
    path = project.paths.metrics
    if not path.exists():
        return None
    metrics = read_json(path)
    details = project.paths.details
    return {
        "headline": headline(metrics),
        # Metrics written before the details file existed held the details themselves.
        "details": read_json(details) if details.exists() else metrics,
    }


def seeds_part(path: Path = SEEDS_FILE) -> str:
    """The table over seeds (``xlalab seeds``), from docs/seeds.json when it is there."""
    if not path.exists():
        return ""
    saved = json.loads(path.read_text())
    order = [p.name for p in built_projects() if p.name in saved]
    rows = [seed_table.cells(saved[name]) for name in order + sorted(set(saved) - set(order))]
    return (
        "<h2>Over seeds</h2>"
        f'<p class="note">From {html.escape(path.as_posix())} (<code>xlalab seeds all -n 3</code>):'
        " each seed re-draws the initial weights, the batch order and, where a project splits at "
        "random, its validation and test rows.</p>"
        + table(
            [html.escape(c) for c in seed_table.COLUMNS],
            [[html.escape(c) for c in row] for row in rows],
            {4, 6},
        )
    )


def commit() -> str:
    """The commit the results belong to, with a note when the workspace differs from it."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "metrics", "plots", "reports"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "outside git"
    return f"commit {rev}" + (", with results changed since" if dirty else "")


def render(output: Path = DEFAULT_OUTPUT, embed: bool = True) -> str:
    """The page for the projects in the current directory (the repository root)."""
    projects = built_projects()
    results = {p.name: read_result(p) for p in projects}
    page_dir = output.parent
    sections = [project_section(p, results[p.name], page_dir, embed) for p in projects]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>xlalab results</title>"
        f"<style>{STYLE}</style></head><body>\n"
        "<h1>xlalab results</h1>\n"
        f"<p>From metrics/, reports/ and plots/ ({html.escape(commit())}). Each headline model is "
        "scored beside its baselines on the same test rows; intervals are 95 % bootstrap "
        "intervals, the difference (model - baseline) is paired, on the same resamples; a verdict "
        f"of <em>ties</em> means the interval of the difference holds 0. {html.escape(LEGEND)}."
        "</p>\n"
        f"{summary_table(results)}\n{seeds_part()}\n" + "\n".join(sections) + "\n</body></html>\n"
    )


def write(output: Path = DEFAULT_OUTPUT, embed: bool = True) -> Path:
    text = render(output, embed)
    with atomic_path(output) as tmp:
        tmp.write_text(text)
    return output


HELP = "write one static HTML page of every project's results (reports/index.html)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", type=Path, default=DEFAULT_OUTPUT, help=f"default: {DEFAULT_OUTPUT}"
    )
    parser.add_argument(
        "--link",
        action="store_true",
        help="refer to the figures by relative path instead of embedding them (a smaller page "
        "that works only beside plots/)",
    )


def run(args: argparse.Namespace) -> int:
    path = write(args.output, embed=not args.link)
    logger.info("wrote %s (open it in a browser; it needs no network)", path)
    return 0
