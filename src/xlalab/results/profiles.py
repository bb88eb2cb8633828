"""Real-data profiles: a checked-in file of params overrides per project (``profiles/real.yaml``),
run as a named DVC experiment so ``dvc exp show`` and ``dvc metrics diff`` put the real run beside
the offline one.

``xlalab real <project>|all [-S key=value ...] [--dry-run]`` runs
``dvc exp run -n real-<project> -S ... <project>-plot`` for each project; extra ``-S`` overrides (a
local path for users without hub access, say) win over the profile's.
"""

from __future__ import annotations

import argparse
import copy
import shlex
import subprocess
from pathlib import Path
from typing import Any

import yaml

from ..errors import UserError
from ..pipeline.contract import built_projects, load_project
from ..pipeline.params import load_params, parse

PROFILE = Path("profiles/real.yaml")


def load_profile(path: Path = PROFILE) -> dict[str, dict[str, Any]]:
    if not path.exists():
        raise UserError(f"{path} not found; run from the repository root")
    return yaml.safe_load(path.read_text()) or {}


def apply(params: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``params`` with each dotted key replaced; a key that params.yaml does not have is an
    error."""
    out = copy.deepcopy(params)
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = out
        for part in parents:
            if not isinstance(node, dict) or part not in node:
                raise UserError(f"profile override `{dotted}` names no param in params.yaml")
            node = node[part]
        if not isinstance(node, dict) or leaf not in node:
            raise UserError(f"profile override `{dotted}` names no param in params.yaml")
        node[leaf] = value
    return out


def check(project: str, overrides: dict[str, Any], params: dict[str, Any]) -> None:
    """Every override names a real param and every stage of the project accepts the result."""
    changed = apply(params, overrides)
    for stage in load_project(project).stages:
        parse(stage.params, changed, project)


def command(project: str, overrides: dict[str, Any]) -> list[str]:
    sets = [
        f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
        for k, v in overrides.items()
    ]
    return [
        "dvc",
        "exp",
        "run",
        "-n",
        f"real-{project}",
        *[a for s in sets for a in ("-S", s)],
        f"{project}-plot",
    ]


def parse_sets(pairs: list[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UserError(f"-S {pair!r} is not key=value")
        out[key] = yaml.safe_load(value)
    return out


def run_profiles(target: str, extra: list[str], dry_run: bool) -> int:
    profile = load_profile()
    names = [p.name for p in built_projects()] if target == "all" else [target]
    params = load_params()
    for name in names:
        if name not in profile:
            raise UserError(f"{PROFILE} has no profile for {name!r}; it has: {', '.join(profile)}")
        overrides = {**profile[name], **parse_sets(extra)}
        check(name, overrides, params)
        argv = command(name, overrides)
        print("$ " + shlex.join(argv), flush=True)
        if not dry_run:
            code = subprocess.call(argv)
            if code:
                return code
    return 0


HELP = f"run projects on their real sources with the overrides in {PROFILE}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .. import PROJECTS

    parser.add_argument("project", choices=(*PROJECTS, "all"))
    parser.add_argument(
        "-S",
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra override, e.g. -S imdb.download.path=/data/imdb.csv",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the dvc command, run nothing")


def run(args: argparse.Namespace) -> int:
    return run_profiles(args.project, args.set, args.dry_run)
