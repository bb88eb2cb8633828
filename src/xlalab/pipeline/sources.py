"""One shape for every data source, and the checks every source's files go through.

A project's download stage reads from one of several sources (``<project>.download.source``).
Each source is one module in ``xlalab/<project>/sources/`` that ends in a ``Source``: its name
(the param's value), the download params it reads, and ``read(params, paths)``, which returns the
project's raw tables. ``xlalab/<project>/sources/__init__.py`` lists them in a ``registry`` (one
line per source), and the download stage looks the configured one up there. Adding a source is one
new module and one line.

The checks below are the ones every source needs, written once: a file that is missing, empty,
only a header, cut short (a truncated gzip or CSV), in another encoding, with a repeated or missing
header, a word in a numeric column, non-finite numbers, too few rows, or one class only. Each
ends the stage with one line naming the file, the problem and the fix (a ``UserError``); numbers a
source may lack (blank, ``NaN``, ``Infinity``) become missing values and are counted, so the data
card can say what featurize will fill.
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd

from ..errors import UserError
from .contract import Paths

RawTables = TypeVar("RawTables")

# How published files write a number they do not have: kept as missing values, never an error.
MISSING_MARKERS = frozenset(
    {
        "",
        "-",
        "?",
        "na",
        "n/a",
        "nan",
        "null",
        "none",
        "inf",
        "-inf",
        "+inf",
        "infinity",
        "-infinity",
        "+infinity",
    }  # fmt: skip
)
# What reading a cut-short or damaged compressed file raises (gzip, zip, bz2 through pandas).
DAMAGED = (EOFError, gzip.BadGzipFile, zipfile.BadZipFile, zlib.error, OSError)


@dataclass(frozen=True)
class Source(Generic[RawTables]):
    """Where a project's data can come from: ``<project>.download.source: <name>``."""

    name: str  # the value of <project>.download.source
    reads: tuple[str, ...]  # the <project>.download params it reads, besides `source`
    read: Callable[[Any, Paths], RawTables]  # (the download stage's params, paths) -> raw tables
    summary: str  # one line: what the source is

    def __call__(self, params: Any, paths: Paths) -> RawTables:
        return self.read(params, paths)


def registry(*sources: Source) -> dict[str, Source]:
    """The sources of a project by name; a name given twice is a programming error."""
    named: dict[str, Source] = {}
    for source in sources:
        if source.name in named:
            raise ValueError(f"two sources are named {source.name!r}")
        named[source.name] = source
    return named


