"""``python -m xlalab <project> <stage>``: run one pipeline stage (this is what dvc.yaml calls).
``python -m xlalab summary``: one table of every project's headline metric, best baseline and verdict.
``python -m xlalab real <project>|all``: run projects on their real sources (profiles/real.yaml)."""
from __future__ import annotations

import argparse
import sys

from . import PROJECTS
from .core.errors import UserError
from .core.launch import launch_stage_if_needed  # imports torch only when a stage reads runtime
from .core.project import STAGE_NAMES, run_stage


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["summary"]:  # one table of every built project (README: Results)
        from .core.summary import markdown

        print(markdown(), end="")
        return 0
    if argv[:1] == ["real"]:  # a project (or all) on its real source, as a named DVC experiment
        return real(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m xlalab", description=__doc__)
    parser.add_argument("project", choices=PROJECTS)
    parser.add_argument("stage", choices=STAGE_NAMES)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    try:
        # runtime.processes > 1: this process only starts the stage's processes and waits for them.
        status = launch_stage_if_needed(args.project, args.stage, args.params)
        if status is not None:
            return status
        outputs = run_stage(args.project, args.stage, args.params)
    except UserError as e:
        print(f"error: {args.project} {args.stage}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{args.project} {args.stage}: interrupted; `dvc repro` resumes training from the last "
              "checkpoint", file=sys.stderr)
        return 130
    for path in outputs:
        print(f"wrote {path}")
    return 0


def real(argv: list[str]) -> int:
    from .core.profiles import PROFILE, run

    parser = argparse.ArgumentParser(prog="python -m xlalab real",
                                     description=f"run a project on its real source with the overrides in {PROFILE}")
    parser.add_argument("project", choices=(*PROJECTS, "all"))
    parser.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra override, e.g. -S imdb.download.path=/data/imdb.csv")
    parser.add_argument("--dry-run", action="store_true", help="print the dvc command, run nothing")
    args = parser.parse_args(argv)
    try:
        return run(args.project, args.set, args.dry_run)
    except UserError as e:
        print(f"error: real {args.project}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
