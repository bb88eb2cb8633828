"""The table of ``xlalab seeds`` (results/seeds.py runs the experiments): each seed's headline from
its experiment's ``metrics/<project>.json`` as ``dvc exp show --json`` reports it, and per project
the mean, standard deviation, min and max over the seeds of the headline score and of its
difference to the strongest baseline, with how many seeds gave each verdict. The results page
shows the same table from ``docs/seeds.json``.
"""

from __future__ import annotations

import dataclasses
import re
import statistics
from collections import Counter
from typing import Any

from ..numbers import metric_name, with_spread

PENDING = ("queued", "running")
VERDICTS = ("beats", "ties", "loses")


def experiment_name(project: str, seed: int) -> str:
    return f"seeds-{project}-{seed}"


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


def headline_of(metrics: dict | None) -> dict | None:
    """A run's headline (pipeline/report.py's keys) from its metrics, or from the layout before
    them (a ``verdict`` object: experiments run before the change); None when it has neither."""
    m = metrics or {}
    if isinstance(m.get("verdict"), str) and "score" in m:
        return m
    v = m.get("verdict")
    if not isinstance(v, dict) or v.get("verdict") not in VERDICTS:
        return None
    return {
        "model": v.get("model"),
        "metric": v.get("metric"),
        "better": "higher" if v.get("higher_is_better") else "lower",
        "score": v["score"],
        "baseline": v.get("best_baseline"),
        "baseline_score": v.get("baseline_score"),
        "diff": v["difference"],
        "verdict": v["verdict"],
    }


def seed_result(seed: int, run: Run | None, project: str) -> dict:
    """One seed's numbers from its run's metrics."""
    name = experiment_name(project, seed)
    if run is None:
        return {"seed": seed, "experiment": name, "state": "missing"}
    out = {"seed": seed, "experiment": name, "rev": run.rev, "state": run.state}
    h = headline_of(run.metrics) if run.state == "success" else None
    if h is None:
        if run.state == "success":
            out["state"] = "failed"
            out["reason"] = f"no verdict in metrics/{project}.json"
        return {**out, "log": run.log} if run.log else out
    return {
        **out,
        "model": h.get("model"),
        "metric": h.get("metric"),
        "higher_is_better": h.get("better") == "higher",
        "score": h["score"],
        "best_baseline": h.get("baseline"),
        "baseline_score": h.get("baseline_score"),
        "difference": h["diff"],
        "verdict": h["verdict"],
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
            "strongest_baselines": dict(Counter(r["best_baseline"] for r in ok)),
        }
    row["runs"] = results
    return row


def describe_spread(s: dict, sign: bool = False) -> str:
    """``0.827 ± 0.004 [0.822, 0.830]`` (xlalab/numbers.py's ``with_spread``)."""
    return with_spread(s["mean"], s["sd"], s["min"], s["max"], sign=sign)


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


def cells(row: dict) -> list[str]:
    """A project's row of the table, one string a column (``-`` where no seed succeeded)."""
    seeds = f"{row['succeeded']} of {len(row['seeds'])} ({', '.join(map(str, row['seeds']))})"
    if not row["succeeded"]:
        return [row["project"], seeds] + ["-"] * (len(COLUMNS) - 2)
    verdicts = row["verdicts"]
    return [
        row["project"],
        seeds,
        row["model"],
        metric_name(row["metric"], row["higher_is_better"]),
        describe_spread(row["headline"]),
        ", ".join(f"{b} ({n})" for b, n in row["strongest_baselines"].items()),
        describe_spread(row["difference"], sign=True),
        " / ".join(str(verdicts.get(v, 0)) for v in VERDICTS),
    ]


def markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(map(str, cells(row))) + " |" for row in rows]
    return "\n".join(lines) + "\n"
