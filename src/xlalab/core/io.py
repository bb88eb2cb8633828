"""File helpers. Every output is written to a temporary path and renamed into place, so a
failed or killed stage never leaves a half-written output behind."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import UserError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _tmp_sibling(path: Path, is_dir: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it owner-only
        return tmp
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(name, 0o666 & ~_umask())  # mkstemp makes it owner-only
    return Path(name)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``, on error it
    is deleted and ``path`` is left as it was."""
    path = Path(path)
    tmp = _tmp_sibling(path, is_dir)
    try:
        yield tmp
        if is_dir and path.exists():
            _remove(path)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist; run the stage that writes it first (dvc repro)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON ({e}); delete it and re-run the stage that writes it")


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types from numpy/torch scalars and arrays, rounded to keep diffs readable."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return round(value, 6)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # torch scalars
        return to_jsonable(obj.item())
    return obj


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes (md5 where a publisher gives md5 checksums)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def fingerprint(*parts: Any, files: tuple[str | os.PathLike, ...] = ()) -> str:
    """A short hash of JSON-able values and file contents: what makes a checkpoint resumable."""
    digest = hashlib.sha256(json.dumps(to_jsonable(list(parts)), sort_keys=True).encode())
    for f in files:
        digest.update(file_digest(f).encode())
    return digest.hexdigest()[:16]


def require_file(path: str | os.PathLike, made_by: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} is missing; run `{made_by}` (or `dvc repro`) first")
    return path
