"""Stanford's Large Movie Review Dataset (Maas et al. 2011) as published: the ``aclImdb`` folder,
or the ``aclImdb_v1.tar.gz`` archive read member by member (nothing unpacked to disk).

Layout: ``aclImdb/{train,test}/{pos,neg}/<id>_<stars>.txt``, one review per file, 12,500 per
folder; stars 1-4 in ``neg``, 7-10 in ``pos``. Everything else (``unsup/``, ``urls_*.txt``,
``labeledBow.feat``, ``unsupBow.feat``, ``imdb.vocab``, ``imdbEr.txt``, ``README``) is not read.
The published 25,000/25,000 train/test split is kept; the label comes from the folder, the stars
from the file name, and both a missing or empty class folder and a file that does not parse or
read stop the download with one line naming it.
"""

from __future__ import annotations

import re
import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from ...errors import UserError
from ...files import file_digest
from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ...textclf import corpus
from ..project import DownloadParams

ROOT = "aclImdb"
CLASSES = {"neg": "negative", "pos": "positive"}
STARS = {"neg": range(1, 5), "pos": range(7, 11)}
FILE_NAME = re.compile(r"(\d+)_(\d+)\.txt")
IGNORED = "unsup/ (unlabelled), urls_*.txt, *Bow.feat, imdb.vocab, imdbEr.txt, README"
# (split, class folder, file name, a function returning the file's bytes)
Entry = tuple[str, str, str, Callable[[], bytes]]


def folders() -> list[tuple[str, str]]:
    return [(split, cls) for split in corpus.SPLITS for cls in CLASSES]


def folder_entries(root: Path) -> Iterator[Entry]:
    """The review files of an unpacked aclImdb folder (``root`` is it, or the folder holding it)."""
    if (root / ROOT).is_dir():
        root = root / ROOT
    for split, cls in folders():
        folder = root / split / cls
        if not folder.is_dir():
            raise UserError(
                f"{folder} is missing; `imdb.download.path` must be Stanford's aclImdb folder "
                "(with train/pos, train/neg, test/pos, test/neg) or aclImdb_v1.tar.gz"
            )
        for file in sorted(folder.iterdir()):
            if not file.name.startswith("."):  # a file manager's .DS_Store and the like
                yield split, cls, file.name, file.read_bytes


def archive_entries(archive: Path, present: set) -> Iterator[Entry]:
    """The review files of aclImdb_v1.tar.gz, read in archive order as a stream; the class folders
    the archive names go into ``present`` (to tell a missing folder from an empty one)."""
    try:
        with tarfile.open(archive, mode="r|*") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                inside = parts[parts.index(ROOT) + 1 :] if ROOT in parts else ()
                if len(inside) >= 2 and tuple(inside[:2]) in folders():
                    present.add(tuple(inside[:2]))
                if len(inside) != 3 or tuple(inside[:2]) not in folders():
                    continue
                if inside[2].startswith(".") or member.isdir():
                    continue
                reader = tar.extractfile(member) if member.isfile() else None
                yield (*inside, _reads(reader))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise UserError(
            f"{archive} is not a readable tar archive ({type(e).__name__}: {e}); download "
            "aclImdb_v1.tar.gz again, or point `imdb.download.path` at the unpacked folder"
        ) from None


def _reads(reader) -> Callable[[], bytes]:
    def read() -> bytes:
        if reader is None:
            raise OSError("not a regular file")
        return reader.read()

    return read


def parse(entries: Iterator[Entry], where: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Rows (id, stars, text, file) per (split, class folder), each file name and text checked."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = {key: [] for key in folders()}
    for split, cls, name, read in entries:
        file = f"{split}/{cls}/{name}"
        match = FILE_NAME.fullmatch(name)
        if match is None:
            raise UserError(
                f"{where}: {file} does not parse as <id>_<stars>.txt; remove it or restore the "
                "published file"
            )
        review_id, stars = int(match[1]), int(match[2])
        if stars not in STARS[cls]:
            raise UserError(
                f"{where}: {file} has {stars} stars, outside {cls}'s {STARS[cls][0]}-"
                f"{STARS[cls][-1]}; the file is in the wrong folder or misnamed"
            )
        try:
            text = read().decode("utf-8")
        except (OSError, UnicodeDecodeError, tarfile.TarError, EOFError, zlib.error) as e:
            raise UserError(
                f"{where}: cannot read {file} ({type(e).__name__}: {e}); restore the published file"
            ) from None
        found[(split, cls)].append({"id": review_id, "stars": stars, "text": text, "file": file})
    return found


def read(path: str) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The train and test frames (text, label, stars, file) and the card fields."""
    source = Path(path).expanduser()
    if not source.exists():
        raise UserError(
            f"{source} does not exist; set `imdb.download.path` to the aclImdb folder or "
            "aclImdb_v1.tar.gz"
        )
    present: set = set()
    is_archive = source.is_file()
    entries = archive_entries(source, present) if is_archive else folder_entries(source)
    found = parse(entries, str(source))
    for (split, cls), rows in found.items():
        if not rows:
            state = "is empty" if not is_archive or (split, cls) in present else "is missing"
            raise UserError(
                f"{source}: the class folder {ROOT}/{split}/{cls} {state}; the published set has "
                "12,500 reviews in each"
            )
    splits = {split: frame(found, split) for split in corpus.SPLITS}
    return splits, card(source, is_archive, splits)


def frame(found: dict, split: str) -> pd.DataFrame:
    """One split, rows in (class, id) order whatever order the files came in."""
    rows = [
        {**row, "label": CLASSES[cls]}
        for cls in CLASSES
        for row in sorted(found[(split, cls)], key=lambda r: r["id"])
    ]
    df = pd.DataFrame(rows)
    return df.assign(text=df["text"].map(corpus.clean_text))[
        ["text", "label", "stars", "id", "file"]
    ]


def card(source: Path, is_archive: bool, splits: dict[str, pd.DataFrame]) -> dict[str, Any]:
    return {
        "source": f"aclimdb:{source.name}",
        "format": "aclImdb_v1.tar.gz archive" if is_archive else "unpacked aclImdb folder",
        **({"checksum_sha256": file_digest(source)} if is_archive else {}),
        "split": "as published: aclImdb/train and aclImdb/test",
        "stars": {
            split: {str(k): int(v) for k, v in df["stars"].value_counts().sort_index().items()}
            for split, df in splits.items()
        },
        "ignored": IGNORED,
        "licence": "Large Movie Review Dataset v1.0 (Maas et al. 2011), for research use",
        "what": "IMDb movie reviews, labels from the folder (neg: 1-4 stars, pos: 7-10)",
    }


def read_source(
    params: DownloadParams, paths: Paths
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    return read(params.download.path)


SOURCE = Source(
    "aclimdb", ("path",), read_source, "Stanford's aclImdb folder or aclImdb_v1.tar.gz (25k/25k)"
)
