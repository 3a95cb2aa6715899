"""Verified downloads: temporary file, checksum, then an atomic rename; clear errors otherwise."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from .sources import SOURCES, Source


class DownloadError(RuntimeError):
    """A download failed or did not match its checksum; the message says what to do by hand."""


def file_digest(path: str | os.PathLike[str], algorithm: str = "md5") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_verified(
    url: str, dest: str | os.PathLike[str], md5: str | None = None, sha256: str | None = None, layout: str = ""
) -> Path:
    """Download ``url`` to ``dest`` through a temporary file, verify it, then rename it into place.

    On any failure no file is left at ``dest`` (nor a partial temporary file), and the error names
    the URL, the expected checksum and the layout to create by hand.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    expected = f"md5 {md5}" if md5 else f"sha256 {sha256}" if sha256 else "none recorded"
    hint = f"\nExpected checksum: {expected}.\n{layout}".rstrip()
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    shutil.copyfileobj(response, out, 1 << 20)
            except Exception as exc:
                raise DownloadError(f"download of {url} failed: {exc}{hint}") from exc
        for algorithm, want in (("md5", md5), ("sha256", sha256)):
            if want and (got := file_digest(tmp, algorithm)) != want:
                raise DownloadError(f"checksum mismatch for {url}: expected {algorithm} {want}, got {got}{hint}")
        os.replace(tmp, dest)
        return dest
    finally:
        if tmp.exists():
            tmp.unlink()


def extract(archive: str | os.PathLike[str], into: str | os.PathLike[str]) -> None:
    """Unpack a .tar(.gz) or .zip archive, refusing members that would escape ``into``."""
    into = Path(into).resolve()
    archive = Path(archive)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if not (into / name).resolve().is_relative_to(into):
                    raise DownloadError(f"{archive} has an unsafe member {name!r}")
            z.extractall(into)
        return
    with tarfile.open(archive) as t:
        t.extractall(into, filter="data")


def fetch(key: str, root: str | os.PathLike[str], layout: str, mirror: str | None = None) -> Path:
    """Download and unpack the archive ``SOURCES[key]`` under ``root``; returns the unpacked folder."""
    source: Source = SOURCES[key]
    root = Path(root)
    target = root / source.unpacks_to
    mirror = mirror or os.environ.get("ADAPT_DATA_MIRROR")
    url = f"{mirror.rstrip('/')}/{source.filename}" if mirror else source.url
    if source.md5 is None:
        raise DownloadError(
            f"no checksum is recorded for {key} ({source.url}), so adapt does not download it automatically.\n"
            f"Download it yourself and create this layout:\n{layout}"
        )
    archive = download_verified(url, root / source.filename, md5=source.md5, layout=f"Or create by hand:\n{layout}")
    extract(archive, root)
    archive.unlink()
    if not target.exists():
        raise DownloadError(f"{archive.name} did not unpack to {target}; create this layout by hand:\n{layout}")
    return target
