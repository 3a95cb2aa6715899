"""pytorch-adapt's own adapters for a method, wired as its README shows (the baseline of our benchmarks)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: Methods with a direct pytorch-adapt adapter: its ``Classifier``, ``DANN``, ``Aligner`` (MMD or CORAL),
#: ``CDAN`` (a GAN-style adapter with a ``RandomizedDotProduct`` feature combiner) and ``Classifier`` with
#: ``MCCHook`` as a post hook.
SUPPORTED = ("source_only", "dann", "dan", "coral", "cdan", "mcc")


def make_adapter(
    name: str,
    generator: nn.Module,
    feature_width: int,
    num_classes: int,
    device,
    optimizer: tuple[type[torch.optim.Optimizer], dict[str, Any]] = (torch.optim.SGD, {"lr": 0.01, "momentum": 0.9}),
    discriminator_hidden: int | None = None,
) -> tuple[Any, dict]:
    """Return ``(adapter, models)`` for ``name``: ``optimizer`` for every model (default SGD lr 0.01,
    momentum 0.9), pytorch-adapt's 3-layer ``Discriminator`` (hidden width ``discriminator_hidden``,
    default the feature width) for DANN and CDAN, its Aligner with MMDLoss (DAN) or CORALLoss (CORAL)."""
    from pytorch_adapt.adapters import CDAN, DANN, Aligner, Classifier
    from pytorch_adapt.containers import Misc, Models, Optimizers
    from pytorch_adapt.hooks import MCCHook
    from pytorch_adapt.layers import CORALLoss, MMDLoss, RandomizedDotProduct
    from pytorch_adapt.models import Discriminator

    if name not in SUPPORTED:
        raise ValueError(f"no pytorch-adapt baseline for {name!r}; supported: {', '.join(SUPPORTED)}")
    models = {"G": generator.to(device), "C": nn.Linear(feature_width, num_classes).to(device)}
    optimizers = Optimizers(optimizer)
    hidden = discriminator_hidden or feature_width
    misc = None
    if name == "dann":
        models["D"] = Discriminator(in_size=feature_width, h=hidden).to(device)
        adapter = DANN(models=Models(models), optimizers=optimizers)
    elif name == "cdan":  # the combined features are feature_width wide, as the CDAN adapter's docs wire it
        models["D"] = Discriminator(in_size=feature_width, h=hidden).to(device)
        misc = Misc({"feature_combiner": RandomizedDotProduct([feature_width, num_classes], feature_width).to(device)})
        adapter = CDAN(models=Models(models), optimizers=optimizers, misc=misc)
    elif name == "source_only":
        adapter = Classifier(models=Models(models), optimizers=optimizers)
    elif name == "mcc":
        adapter = Classifier(models=Models(models), optimizers=optimizers, hook_kwargs={"post": [MCCHook()]})
    else:
        loss_fn = MMDLoss() if name == "dan" else CORALLoss()
        adapter = Aligner(models=Models(models), optimizers=optimizers, hook_kwargs={"loss_fn": loss_fn})
    for model in models.values():
        model.train()
    return adapter, models
