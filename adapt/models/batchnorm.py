"""Context managers for a method's extra forward passes: BatchNorm statistics and dropout."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


def batch_norm_layers(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer (1-D, 2-D, 3-D, sync) inside ``module``."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextlib.contextmanager
def frozen_running_statistics(module: nn.Module) -> Iterator[None]:
    """BatchNorm layers normalize with the batch's own statistics, and their running estimates (and
    batch counts) are put back afterwards, whatever the batches held (NaN included).

    For forward passes that must not move the statistics the model predicts with: AdaBN's source
    pass, VADA's perturbed inputs.
    """
    norms = [m for m in batch_norm_layers(module) if m.track_running_stats]
    saved = [{k: b.detach().clone() for k, b in m.named_buffers(recurse=False) if b is not None} for m in norms]
    try:
        yield
    finally:
        for m, buffers in zip(norms, saved):
            for name, value in buffers.items():
                # a new tensor, not an in-place copy: the pass's autograd graph may hold the old one
                setattr(m, name, value)


@contextlib.contextmanager
def dropout_disabled(module: nn.Module) -> Iterator[None]:
    """Dropout layers pass inputs through unchanged inside the block (other layers keep their mode), so
    that several forward passes of one batch differ only by what the caller changes."""
    layers = [m for m in module.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.training]
    for m in layers:
        m.eval()
    try:
        yield
    finally:
        for m in layers:
            m.train()
