"""How much a project's result moves with its seed: ``xlalab seeds <project>|all [-n 3]`` runs the
project's pipeline once per seed as queued DVC experiments and reports, over the seeds, the mean,
standard deviation, min and max of the headline score and of its difference to the strongest
baseline, and how many seeds gave each verdict (beats / ties / loses).

The seeds are the project's own (``<project>.seed`` in params.yaml) plus 0, 1, ..., N-1, so the
first is the default pipeline's run. Each is one experiment, ``seeds-<project>-<seed>``:
``dvc exp run --queue -f -n seeds-traffic-1 -S traffic.seed=1 traffic-plot`` (``-f`` replaces an
experiment of that name from an earlier call). ``dvc queue start -j <jobs>`` runs the queue; the
command polls ``dvc queue status`` until none of them is queued or running, then reads each one's
``metrics/<project>.json`` from ``dvc exp show --json`` (a failed run counts as failed, never with
the metrics it started from). ``--collect-only`` skips the runs and collects the experiments of
those names that there are. The table goes to stdout as Markdown and, with every seed's numbers,
to a JSON file (``--out``), project by project. docs/seeds.md has the details.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import math
import re
import shlex
import statistics
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..files import write_json
from ..pipeline.contract import built_projects, load_project
from ..pipeline.params import load_params

logger = logging.getLogger(__name__)

DEFAULT_SEEDS = 3
DEFAULT_OUT = Path("docs/seeds.json")
POLL_SECONDS = 15
MISSES = 5  # tries of dvc exp show
STALLED = 4  # polls in a row with tasks queued, none running and no worker: the queue is stuck
PENDING = ("queued", "running")


def seeds_of(project: str, count: int, params: dict[str, Any]) -> list[int]:
    """The project's seed from params.yaml, then the next ``count - 1`` integers."""
    base = (params.get(project) or {}).get("seed")
    if not isinstance(base, int) or isinstance(base, bool):
        raise UserError(
            f"params.yaml has no integer `{project}.seed`; add it to {project}'s section"
        )
    return [base + k for k in range(count)]


def experiment_name(project: str, seed: int) -> str:
    return f"seeds-{project}-{seed}"


def queue_command(project: str, seed: int) -> list[str]:
    """The pipeline of ``project`` alone with ``seed``, queued as a named DVC experiment (replacing
    one of the same name)."""
    return [
        *("dvc", "exp", "run", "--queue", "-f"),
        *("-n", experiment_name(project, seed)),
        *("-S", f"{project}.seed={seed}"),
        f"{project}-plot",
    ]


def start_command(jobs: int) -> list[str]:
    return ["dvc", "queue", "start", "-j", str(jobs)]


SHOW_COMMAND = ["dvc", "exp", "show", "--json"]
QUEUE_STATUS = ["dvc", "queue", "status"]


@dataclasses.dataclass(frozen=True)
class Run:
    """One experiment as ``dvc exp show --json`` reports it."""

    name: str
    state: str  # queued | running | success | failed
    rev: str
    timestamp: str | None  # when queued; when finished, for a run that succeeded
    metrics: dict | None  # metrics/<project>.json of the experiment's commit
    log: str | None  # the queue's log of the run


def runs_of(shown: list[dict], project: str) -> list[Run]:
    """Every experiment named ``seeds-<project>-<seed>`` in ``dvc exp show --json`` output (the
    workspace's baseline commit and its experiments). Its metrics hold no lists: DVC drops them."""
    pattern = re.compile(rf"seeds-{re.escape(project)}-(-?\d+)")
    found = []
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            executor = experiment.get("executor") or {}
            for rev in experiment.get("revs") or []:
                name = rev.get("name") or experiment.get("name") or ""
                if not pattern.fullmatch(name):
                    continue
                data = rev.get("data") or {}
                metrics = (data.get("metrics") or {}).get(f"metrics/{project}.json") or {}
                state = executor.get("state") or ("failed" if rev.get("error") else "success")
                found.append(
                    Run(
                        name=name,
                        state=state,
                        rev=rev.get("rev", ""),
                        timestamp=data.get("timestamp"),
                        metrics=metrics.get("data"),
                        log=(executor.get("local") or {}).get("log"),
                    )
                )
    return found


