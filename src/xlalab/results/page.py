"""One page with every result: ``xlalab report`` (``make report``) writes ``reports/index.html``
from the git-tracked results, metrics/<project>.json and plots/<project>/figures/*.png.

The page holds the results table, then per project its verdict, the model's score beside every
baseline's with their 95 % intervals, where its data came from, what trained it, its warnings and
its figures, the key figures of its contract (``Project.key_figures``) first. It is a single
static file: the figures are embedded as data URIs (``--link`` refers to them by relative path
instead), the style is inline, and nothing is loaded from the network, so it opens offline and can
be passed around as one file.

It is a command rather than a DVC stage: it reads only files that git already tracks, takes well
under a second, and as a stage it would put a multi-megabyte generated file into git or the cache
and tie all six pipelines together in dvc.yaml.
"""

from __future__ import annotations

import argparse
import base64
import html
import logging
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ..files import atomic_path, read_json
from ..pipeline.contract import Project, built_projects
from ..results.summary import trained_on

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT = Path("reports/index.html")
OUTCOMES = {
    "beats": "beats its strongest baseline",
    "ties": "ties with its strongest baseline",
    "loses": "loses to its strongest baseline",
    "does not beat": "does not beat its best baseline",
}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { display: inline-block; padding: 0.1rem 0.5rem; border-radius: 0.3rem; color: #fff; }
.beats { background: #2e7d32; } .ties { background: #9e7b00; }
.loses, .does-not-beat { background: #c62828; } .none { background: #777; }
.line { font-family: ui-monospace, monospace; font-size: 0.9rem; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 1rem; }
figure { margin: 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85rem; color: #555; }
.warning { color: #8a4b00; }
"""


def verdict_of(metrics: dict) -> dict | None:
    """The ``verdict`` of a metrics file in one shape: the intervals and every baseline where the
    file has them (core/evidence.py's ``compare``), else the point scores only (``outcome`` is
    then ``beats`` or ``does not beat``, as no interval says whether it is a tie)."""
    v = metrics.get("verdict")
    if not v:
        return None
    if "verdict" in v:
        return {**v, "outcome": v["verdict"]}
    best = v.get("best_baseline")
    return {
        **v,
        "outcome": "beats" if v.get("beats_baseline") else "does not beat",
        "baselines": {best: {"score": v.get("baseline_score")}} if best else {},
    }


def number(value) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def interval(pair: Sequence[float] | None) -> str:
    return "-" if not pair else f"[{number(float(pair[0]))}, {number(float(pair[1]))}]"


def badge(outcome: str | None, short: bool = False) -> str:
    css = (outcome or "none").replace(" ", "-")
    text = OUTCOMES.get(outcome, "no verdict recorded")
    if short and outcome in OUTCOMES:
        text = outcome
    return f'<span class="verdict {css}">{html.escape(text)}</span>'


def source_of(metrics: dict) -> str:
    return (metrics.get("data") or {}).get("source") or metrics.get("source") or "-"


def summary_table(results: dict[str, dict | None]) -> str:
    """The results table: one row per project, linked to its section."""
    head = (
        "project", "data source", "headline model", "metric", "score", "95 % interval",
        "strongest baseline", "its score", "difference [95 %]", "verdict", "trained on",
    )  # fmt: skip
    rows = []
    for name, metrics in results.items():
        v = verdict_of(metrics or {}) or {}
        difference = v.get("difference", v.get("margin"))
        cells = [
            f'<a href="#{name}">{name}</a>',
            html.escape(source_of(metrics or {})),
            html.escape(str(v.get("model", "-"))),
            html.escape(str(v.get("metric", "-"))),
            number(v.get("score")),
            interval(v.get("interval")),
            html.escape(str(v.get("best_baseline", "-"))),
            number(v.get("baseline_score")),
            number(difference)
            + (f" {interval(v['difference_interval'])}" if v.get("difference_interval") else ""),
            badge(v.get("outcome"), short=True) if metrics else "not evaluated yet (dvc repro)",
            html.escape(trained_on((metrics or {}).get("runtime"))),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
    return f"<table>{header}{''.join(rows)}</table>"


def scores_table(v: dict) -> str:
    """The model and every baseline: score and 95 % interval, best first."""
    sign = 1 if v.get("higher_is_better", True) else -1
    baselines = sorted(
        v.get("baselines", {}).items(),
        key=lambda item: -sign * (item[1].get("score") or 0.0),
    )
    rows = [(v.get("model", "model"), "headline model", v)] + [
        (name, "strongest baseline" if name == v.get("best_baseline") else "baseline", b)
        for name, b in baselines
    ]
    body = "".join(
        f"<tr><td>{html.escape(str(name))}</td><td>{role}</td>"
        f'<td class="num">{number(entry.get("score"))}</td>'
        f"<td>{interval(entry.get('interval'))}</td></tr>"
        for name, role, entry in rows
    )
    metric = html.escape(str(v.get("metric", "score")))
    return (
        f"<table><tr><th>candidate</th><th>role</th><th>{metric}</th><th>95 % interval</th></tr>"
        f"{body}</table>"
    )


def figure(path: Path, page_dir: Path, embed: bool) -> str:
    if embed:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        src = f"data:image/png;base64,{data}"
    else:
        src = Path(os.path.relpath(path, page_dir)).as_posix()
    caption = html.escape(path.stem.replace("_", " "))
    return (
        f'<figure><img src="{html.escape(src)}" alt="{caption}">'
        f"<figcaption>{html.escape(path.name)}</figcaption></figure>"
    )


def ordered_figures(project: Project) -> list[Path]:
    """The project's images, its key figures first in the order its contract gives them (those
    drawn), then the others by name."""
    drawn = {path.name: path for path in sorted(project.paths.figures.glob("*.png"))}
    key = [drawn[name] for name in project.key_figures if name in drawn]
    return key + [path for path in drawn.values() if path not in key]


def project_section(project: Project, metrics: dict | None, page_dir: Path, embed: bool) -> str:
    name = project.name
    parts = [f'<section id="{name}"><h2>{name}</h2>']
    if metrics is None:
        parts.append(f"<p>Not evaluated yet: run <code>dvc repro {name}-plot</code>.</p>")
    else:
        v = verdict_of(metrics)
        parts.append(f"<p>{badge(v and v['outcome'])}</p>")
        if v:
            parts.append(f'<p class="line">{html.escape(v.get("line", ""))}</p>')
            parts.append(scores_table(v))
        data = metrics.get("data") or {}
        about = data.get("note") or data.get("description")
        parts.append(
            f"<p>Data: {html.escape(source_of(metrics))}"
            + (f" ({html.escape(about)})" if about else "")
            + f". Trained on: {html.escape(trained_on(metrics.get('runtime')))}.</p>"
        )
        parts += [f'<p class="warning">{html.escape(w)}</p>' for w in metrics.get("warnings", [])]
    figures = ordered_figures(project)
    if figures:
        parts.append('<div class="figures">')
        parts += [figure(f, page_dir, embed) for f in figures]
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)


def read_metrics(project: Project) -> dict | None:
    path = project.paths.metrics
    return read_json(path) if path.exists() else None


def commit() -> str:
    """The commit the results belong to, with a note when the workspace differs from it."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "metrics", "plots"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "outside git"
    return f"commit {rev}" + (", with metrics or plots changed since" if dirty else "")


def render(output: Path = DEFAULT_OUTPUT, embed: bool = True) -> str:
    """The page for the projects in the current directory (the repository root)."""
    projects = built_projects()
    results = {p.name: read_metrics(p) for p in projects}
    page_dir = output.parent
    sections = [project_section(p, results[p.name], page_dir, embed) for p in projects]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>xlalab results</title>"
        f"<style>{STYLE}</style></head><body>\n"
        "<h1>xlalab results</h1>\n"
        f"<p>From metrics/ and plots/ ({html.escape(commit())}). Each headline model is scored "
        "beside its baselines on the same test rows; intervals are 95 % bootstrap intervals, the "
        "difference is paired (core/evidence.py).</p>\n"
        f"{summary_table(results)}\n" + "\n".join(sections) + "\n</body></html>\n"
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
