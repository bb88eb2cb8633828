"""File helpers. Every output is written to a temporary path and renamed into place, so a
failed or killed stage never leaves a half-written output behind; training curves, which are
watched while they grow, are written in place instead, the previous ones put back on failure."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError


def _tmp_sibling(path: Path, is_dir: bool) -> Path:
    """A fresh, unused name beside ``path`` that keeps its suffix (pandas, numpy and matplotlib go
    by it): ``.<stem>.<random>.tmp<suffix>``. A folder is created, empty; a file is not."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Left by a run that was killed (SIGKILL skips the clean-up below). No other run can be writing
    # here: DVC locks the workspace, queued experiments run in their own copies, and processes
    # other than the first of a launch write into scratch folders (core/runner.py).
    for stale in path.parent.glob(f".{path.stem}.*.tmp{path.suffix}"):
        _remove(stale)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    )
    if is_dir:
        mask = os.umask(0)
        os.umask(mask)
        tmp.chmod(0o777 & ~mask)  # mkdtemp makes it owner-only
        return tmp
    tmp.rmdir()  # the name was reserved; the writer creates the file with the usual permissions
    return tmp


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (a new empty folder with ``is_dir``, else a name to
    write a file to); on success it replaces ``path``, on error it is deleted and ``path`` is left
    as it was. The one way every output in this repository is written."""
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


@contextlib.contextmanager
def written_in_place(path: str | os.PathLike) -> Iterator[Path]:
    """Yield ``path`` itself as a new empty folder, for an output worth watching while it is
    written (training curves). The folder that was there is kept aside meanwhile: put back if the
    writer fails, so a failure still leaves the previous output as it was, and deleted on
    success. (A killed run's copy kept aside is removed by the next run, like ``atomic_path``'s.)"""
    path = Path(path)
    previous = _tmp_sibling(path, is_dir=False)  # a free name beside it
    had_previous = path.exists() or path.is_symlink()
    if had_previous:
        os.replace(path, previous)
    try:
        path.mkdir()
        yield path
    except BaseException:
        _remove(path)
        if had_previous:
            os.replace(previous, path)
        raise
    if had_previous:
        _remove(previous)


def write_json(path: str | os.PathLike, obj: Any, digits: int | None = None) -> Path:
    """``obj`` as indented JSON; floats kept to 6 decimals, or to ``digits`` significant digits
    (what the git-tracked reports use: REPORTED_DIGITS)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(to_jsonable(obj, digits), indent=2, sort_keys=False) + "\n")
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist; run the stage that writes it first (dvc repro)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(
            f"{path} is not valid JSON ({e}); delete it and re-run the stage that writes it"
        ) from None


# Significant digits of every number in the git-tracked results (metrics/, reports/<project>/,
# plots/): enough for any score a test set of these sizes can resolve, and few enough that float32
# training on another thread count or CPU (which moves values in the 7th digit) leaves the files as
# committed.
# docs/sharing.md has the measurements.
REPORTED_DIGITS = 4


def significant(value: float, digits: int = REPORTED_DIGITS) -> float:
    """``value`` rounded to ``digits`` significant digits (20246.49 -> 20250.0, 0.0012345 ->
    0.001234)."""
    return float(f"{value:.{digits}g}")


def to_jsonable(obj: Any, digits: int | None = None) -> Any:
    """Plain JSON types from numpy/torch scalars and arrays, floats rounded to keep diffs readable:
    to 6 decimals, or to ``digits`` significant digits."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, digits) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist(), digits)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return round(value, 6) if digits is None else significant(value, digits)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # torch scalars
        return to_jsonable(obj.item(), digits)
    return obj


def is_timing(key: str) -> bool:
    """Whether a result's key is a time or a speed (``seconds``, ``train_seconds``,
    ``samples_per_sec``, ...): a property of the machine and its load, not of the result."""
    return key == "seconds" or key.endswith(("_seconds", "per_sec"))


def split_timing(obj: Any) -> tuple[Any, Any]:
    """``obj`` without its timing keys, and the timing keys alone under the same nesting (dicts
    emptied by the split are dropped; lists are kept whole in the first part)."""
    if not isinstance(obj, dict):
        return obj, None
    kept, timing = {}, {}
    for key, value in obj.items():
        if is_timing(str(key)):
            timing[key] = value
            continue
        rest, times = split_timing(value)
        if times:
            timing[key] = times
        if rest != {} or value == {}:
            kept[key] = rest
    return kept, timing


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