def latest(runs: list[Run], names: list[str], since: str | None = None) -> dict[str, Run | None]:
    """For each name, its run that counts: one still queued or running, else the newest finished
    one, from ``since`` on (an ISO time, as ``dvc exp show`` writes them) when given, so that an
    earlier call's run of the same name does not count. None: no such run."""
    chosen: dict[str, Run | None] = {}
    for name in names:
        candidates = [r for r in runs if r.name == name]
        pending = [r for r in candidates if r.state in PENDING]
        finished = sorted(
            (r for r in candidates if r.state not in PENDING),
            key=lambda r: r.timestamp or "",
        )
        if since is not None:
            finished = [r for r in finished if (r.timestamp or "") >= since]
        pool = pending or finished
        chosen[name] = pool[-1] if pool else None
    return chosen


def seed_result(seed: int, run: Run | None, project: str) -> dict:
    """One seed's numbers from its run's metrics: the verdict of core/evidence.py, or the older
    point estimates (verdict ``does not beat`` when the model did not beat the baseline)."""
    name = experiment_name(project, seed)
    if run is None:
        return {"seed": seed, "experiment": name, "state": "missing"}
    out = {"seed": seed, "experiment": name, "rev": run.rev, "state": run.state}
    verdict = (run.metrics or {}).get("verdict") or {}
    if run.state != "success" or "score" not in verdict:
        if run.state == "success":
            out["state"] = "failed"
            out["reason"] = f"no verdict in metrics/{project}.json"
        return {**out, "log": run.log} if run.log else out
    if "difference" in verdict and "verdict" in verdict:
        shape, difference, outcome = "evidence", verdict["difference"], verdict["verdict"]
    else:
        shape, difference = "point", verdict["score"] - verdict["baseline_score"]
        outcome = "beats" if verdict.get("beats_baseline") else "does not beat"
    return {
        **out,
        "shape": shape,  # evidence: core/evidence.py's verdict; point: older point estimates
        "model": verdict.get("model"),
        "metric": verdict.get("metric"),
        "higher_is_better": verdict.get("higher_is_better"),
        "score": verdict["score"],
        "best_baseline": verdict.get("best_baseline"),
        "baseline_score": verdict.get("baseline_score"),
        "difference": difference,
        "verdict": outcome,
    }


def spread(values: list[float]) -> dict:
    """Mean, sample standard deviation (None for one value), min and max."""
    return {
        "n": len(values),
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else None,
        "min": min(values),
        "max": max(values),
    }


def aggregate(project: str, results: list[dict]) -> dict:
    """A project's row: the headline and the difference over the seeds that succeeded, the
    verdicts counted, the strongest baselines named, and the seeds that did not run."""
    ok = [r for r in results if r["state"] == "success"]
    row: dict[str, Any] = {
        "project": project,
        "seeds": [r["seed"] for r in results],
        "succeeded": len(ok),
        "failed": [r for r in results if r["state"] != "success"],
    }
    if ok:
        row |= {
            "model": ok[0]["model"],
            "metric": ok[0]["metric"],
            "higher_is_better": ok[0]["higher_is_better"],
            "headline": spread([r["score"] for r in ok]),
            "difference": spread([r["difference"] for r in ok]),
            "verdicts": dict(Counter(r["verdict"] for r in ok)),
            "point_estimates": sum(r["shape"] == "point" for r in ok),
            "strongest_baselines": dict(Counter(r["best_baseline"] for r in ok)),
        }
    row["runs"] = results
    return row


def describe_spread(s: dict, sign: bool = False) -> str:
    """``0.827 ± 0.004 [0.822, 0.830]``: decimals to two significant digits of the standard
    deviation (four significant digits when it is 0 or unknown)."""
    sd = s["sd"]
    if not sd or not math.isfinite(sd):
        body = f"{s['mean']:{'+' if sign else ''}.4g}"
        return f"{body} [{s['min']:.4g}, {s['max']:.4g}]" + ("" if sd is None else " ± 0")
    digits = min(6, max(0, 1 - math.floor(math.log10(sd))))
    mean = f"{s['mean']:{'+' if sign else ''}.{digits}f}"
    return f"{mean} ± {sd:.{digits}f} [{s['min']:.{digits}f}, {s['max']:.{digits}f}]"


