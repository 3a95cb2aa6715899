"""Look at a task: a PNG grid of source samples above target samples, with class names."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .._optional import require
from .base import Task


def _as_image(x: torch.Tensor) -> np.ndarray:
    x = x.detach().float().cpu()
    x = (x - x.min()) / (x.max() - x.min() + 1e-8)  # undo any normalization for display
    if x.shape[0] == 1:
        return x[0].numpy()
    return x.permute(1, 2, 0).numpy()


def show(task: Task, path: str | os.PathLike[str] | None = None, per_domain: int = 16, seed: int = 0) -> Path:
    """Write a PNG grid: ``per_domain`` source samples (top) above target samples (bottom).

    Image tasks show images with their class names; vector tasks (moons, blobs) show a scatter of
    both domains coloured by class. Target labels are read from ``task.target_test`` (display only).
    Returns the path written (default ``<benchmark>_<source>_<target>.png``).
    """
    sns = require("seaborn", "bench", "adapt.data.show")
    plt = require("matplotlib.pyplot", "bench", "adapt.data.show")

    path = Path(path or f"{task.benchmark}_{task.source}_{task.target}.png".replace("/", "_"))
    rng = np.random.default_rng(seed)
    if len(task.input_shape) == 1:
        fig = _scatter(task, plt, sns)
    else:
        cols = min(per_domain, 8)
        rows = int(np.ceil(per_domain / cols))
        fig, axes = plt.subplots(2 * rows, cols, figsize=(1.4 * cols, 1.6 * 2 * rows + 0.6), squeeze=False)
        for block, (label, dataset) in enumerate((("source", task.source_train), ("target", _target_view(task)))):
            picks = rng.choice(len(dataset), size=min(per_domain, len(dataset)), replace=False)
            for k in range(rows * cols):
                ax = axes[block * rows + k // cols, k % cols]
                ax.axis("off")
                if k < len(picks):
                    x, y = _item(dataset[int(picks[k])])
                    ax.imshow(_as_image(torch.as_tensor(x)), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                    ax.set_title(task.classes[int(y)] if y is not None else "unlabeled", fontsize=8)
            axes[block * rows, 0].text(
                -0.15,
                0.5,
                f"{label}\n{getattr(task, label)}",
                transform=axes[block * rows, 0].transAxes,
                ha="right",
                va="center",
                fontsize=10,
                fontweight="bold",
            )
        fig.suptitle(f"{task.name}: source (top) vs target (bottom)", fontsize=11)
        fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _target_view(task: Task):
    """The labeled target test set, or the unlabeled target when it came without labels."""
    return task.target_test if task.target_test is not None else task.target_eval


def _item(item) -> tuple:
    """``(x, y)`` of a dataset item; ``y`` None for an item of inputs only."""
    if isinstance(item, (tuple, list)):
        return (item[0], item[1]) if len(item) >= 2 else (item[0], None)
    return item, None


def _scatter(task: Task, plt, sns):
    frames = []
    for domain, dataset in (("source", task.source_train), ("target", _target_view(task))):
        items = [_item(dataset[i]) for i in range(len(dataset))]
        x = torch.stack([torch.as_tensor(x) for x, _ in items]).numpy()
        classes = [task.classes[int(y)] if y is not None else "unlabeled" for _, y in items]
        frames.append(pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "class": classes, "domain": domain}))
    data = pd.concat(frames)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharex=True, sharey=True)
    for ax, domain in zip(axes, ("source", "target")):
        sns.scatterplot(data=data[data.domain == domain], x="x0", y="x1", hue="class", style="class", s=18, ax=ax)
        ax.set_title(f"{domain}: {getattr(task, domain)}")
    fig.suptitle(task.name + (" (first two dimensions)" if task.input_shape[0] > 2 else ""))
    fig.tight_layout()
    return fig
