"""Run records on disk: one JSON file per run, written atomically, read defensively.

A record that cannot be read (truncated by a full disk, edited by hand, not JSON) or that repeats
the id of another (a copied file) never blocks a sweep or a report: it is named in a warning and
left out; a sweep also moves it to ``<out>/runs/rejected/`` so that its run is redone.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._files import write_atomically

#: Keys every readable record has.
REQUIRED_KEYS = ("id", "config", "status")


def digest(config: dict[str, Any]) -> str:
    """The 16-hex-digit id of a configuration (key order does not matter)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


class RecordWarning(UserWarning):
    """A record was unreadable or a duplicate and was left out."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return _jsonable(value.item())
    return value


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Atomic: a reader sees either no file or the whole record, even after SIGKILL."""
    text = json.dumps(_jsonable(record), indent=1, sort_keys=True)
    write_atomically(path, lambda handle: handle.write(text.encode()))


def _problem(path: Path) -> tuple[dict[str, Any] | None, str]:
    """The record in ``path``, or None and what is wrong with it."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"not a readable JSON record ({type(exc).__name__}: {exc})"
    if not isinstance(record, dict) or any(k not in record for k in REQUIRED_KEYS):
        return None, f"not a run record (needs the keys {', '.join(REQUIRED_KEYS)})"
    if not isinstance(record["config"], dict) or "method" not in record["config"]:
        return None, "its config names no method (an empty or edited record)"
    return record, ""


def read_records(out: str | os.PathLike[str], move_rejected: bool = False) -> list[dict[str, Any]]:
    """Every readable record under ``<out>/runs``, one per run id (sorted by file name).

    Unreadable records and second copies of an id are named in a :class:`RecordWarning` and left
    out; with ``move_rejected`` (a sweep) they are moved to ``<out>/runs/rejected/``, so the run of
    an unreadable record is redone.
    """
    runs = Path(out, "runs")
    records: dict[str, dict[str, Any]] = {}
    origin: dict[str, Path] = {}
    for path in sorted(runs.glob("*.json")):
        record, problem = _problem(path)
        if record is not None and record["id"] in records:
            problem = f"a second record of run {record['id']} (the first is {origin[record['id']].name})"
        if problem:
            action = "moved to runs/rejected/; its run will be redone" if move_rejected else "left out"
            warnings.warn(f"{path}: {problem}; {action}", RecordWarning, stacklevel=2)
            if move_rejected:
                (runs / "rejected").mkdir(exist_ok=True)
                os.replace(path, runs / "rejected" / path.name)
            continue
        records[record["id"]] = record
        origin[record["id"]] = path
    return list(records.values())
