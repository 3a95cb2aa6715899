"""Mid-run checkpoints: a killed training resumes where it stopped and ends with the same weights.

A checkpoint holds everything the rest of the run depends on: the model, optimizer and loss-scaler
states, the random number generators (torch on every device, numpy, Python, and the generator
that orders the batches), each batch stream's position in its epoch, the loss log since the last
history row, the history so far, and the state of callbacks that keep one (checkpoint selection).
It is written atomically (temporary file, then rename) and loaded with ``weights_only=True``.

Resuming is exact for in-memory data and for Datasets that adapt batches itself with
``num_workers=0`` (the thread count of the checkpointed run is restored too). With worker processes,
random augmentations in the workers are seeded afresh on resume (same images, other crops); a
DataLoader you pass restarts its current epoch.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._files import write_atomically
from ..errors import InputError

CHECKPOINT_FORMAT = 1


@dataclass
class ResumePolicy:
    """Where and how often to checkpoint: every ``every`` steps and/or every ``seconds`` seconds."""

    path: Path
    every: int = 0
    seconds: float = 0.0
    last_save: float = 0.0

    def __post_init__(self) -> None:
        self.last_save = time.perf_counter()

    def due(self, step: int) -> bool:
        """Whether to checkpoint after ``step`` steps (1-based)."""
        if self.every and step % self.every == 0:
            return True
        return bool(self.seconds) and time.perf_counter() - self.last_save >= self.seconds


def rng_state(device: torch.device) -> dict[str, Any]:
    """The global generators' states as tensors and plain values (``weights_only`` loadable): the
    CPU's, numpy's, Python's and, for a CUDA run, that of the run's GPU only (a resumed run may get
    another GPU index)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, cached],
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Undo :func:`rng_state`, into the GPU this run uses now."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically: a reader finds the previous checkpoint or this one, never half of one."""
    write_atomically(path, lambda handle: torch.save({"format": CHECKPOINT_FORMAT, **state}, handle))


def load_checkpoint(path: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint at ``path`` (None when there is none); an error when another run wrote it."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"training checkpoint {path} cannot be read ({exc}); delete it to start over") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not an adapt training checkpoint; delete it to start over")
    if state["fingerprint"] != fingerprint:
        changed = sorted(k for k in fingerprint if state["fingerprint"].get(k) != fingerprint[k])
        raise InputError(
            f"training checkpoint {path} belongs to another run (differs in {', '.join(changed) or 'its keys'}); "
            "delete it, or pass another checkpoint_path"
        )
    return state
