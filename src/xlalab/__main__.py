"""``python -m xlalab <project> <stage>``: run one pipeline stage (this is what dvc.yaml calls)."""
from __future__ import annotations

import argparse
import importlib
import sys

from . import PROJECTS
from .core.errors import UserError
from .core.params import load_params


def stages_of(project: str) -> dict:
    try:
        module = importlib.import_module(f"xlalab.{project}.stages")
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith(f"xlalab.{project}"):
            raise UserError(f"project {project!r} is not built yet")
        raise
    return module.STAGES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xlalab", description=__doc__)
    parser.add_argument("project", choices=PROJECTS)
    parser.add_argument("stage", help="download, featurize, train, evaluate or plot")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    try:
        stages = stages_of(args.project)
        if args.stage not in stages:
            raise UserError(f"{args.project} has no stage {args.stage!r}; stages: {', '.join(stages)}")
        outputs = stages[args.stage](load_params(args.params))
    except UserError as e:
        print(f"error: {args.project} {args.stage}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{args.project} {args.stage}: interrupted; `dvc repro` resumes training from the last "
              "checkpoint", file=sys.stderr)
        return 130
    for path in outputs or ():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
