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
those names that there are. The table (results/seed_table.py) goes to stdout as Markdown and, with
every seed's numbers, to a JSON file (``--out``, docs/seeds.json by default, which the results page
shows), project by project. docs/seeds.md has the details.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import re
import shlex
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..files import write_json
from ..pipeline.contract import built_projects, load_project
from ..pipeline.params import load_params
from .seed_table import PENDING, aggregate, experiment_name, latest, markdown, runs_of, seed_result

logger = logging.getLogger(__name__)

DEFAULT_SEEDS = 3
DEFAULT_OUT = Path("docs/seeds.json")
POLL_SECONDS = 15
MISSES = 5  # tries of dvc exp show
STALLED = 4  # polls in a row with tasks queued, none running and no worker: the queue is stuck


def seeds_of(project: str, count: int, params: dict[str, Any]) -> list[int]:
    """The project's seed from params.yaml, then the next ``count - 1`` integers."""
    base = (params.get(project) or {}).get("seed")
    if not isinstance(base, int) or isinstance(base, bool):
        raise UserError(
            f"params.yaml has no integer `{project}.seed`; add it to {project}'s section"
        )
    return [base + k for k in range(count)]


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
