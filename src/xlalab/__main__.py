"""``python -m xlalab <project> <stage>``: run one pipeline stage (this is what dvc.yaml calls).
``python -m xlalab summary``: one table of every project's headline metric, best baseline and verdict.
``python -m xlalab real <project>|all``: run projects on their real sources (profiles/real.yaml)."""
from __future__ import annotations

import argparse
import importlib
import sys

from . import PROJECTS
from .core.errors import UserError
from .core.launch import launch_stage_if_needed  # imports torch only when several processes are asked for
from .core.project import STAGE_NAMES, lines_said_last, run_stage

# Commands besides running a stage, named as strings and imported only when used, so that no stage
# (and no stage's dvc.yaml deps) pulls in their code.
COMMANDS = {"summary": "xlalab.core.summary:main", "real": "xlalab.core.profiles:main"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in COMMANDS:
        module, function = COMMANDS[argv[0]].split(":")
        return getattr(importlib.import_module(module), function)(argv[1:])
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
        with lines_said_last() as last_lines:
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
    sys.stdout.flush()  # before the verdict on stderr: the log ends with it
    for line in last_lines:
        print(line, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