COLUMNS = (
    "project",
    "seeds",
    "headline model",
    "metric",
    "headline: mean ± sd [min, max]",
    "strongest baseline (seeds)",
    "difference: mean ± sd [min, max]",
    "beats / ties / loses",
)


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        seeds = f"{row['succeeded']} of {len(row['seeds'])} ({', '.join(map(str, row['seeds']))})"
        if not row["succeeded"]:
            lines.append(f"| {row['project']} | {seeds} |" + " - |" * (len(COLUMNS) - 2))
            continue
        arrow = {True: " ↑", False: " ↓"}.get(row["higher_is_better"], "")
        verdicts = row["verdicts"]
        counts = " / ".join(str(verdicts.get(v, 0)) for v in ("beats", "ties", "loses"))
        if row["point_estimates"]:  # older metrics: beats or not on a point estimate
            counts = (
                f"{verdicts.get('beats', 0)} beat, {verdicts.get('does not beat', 0)} do not "
                f"(point estimates, no intervals: {row['point_estimates']} of {row['succeeded']})"
            )
        baselines = ", ".join(f"{b} ({n})" for b, n in row["strongest_baselines"].items())
        cells = [
            row["project"],
            seeds,
            row["model"],
            row["metric"] + arrow,
            describe_spread(row["headline"]),
            baselines,
            describe_spread(row["difference"], sign=True),
            counts,
        ]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines) + "\n"


# --- running them -------------------------------------------------------------------------------
def call(argv: list[str]) -> None:
    logger.info("$ %s", shlex.join(argv))
    code = subprocess.call(argv)
    if code:
        raise UserError(f"`{shlex.join(argv)}` failed (exit status {code}); see its messages above")


def show_command(names: list[str]) -> list[str]:
    """``dvc exp show --json`` for HEAD and every commit that experiments of ``names`` were run
    from (found among the experiment refs, ``refs/exps/<2>/<38>/<name>``): experiments belong to
    the commit they were queued from, which may no longer be HEAD when they are collected."""
    refs = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname)", "refs/exps"],
        capture_output=True,
        text=True,
    ).stdout.split()
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    baselines = {
        parts[2] + parts[3]
        for parts in (ref.split("/") for ref in refs)
        if len(parts) == 5 and parts[4] in names
    }
    revs = ["HEAD", *sorted(baselines - {head.stdout.strip()})]
    return [*SHOW_COMMAND, *(a for rev in revs for a in ("--rev", rev))]


def exp_show(names: list[str]) -> list[dict]:
    """``dvc exp show --json`` of the experiments of ``names`` (show_command), tried again a few
    times: DVC can trip over an experiment's copy that is being removed right then (``directory
    '.dvc/tmp/exps/tmp.../.dvc' does not exist``)."""
    argv = show_command(names)
    for attempt in range(1, MISSES + 1):
        out = subprocess.run(argv, capture_output=True, text=True)
        if out.returncode == 0:
            return json.loads(out.stdout)
        if attempt < MISSES:
            time.sleep(POLL_SECONDS)
    raise UserError(f"`{shlex.join(argv)}` failed: {out.stderr.strip()[-500:]}")


def read_queue_status(text: str) -> tuple[dict[str, list[str]], int | None]:
    """From ``dvc queue status``: the statuses of each task name (queued, running, failed,
    success; a name can have several tasks) and how many workers are alive (None: not said)."""
    statuses: dict[str, list[str]] = {}
    for line in text.splitlines():
        cells = line.split()
        if len(cells) >= 3 and re.fullmatch(r"[0-9a-f]{7}", cells[0]):
            statuses.setdefault(cells[1], []).append(cells[-1].lower())
    workers = re.search(r"Worker status: (\d+) active, (\d+) idle", text)
    return statuses, (int(workers[1]) + int(workers[2]) if workers else None)


def queue_status() -> str:
    return subprocess.run(QUEUE_STATUS, capture_output=True, text=True).stdout


def wait_for(names: list[str]) -> list[dict]:
    """Poll ``dvc queue status`` (cheap) until no task named in ``names`` is queued or running,
    then return ``dvc exp show --json``. Stops with an error when tasks wait, none runs and the
    queue says it has no worker, ``STALLED`` polls in a row. (While a task runs, the worker count
    is not trusted: a busy worker can miss the status query on a loaded machine and count as 0.)"""
    said, stalled = "", 0
    while True:
        statuses, workers = read_queue_status(queue_status())
        states = Counter(
            next((s for s in PENDING if s in statuses.get(name, [])), "done") for name in names
        )
        progress = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
        if progress != said:
            logger.info("seed experiments: %s", progress)
            said = progress
        pending = states["queued"] + states["running"]
        if not pending:
            return exp_show(names)
        running = any("running" in s for s in statuses.values())
        stalled = stalled + 1 if workers == 0 and not running else 0
        if stalled >= STALLED:
            raise UserError(
                f"{pending} seed experiment(s) wait in the DVC queue, which has no worker; run "
                "`dvc queue start`, then `xlalab seeds ... --collect-only` once they finish "
                "(`dvc queue status`, `dvc queue logs <name>`)"
            )
        time.sleep(POLL_SECONDS)


