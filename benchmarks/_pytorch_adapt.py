"""pytorch-adapt's own adapters for a method, wired as its README shows (the baseline of our benchmarks)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: Methods with a direct pytorch-adapt counterpart (CDAN and MCC need extra hook wiring there).
SUPPORTED = ("source_only", "dann", "dan", "coral")


def make_adapter(name: str, generator: nn.Module, feature_width: int, num_classes: int, device) -> tuple[Any, dict]:
    """Return ``(adapter, models)`` for ``name``: SGD lr 0.01 momentum 0.9, pytorch-adapt's 3-layer
    discriminator for DANN, and its Aligner with MMDLoss (DAN) or CORALLoss (CORAL)."""
    from pytorch_adapt.adapters import DANN, Aligner, Classifier
    from pytorch_adapt.containers import Models, Optimizers
    from pytorch_adapt.layers import CORALLoss, MMDLoss
    from pytorch_adapt.models import Discriminator

    if name not in SUPPORTED:
        raise ValueError(f"no pytorch-adapt baseline for {name!r}; supported: {', '.join(SUPPORTED)}")
    models = {"G": generator.to(device), "C": nn.Linear(feature_width, num_classes).to(device)}
    optimizers = Optimizers((torch.optim.SGD, {"lr": 0.01, "momentum": 0.9}))
    if name == "dann":
        models["D"] = Discriminator(in_size=feature_width, h=1024).to(device)
        adapter = DANN(models=Models(models), optimizers=optimizers)
    elif name == "source_only":
        adapter = Classifier(models=Models(models), optimizers=optimizers)
    else:
        loss_fn = MMDLoss() if name == "dan" else CORALLoss()
        adapter = Aligner(models=Models(models), optimizers=optimizers, hook_kwargs={"loss_fn": loss_fn})
    for model in models.values():
        model.train()
    return adapter, models
