"""Reading params.yaml, with checks that turn nonsense values into one clear error."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import yaml

from .errors import UserError

PARAMS_FILE = Path("params.yaml")


def load_params(path: str | Path = PARAMS_FILE) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} not found; run from the repository root, where params.yaml lives")
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise UserError(f"{path} is not valid YAML: {e}".replace("\n", " "))
    if not isinstance(params, dict):
        raise UserError(f"{path} must be a mapping of sections (runtime:, cifar10:, ...)")
    return params


def section(params: dict[str, Any], *keys: str) -> dict[str, Any]:
    node: Any = params
    for i, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            raise UserError(f"params.yaml has no `{'.'.join(keys[: i + 1])}` section; add it (see README)")
        node = node[key]
    return node


def get(p: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str, *,
        choices: Iterable[Any] | None = None, min: float | None = None, max: float | None = None,
        allow_none: bool = False) -> Any:
    """One checked param. ``where`` is the dotted prefix used in messages, e.g. ``cifar10.train``."""
    name = f"{where}.{key}"
    if key not in p:
        raise UserError(f"params.yaml is missing `{name}`; add it (see README)")
    value = p[key]
    if value is None and allow_none:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        wanted = " or ".join(k.__name__ for k in kinds)
        raise UserError(f"`{name}` must be {wanted}, got {value!r}")
    if choices is not None and value not in tuple(choices):
        raise UserError(f"`{name}` is {value!r}; choose one of: {', '.join(map(str, choices))}")
    if min is not None and value < min:
        raise UserError(f"`{name}` is {value!r}; it must be at least {min}")
    if max is not None and value > max:
        raise UserError(f"`{name}` is {value!r}; it must be at most {max}")
    return value
