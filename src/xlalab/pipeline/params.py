"""Reading params.yaml into typed, checked configs.

Every stage declares a ``Params`` class: its fields are the keys of the project's section that the
stage reads (``runtime`` means the root ``runtime`` section). ``parse`` validates them once, before
the stage runs, and turns the first problem into one line that names the key, what is allowed and
what was found. The same fields become the stage's ``params:`` in dvc.yaml (core/pipeline.py), so
what a stage reads and what DVC watches cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

import pydantic
import yaml

from ..engine.settings import Params
from ..errors import UserError

PARAMS_FILE = Path("params.yaml")
RUNTIME = "runtime"  # the one root section a stage may read besides its project's


P = TypeVar("P", bound=Params)


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} not found; run from the repository root, where params.yaml lives")
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise UserError(f"{path} is not valid YAML: {e}".replace("\n", " ")) from None
    if not isinstance(params, dict):
        raise UserError(f"{path} must be a mapping of sections (runtime:, cifar10:, ...)")
    return params


def param_keys(cls: type[Params], project: str) -> list[str]:
    """The dotted params.yaml keys a stage with this ``Params`` class reads (dvc.yaml's
    ``params:``)."""
    return [RUNTIME if name == RUNTIME else f"{project}.{name}" for name in cls.model_fields]


def parse(cls: type[P], params: dict[str, Any], project: str) -> P:
    """Pick the stage's keys out of params.yaml and check them; one-line UserError otherwise."""
    section = params.get(project)
    if not isinstance(section, dict):
        raise UserError(f"params.yaml has no `{project}:` section; add it (see README)")
    picked = {}
    for name in cls.model_fields:
        source, key = (params, RUNTIME) if name == RUNTIME else (section, name)
        if key in source:
            picked[name] = source[key]
    try:
        return cls.model_validate(picked)
    except pydantic.ValidationError as e:
        raise UserError(describe_error(e, project)) from None


def describe_error(error: pydantic.ValidationError, project: str) -> str:
    """The first validation problem as ``params.yaml: `a.b.c` ...`` (the full dotted key)."""
    first = error.errors()[0]
    loc = [str(x) for x in first["loc"]]
    key = ".".join(loc if loc and loc[0] == RUNTIME else [project, *loc])
    kind, msg = first["type"], first["msg"]
    if kind == "missing":
        return f"params.yaml is missing `{key}`; add it (see README and params.yaml)"
    if kind == "extra_forbidden":
        return f"params.yaml has `{key}`, which no stage reads; remove it or check its spelling"
    found = first.get("input")
    msg = msg.replace("Input should be", "must be").replace("Value error, ", "")
    return f"params.yaml: `{key}` {msg} (got {found!r})"


Field = pydantic.Field
model_validator = pydantic.model_validator
field_validator = pydantic.field_validator

Seed = Annotated[int, Field(ge=0)]  # every project's top-level ``seed``


def _each_once(values: list) -> list:
    if len(set(values)) != len(values):
        raise ValueError("names an entry twice; list each once")
    return values


Unique = pydantic.AfterValidator(
    _each_once
)  # ``Annotated[list[X], Unique]``: a list without repeats
