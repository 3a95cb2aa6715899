"""Verified downloads: temporary file, checksum, then an atomic rename; clear errors otherwise."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from .base import DatasetNotFoundError
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
    if not (md5 or sha256):
        raise DownloadError(f"refusing to download {url} without a checksum to verify it against (md5= or sha256=)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    expected = f"md5 {md5}" if md5 else f"sha256 {sha256}"
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


#: Written into a dataset folder once an archive is wholly unpacked there: ``.adapt-complete-<key>.json``.
COMPLETE_MARKER = ".adapt-complete-{key}.json"
#: Set to 1 to allow a ``file://`` mirror (a local copy of the archives); otherwise mirrors must be https.
ALLOW_FILE_MIRROR = "ADAPT_ALLOW_FILE_MIRROR"


def _archive_url(source: Source, mirror: str | None) -> str:
    """The official URL, or ``<mirror>/<filename>``: https only, ``file://`` when explicitly allowed."""
    mirror = mirror or os.environ.get("ADAPT_DATA_MIRROR")
    if not mirror:
        return source.url
    scheme = urllib.parse.urlsplit(mirror).scheme
    if scheme == "file" and os.environ.get(ALLOW_FILE_MIRROR) == "1":
        return f"{mirror.rstrip('/')}/{source.filename}"
    if scheme != "https":
        raise DownloadError(
            f"mirror {mirror!r}: only https:// mirrors are used (set {ALLOW_FILE_MIRROR}=1 to allow a file:// one)"
        )
    return f"{mirror.rstrip('/')}/{source.filename}"


def fetch(key: str, root: str | os.PathLike[str], layout: str, mirror: str | None = None) -> Path:
    """Download and unpack the archive ``SOURCES[key]`` under ``root``; returns the unpacked folder.

    The archive is unpacked into a hidden staging folder first; only complete entries are moved
    into place, and a completion marker (:data:`COMPLETE_MARKER`) listing them is written last, so
    an interrupted download or extraction never leaves a partial dataset where the loaders look.
    """
    source: Source = SOURCES[key]
    root = Path(root)
    target = root / source.unpacks_to
    if source.md5 is None:
        raise DownloadError(
            f"no checksum is recorded for {key} ({source.url}), so adapt does not download it automatically.\n"
            f"Download it yourself and create this layout:\n{layout}"
        )
    url = _archive_url(source, mirror)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f".{key}.partial-*"):  # left by an interrupted fetch
        shutil.rmtree(stale, ignore_errors=True)
    archive = download_verified(url, root / source.filename, md5=source.md5, layout=f"Or create by hand:\n{layout}")
    # staging next to the real target (which may be a link to another disk): moves never cross filesystems
    home = target.resolve().parent
    home.mkdir(parents=True, exist_ok=True)
    for stale in home.glob(f".{key}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=home, prefix=f".{key}.partial-"))
    try:
        extract(archive, staging)
        unpacked = staging / source.unpacks_to
        if not unpacked.is_dir():
            raise DownloadError(
                f"{archive.name} did not unpack to {source.unpacks_to}/; create this layout by hand:\n{layout}"
            )
        (target / COMPLETE_MARKER.format(key=key)).unlink(missing_ok=True)  # not complete while files move
        entries = _move_entries(unpacked, target)
        marker = {"source": key, "md5": source.md5, "entries": entries}
        (target / COMPLETE_MARKER.format(key=key)).write_text(json.dumps(marker, indent=1))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        archive.unlink(missing_ok=True)
    return target


def _move_entries(unpacked: Path, target: Path) -> list[str]:
    """Merge ``unpacked`` into ``target`` file by file (each move atomic; the archive's version of a
    file replaces an older one, files that are not in the archive stay); the top-level names."""
    target.mkdir(parents=True, exist_ok=True)
    entries = sorted(p.name for p in unpacked.iterdir() if not p.name.startswith(".adapt-complete-"))
    for name in entries:
        source = unpacked / name
        if source.is_dir():
            for path in sorted(source.rglob("*")):
                dest = target / path.relative_to(unpacked)
                if path.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                else:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, dest)
        else:
            os.replace(source, target / name)
    return entries


class UnverifiedDataError(DatasetNotFoundError):
    """A dataset folder is there but not known to be complete (no completion marker, or parts gone)."""


def mark_complete(key: str, root: str | os.PathLike[str]) -> Path:
    """Mark the folder of ``SOURCES[key]`` under ``root`` as complete (for data arranged by hand)."""
    if key not in SOURCES or SOURCES[key].md5 is None:
        known = ", ".join(k for k, s in SOURCES.items() if s.md5 is not None)
        raise ValueError(f"unknown download {key!r}; folders of these are checked for completeness: {known}")
    target = Path(root).expanduser() / SOURCES[key].unpacks_to
    if not target.is_dir():
        raise FileNotFoundError(f"no folder {target} to mark")
    marker = target / COMPLETE_MARKER.format(key=key)
    entries = sorted(p.name for p in target.iterdir() if not p.name.startswith(".adapt-complete-"))
    marker.write_text(json.dumps({"source": key, "md5": None, "entries": entries, "by": "hand"}, indent=1))
    return marker


def check_unpacked(key: str, root: str | os.PathLike[str]) -> None:
    """Refuse a dataset folder not known to be complete: without a completion marker (an older or
    interrupted unpacking, or data arranged by hand and not marked), or missing what its marker lists.
    A folder that is not there at all is left to the loaders (they say what to download).
    """
    target = Path(root) / SOURCES[key].unpacks_to
    marker = target / COMPLETE_MARKER.format(key=key)
    if not target.exists():
        return
    if not marker.exists():
        raise UnverifiedDataError(
            f"{target} has no completion marker: it may be a partial copy. If you arranged it by hand and it is "
            f"complete, run: adapt-bench mark-data {key} --data-root {Path(root)}; otherwise delete it and "
            "download it again (--download)"
        )
    try:
        entries = json.loads(marker.read_text())["entries"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UnverifiedDataError(
            f"{marker} is damaged ({exc}); delete {target} and download again (--download)"
        ) from exc
    missing = [name for name in entries if not (target / name).exists()]
    if missing:
        raise UnverifiedDataError(
            f"{target} is incomplete: {', '.join(missing[:5])} missing since it was downloaded; delete {target} "
            "and download again (--download)"
        )
