"""Reading params.yaml into typed, checked configs.

Every stage declares a ``Params`` class: its fields are the keys of the project's section that the
stage reads (``runtime`` means the root ``runtime`` section). ``parse`` validates them once, before
the stage runs, and turns the first problem into one line that names the key, what is allowed and
what was found. The same fields become the stage's ``params:`` in dvc.yaml (core/pipeline.py), so
what a stage reads and what DVC watches cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import pydantic
import yaml

from .errors import UserError

PARAMS_FILE = Path("params.yaml")
RUNTIME = "runtime"  # the one root section a stage may read besides its project's


class Params(pydantic.BaseModel):
    """Base of every params section: unknown keys are errors (a typo must not pass silently) and
    values are checked on assignment too."""

    # strict: YAML already gives typed values, so "3" is not silently an int (ints still pass as
    # floats)
    model_config = pydantic.ConfigDict(
        extra="forbid", strict=True, validate_assignment=True, protected_namespaces=()
    )


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


def stage_params(name: str, **sections: Any) -> type[Params]:
    """A stage's Params class from the keys it reads, e.g.
    ``TrainParams = stage_params("TrainParams", seed=Seed, train=Train, runtime=Runtime)``:
    each keyword is a key of the project's section (``runtime``: the root section) and its type."""
    return pydantic.create_model(
        name, __base__=Params, **{key: (kind, ...) for key, kind in sections.items()}
    )


# --- the sections every project shares ---------------------------------------------------------
# They live here, not beside the loop and the backends, so that a project's params (imported by
# every one of its stages) do not make its download stage depend on the training code.
class Runtime(Params):
    """The root ``runtime`` section: where and how every training and prediction runs."""

    backend: Literal["auto", "xla", "accelerate"]  # auto: xla on a TPU host, else accelerate
    bf16: bool
    # torch's intra-op threads on the host (torch.set_num_threads), per process; None: torch's
    # default
    # (one per core; under several processes the launcher sets one each)
    cpu_threads: int | None = Field(ge=1)
    # Data-parallel processes on this machine (accelerate backend): `python -m xlalab` starts them
    # through Accelerate's launcher (core/launch.py). The xla backend instead uses every device of
    # the host in one process through SPMD.
    processes: int = Field(ge=1)


class TrainConfig(Params):
    """The loop's params, the same keys in every project's ``train`` section (projects subclass
    it to add their own). ``seed`` comes from the project's top-level seed."""

    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    lr: float = Field(gt=0.0)
    weight_decay: float = Field(ge=0.0)
    optimizer: Literal["adamw", "sgd"]
    scheduler: Literal["cosine", "linear", "constant"]
    warmup_fraction: float = Field(ge=0.0, le=1.0)
    grad_accum_steps: int = Field(ge=1)
    max_grad_norm: float | None = Field(gt=0.0)
    patience: int | None = Field(ge=1)  # early stopping: epochs without improvement
    eval_batch_size: int | None = Field(ge=1)  # null: batch_size
    # Not a params.yaml key, so the one field with a default in code: ``seeded`` sets it from the
    # project's top-level ``seed``, which every stage of the project reads.
    seed: int = Field(default=0, ge=0)

    def seeded(self, seed: int) -> TrainConfig:
        return self.model_copy(update={"seed": seed})
