"""The xlalab command (also python -m xlalab).

Run one pipeline stage as dvc.yaml does ("xlalab cifar10 train" is "python -m
xlalab.cifar10.train"), or a command that reads across projects: summary prints the results table,
report writes the results page, costs prints what each stage cost, real runs projects on their real
sources, seeds runs them over several seeds.
"""

from __future__ import annotations

import argparse
import logging
import runpy
import sys

from . import PROJECTS
from .errors import UserError
from .pipeline import log
from .pipeline.contract import STAGE_NAMES, load_project
from .results import costs, profiles, seeds, summary
from .results import page as results_page

logger = logging.getLogger(__name__)

# name -> the module that adds its arguments (add_arguments) and runs it (run).
COMMANDS = {
    "summary": summary,
    "report": results_page,
    "costs": costs,
    "real": profiles,
    "seeds": seeds,
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="xlalab", description=__doc__.split("\n\n")[1])
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in PROJECTS:
        stage = sub.add_parser(name, help=f"run a stage of {name}: {' | '.join(STAGE_NAMES)}")
        stage.add_argument("stage", choices=STAGE_NAMES)
        stage.add_argument(
            "--params", default="params.yaml", help="params file (default: params.yaml)"
        )
        stage.add_argument("-v", "--verbose", action="count", default=0, help="more messages")
        stage.add_argument(
            "-q", "--quiet", action="count", default=0, help="warnings and errors only"
        )
    for name, module in COMMANDS.items():
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command in COMMANDS:
        log.setup(0)
        try:
            return COMMANDS[args.command].run(args)
        except UserError as e:
            logger.error("%s: %s", args.command, e)
            return 2
    return run_stage_module(args)


def run_stage_module(args: argparse.Namespace) -> int:
    """``python -m <the stage's module>`` in this process, with the same options."""
    stage = load_project(args.command).stage(args.stage)
    options = ["--params", args.params] + ["-v"] * args.verbose + ["-q"] * args.quiet
    module, arguments = stage.command[1], stage.command[2:]  # ["-m", module, project?]
    saved, sys.argv = sys.argv, [module, *arguments, *options]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = saved
    return 0