# --- files -----------------------------------------------------------------------------------
def existing(path: str | Path, fix: str) -> Path:
    """``path`` (``~`` expanded), which must exist; ``fix`` says what to point the param at."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"{path} does not exist; {fix}")
    return path


def not_empty(path: Path, fix: str) -> Path:
    """A file that holds more than white space (a gzip file: once decompressed)."""
    if path.stat().st_size == 0 or (path.stat().st_size < 4096 and not _head(path).strip()):
        raise UserError(f"{path} is empty; {fix}")
    return path


def complete(path: Path, fix: str) -> Path:
    """A plain CSV whose last line is cut short (fewer fields than its first line, no final
    newline) was truncated in transit: refused rather than read with the missing fields blank."""
    if path.suffix in (".gz", ".zip", ".bz2", ".xz") or path.stat().st_size == 0:
        return path
    with open(path, "rb") as f:
        first = f.readline()
        f.seek(max(0, path.stat().st_size - 65536))
        tail = f.read()
    complete_bytes(first + b"\n" + tail, path, fix)
    return path


def complete_bytes(data: bytes, where: Path | str, fix: str) -> None:
    """``complete`` for a CSV already in memory."""
    if not data or data.endswith((b"\n", b"\r")):
        return
    lines = data.splitlines()
    fields, expected = lines[-1].count(b",") + 1, lines[0].count(b",") + 1
    if len(lines) > 1 and fields < expected:
        raise UserError(
            f"{where} ends in a line of {fields} fields, not {expected}, without a final newline: "
            f"the file is truncated; {fix}"
        )


def _head(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as f:
            return f.read(4096)  # the head only: a source file can be gigabytes
    except DAMAGED as error:
        raise damaged(path, error) from None


def damaged(path: Path | str, error: BaseException) -> UserError:
    """The one line for a compressed file or archive that cannot be read to its end."""
    why = str(error).strip() or type(error).__name__
    return UserError(
        f"{path} is truncated or damaged ({why}); download it again and check its size"
    )


def wrong_encoding(
    path: Path | str, error: UnicodeDecodeError, encoding: str = "UTF-8"
) -> UserError:
    return UserError(
        f"{path} is not {encoding} text (byte {error.object[error.start : error.start + 1]!r} at "
        f"offset {error.start}); save it as {encoding}"
    )


def header_row(
    path: Path, fix: str, repeated_ok: Collection[str] = (), **read_kwargs: Any
) -> list[str]:
    """The first line of a CSV as names (stripped), checked: none repeated but ``repeated_ok``
    (names a published file is known to repeat)."""
    with csv_errors(path, fix, read_kwargs.get("encoding")):
        first = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False,
                            **read_kwargs)  # fmt: skip
    names = [str(v).replace("\ufeff", "").strip() for v in first.iloc[0].tolist()]
    check_header(names, path, repeated_ok)
    return names


def check_header(
    names: Iterable[str], where: Path | str, repeated_ok: Collection[str] = ()
) -> None:
    """Column names as a header must have them: each once (pandas would silently rename the second
    ``X`` to ``X.1`` and a source would read the first)."""
    seen: set[str] = set()
    for name in names:
        if name in seen and name not in repeated_ok:
            raise UserError(
                f"{where} names the column {name!r} twice in its header; rename or remove one"
            )
        seen.add(name)


@contextmanager
def csv_errors(path: Path, fix: str, encoding: str | None = None) -> Iterator[None]:
    """Every way reading ``path`` as a CSV can fail, as one line: empty, another encoding than
    ``encoding`` (UTF-8 unless named), not parseable, or a damaged (compressed) file."""
    try:
        yield
    except pd.errors.EmptyDataError:
        raise UserError(f"{path} is empty; {fix}") from None
    except UnicodeDecodeError as error:
        raise wrong_encoding(path, error, encoding or "UTF-8") from None
    except pd.errors.ParserError as error:
        raise UserError(f"{path} is not a readable CSV ({_first_line(error)}); {fix}") from None
    except DAMAGED as error:
        raise damaged(path, error) from None


def csv_chunks(path: Path, fix: str, chunk_rows: int, **read_kwargs: Any) -> Iterator[pd.DataFrame]:
    """A CSV (plain or compressed) in chunks, every way it can fail to read as one line."""
    with csv_errors(path, fix, read_kwargs.get("encoding")):
        yield from pd.read_csv(path, chunksize=chunk_rows, low_memory=False, **read_kwargs)


def read_csv(path: Path, fix: str, **read_kwargs: Any) -> pd.DataFrame:
    """A whole CSV, checked as ``csv_chunks`` checks it."""
    chunks = list(csv_chunks(path, fix, 1 << 20, **read_kwargs))
    return pd.concat(chunks, ignore_index=True) if len(chunks) != 1 else chunks[0]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def decode_text(data: bytes, where: str, encoding: str = "utf-8") -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise wrong_encoding(where, error, encoding.upper()) from None


def sniff_rows(data: bytes) -> list[list[str]]:
    """The rows of small CSV bytes (a labels file), BOM and blank lines dropped."""
    text = data.decode("utf-8-sig", errors="strict")
    return [row for row in csv.reader(io.StringIO(text)) if row]


# --- values ----------------------------------------------------------------------------------
def numbers(
    frame: pd.DataFrame, columns: Iterable[str], where: str, first_line: int = 2
) -> tuple[pd.DataFrame, dict[str, int]]:
    """``columns`` of ``frame`` as floats, and per column how many values became missing.

    Blank, ``NaN``, ``Infinity`` and the like (``MISSING_MARKERS``) and infinite numbers become
    missing values, to be filled later and counted in the data card; anything else that is not a
    number (a word, a second header row) stops the stage, naming the value, the column and the
    line (``first_line``: the file line of the frame's first row)."""
    out = frame.copy()
    missing: dict[str, int] = {}
    for column in columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            # Already numbers (integers stay integers, so a file's values are written unchanged).
            infinite = np.isinf(values.astype(float).to_numpy())
            count = int(infinite.sum() + values.isna().sum())
            if count:
                missing[column] = count
                out[column] = values.where(~infinite)
            continue
        numeric = pd.to_numeric(values, errors="coerce")
        if not pd.api.types.is_bool_dtype(values):  # text (object or pandas' str dtype)
            marked = values.isna() | values.astype(str).str.strip().str.lower().isin(
                MISSING_MARKERS
            )
            bad = numeric.isna() & ~marked
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise UserError(
                    f"{where} has {values.iloc[row]!r} in the numeric column {column!r} (line "
                    f"{first_line + row}); fix or remove that row, or check the file has no "
                    "second header row"
                )
        numeric = numeric.astype(float).replace([np.inf, -np.inf], np.nan)
        count = int(numeric.isna().sum())
        if count:
            missing[column] = count
        out[column] = numeric
    return out, missing


def add_counts(total: dict[str, int], more: Mapping[str, int]) -> dict[str, int]:
    for key, value in more.items():
        total[key] = total.get(key, 0) + int(value)
    return total


def require_rows(rows: int, needed: int, where: str, fix: str) -> None:
    """At least ``needed`` rows (``rows == 0`` with a header: "a header but no rows")."""
    if rows == 0:
        raise UserError(f"{where} has a header but no rows; {fix}")
    if rows < needed:
        raise UserError(
            f"{where} has {rows} rows, too few for the split (at least {needed}); {fix}"
        )


def require_classes(counts: Mapping[Any, int], where: str, fix: str, needed: int = 2) -> None:
    """At least ``needed`` classes with rows: a classifier (or a detector's verdict) needs them."""
    present = sorted(str(name) for name, n in counts.items() if n > 0)
    if len(present) < needed:
        only = ", ".join(present) or "none"
        raise UserError(
            f"{where} holds only the class(es) {only}; at least {needed} are needed; {fix}"
        )