def collect(shown: list[dict], plan: dict[str, list[int]], since: str | None = None) -> list[dict]:
    """One aggregated row per project of ``plan`` (project -> seeds) from ``dvc exp show``."""
    rows = []
    for project, seeds in plan.items():
        names = [experiment_name(project, seed) for seed in seeds]
        chosen = latest(runs_of(shown, project), names, since)
        results = [seed_result(seed, chosen[name], project) for seed, name in zip(seeds, names)]
        rows.append(aggregate(project, results))
    return rows


def save(rows: list[dict], path: Path) -> None:
    """Write the rows into ``path``, project by project: the other projects' rows stay."""
    kept = json.loads(path.read_text()) if path.exists() else {}
    kept.update({row["project"]: row for row in rows})
    write_json(path, kept)


def now() -> str:
    """The time as ``dvc exp show`` writes experiments' times (local, to the second)."""
    return datetime.datetime.now().replace(microsecond=0).isoformat()


def commands(plan: dict[str, list[int]]) -> list[list[str]]:
    return [queue_command(project, seed) for project, seeds in plan.items() for seed in seeds]


def run_plan(plan: dict[str, list[int]], jobs: int) -> tuple[list[dict], str]:
    """Queue one experiment per project and seed, run the queue with ``jobs`` workers, wait for
    them; returns ``dvc exp show --json`` once they are done, and when they were queued."""
    since = now()
    for argv in commands(plan):
        call(argv)
    call(start_command(jobs))
    return wait_for(
        [experiment_name(p, seed) for p, seeds in plan.items() for seed in seeds]
    ), since


def run_seeds(
    target: str, count: int, jobs: int, dry_run: bool, collect_only: bool, out: Path
) -> int:
    if count < 1 or jobs < 1:
        raise UserError("-n and --jobs must be at least 1")
    names = [p.name for p in built_projects()] if target == "all" else [target]
    params = load_params()
    plan = {name: seeds_of(load_project(name).name, count, params) for name in names}
    if dry_run:
        for argv in [*commands(plan), start_command(jobs), SHOW_COMMAND]:
            print("$ " + shlex.join(argv))
        return 0
    names = [experiment_name(p, seed) for p, seeds in plan.items() for seed in seeds]
    shown, since = (exp_show(names), None) if collect_only else run_plan(plan, jobs)
    rows = collect(shown, plan, since)
    print(markdown(rows), end="", flush=True)
    save(rows, out)
    logger.info("wrote %s", out)
    failed = [f for row in rows for f in row["failed"]]
    for f in failed:
        logger.error(
            "%s: %s%s",
            f["experiment"],
            f.get("reason", f["state"]),
            f"; its log: `dvc queue logs {f['rev'][:7]}`" if f.get("rev") else "",
        )
    return 1 if failed else 0


HELP = (
    "run projects over N seeds as queued DVC experiments; mean and spread of the headline and of "
    "its difference to the strongest baseline"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .. import PROJECTS

    parser.add_argument("project", choices=(*PROJECTS, "all"))
    parser.add_argument(
        "-n",
        "--seeds",
        type=int,
        default=DEFAULT_SEEDS,
        help=f"how many seeds: the project's seed and the next ones (default {DEFAULT_SEEDS})",
    )
    parser.add_argument(
        "-j", "--jobs", type=int, default=1, help="experiments run at once (default 1)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the dvc commands, run nothing"
    )
    parser.add_argument(
        "--collect-only",
        action="store_true",
        help="run nothing; collect the experiments of an earlier call",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"JSON file the rows go to, project by project (default {DEFAULT_OUT})",
    )


def run(args: argparse.Namespace) -> int:
    return run_seeds(args.project, args.seeds, args.jobs, args.dry_run, args.collect_only, args.out)
