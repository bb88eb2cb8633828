"""The torchvision source: the official ``cifar-10-python.tar.gz``, the archive torchvision
downloads, fetched once into the cache (or given as ``path``), md5-verified and read from its
pickled batches (batches.py)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from ...errors import UserError
from ...files import atomic_path, file_digest
from ...pipeline.contract import Paths
from ...pipeline.sources import Source
from ..project import DownloadParams
from . import batches
from .raw import RawData

_CHUNK = 1 << 20


def fetch_archive(url: str, target: Path) -> Path:
    """Download ``url`` to ``target`` atomically (a broken connection leaves no partial file)."""
    try:
        with (
            atomic_path(target) as tmp,
            urllib.request.urlopen(url, timeout=60) as response,
            open(tmp, "wb") as f,
        ):
            while block := response.read(_CHUNK):
                f.write(block)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise UserError(
            f"could not download {url} ({e.__class__.__name__}: {e}); download it by hand and set "
            "cifar10.download.path to the file, or set cifar10.download.source: offline"
        ) from None
    return target


def read_torchvision(
    path: str | None, cache_dir: Path, *, url: str = batches.CIFAR10_URL, md5: str | None = None
) -> RawData:
    """``path``: an already-downloaded archive, or the folder to cache it in (default
    ``cache_dir``)."""
    given = Path(path) if path else None
    if given is not None and given.is_file():
        archive = given
    else:
        if given is not None and given.name.endswith(".gz"):
            raise UserError(
                f"{given} does not exist; set cifar10.download.path to the downloaded "
                f"{batches.CIFAR10_ARCHIVE}, "
                "or to a folder to download it into"
            )
        archive = (given or cache_dir) / batches.CIFAR10_ARCHIVE
        expected = batches.CIFAR10_MD5 if md5 is None else md5
        if not archive.is_file() or file_digest(archive, "md5") != expected:
            fetch_archive(url, archive)
            bad = file_digest(archive, "md5")
            if bad != expected:
                archive.unlink()  # never keep a wrong file in the cache
                raise UserError(
                    f"{url} gave a file with md5 {bad}, expected {expected}; "
                    "check the URL or try again later"
                )
    raw = batches.read_cifar_archive(archive, md5=md5)
    raw.extra["url"] = url
    return raw


def read(params: DownloadParams, paths: Paths) -> RawData:
    return read_torchvision(params.download.path, paths.cache)


SOURCE = Source(
    "torchvision",
    ("path",),
    read,
    "CIFAR-10's official python archive, downloaded once and md5-verified",
)
