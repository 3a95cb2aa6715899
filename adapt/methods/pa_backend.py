"""pytorch-adapt's own implementations, trained by this library's engine: ``create("pa:dann", ...)``.

Each ``pa:<name>`` computes its loss with pytorch-adapt's hook for that method, wired as pytorch-adapt's
documentation wires it (``DANNHook``; ``AlignerPlusCHook`` with ``MMDLoss`` or ``CORALLoss``;
``ClassifierHook`` with ``MCCHook``, ``BNMHook``, ``AFNHook``, ``BSPHook`` or the entropy and diversity
hooks of IM), at pytorch-adapt's defaults (its ``MeanWeighter``: the *mean* of the loss terms). Our
network (backbone, bottleneck, classifier) is pytorch-adapt's ``G`` and ``C``; pytorch-adapt's
``Discriminator`` is ``D``. Everything else is this library's: data, batches, schedule, optimizer,
seeds, checkpoints, validators, scoring. pytorch-adapt's ``OptimizerHook`` hands its loss to our
``Stepper`` (its ``custom_backward``), so the step is ours too (AMP, clipping, several processes).
A suite puts ``[methods."pa:dann"]`` beside ``[methods.dann]`` and the report shows both.

Not covered: pytorch-adapt's CDAN, MCD, ADDA and ATDOC take several optimizer stages per batch with
their own optimizers (GAN-style hooks), which this bridge does not map onto the engine's stages.
Needs the ``pytorch-adapt`` extra.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from .._optional import require
from ..batch import Batch
from ..registry import Registry
from ..train.engine import Stepper
from .base import Adapter

#: pytorch-adapt's implementations by name (``pa:dann``, ...); :func:`~adapt.methods.create` finds them.
PYTORCH_ADAPT_METHODS: Registry[type[Adapter]] = Registry("pytorch-adapt method")


class _NoOptimizer:
    """What pytorch-adapt's OptimizerHook steps: nothing (our Stepper already stepped)."""

    def zero_grad(self) -> None:
        pass

    def step(self) -> None:
        pass


class _Embed(nn.Module):
    """pytorch-adapt's ``G``: our backbone and bottleneck (not registered in the adapter, no copy)."""

    def __init__(self, adapter: Adapter) -> None:
        super().__init__()
        self.adapter = [adapter]  # a list: not a submodule, so the adapter is not nested in itself

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter[0].embed(x)


class PytorchAdaptMethod(Adapter):
    """A method whose loss is pytorch-adapt's hook (see the module docstring)."""

    family = "pytorch-adapt"
    paper = "pytorch-adapt (Musgrave et al., 2022)"
    #: pytorch-adapt's name of the method's hook wiring
    hook_name: ClassVar[str] = ""

    def build_modules(self, feature_dim: int) -> None:
        if self.hook_name == "dann":
            models = require("pytorch_adapt.models", "pytorch-adapt", f"method pa:{self.hook_name}")
            self.discriminator = models.Discriminator(in_size=feature_dim, h=feature_dim)
        self._hook: Any = None

    def _make_hook(self) -> Any:
        hooks = require("pytorch_adapt.hooks", "pytorch-adapt", f"method pa:{self.hook_name}")
        layers = require("pytorch_adapt.layers", "pytorch-adapt", f"method pa:{self.hook_name}")
        opts = [_NoOptimizer()]
        post = {"mcc": hooks.MCCHook, "bnm": hooks.BNMHook, "afn": hooks.AFNHook, "bsp": hooks.BSPHook}
        if self.hook_name == "dann":
            return hooks.DANNHook(opts)
        if self.hook_name in ("dan", "coral"):
            loss = layers.MMDLoss() if self.hook_name == "dan" else layers.CORALLoss()
            return hooks.AlignerPlusCHook(opts, loss_fn=loss, softmax=self.hook_name == "dan")
        if self.hook_name == "im":
            return hooks.ClassifierHook(opts, post=[hooks.TargetEntropyHook(), hooks.TargetDiversityHook()])
        return hooks.ClassifierHook(opts, post=[post[self.hook_name]()])

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        raise NotImplementedError("pytorch-adapt's hooks compute and apply the loss in update()")

    def update(self, batch: Batch, progress: float, stepper: Stepper) -> dict[str, torch.Tensor]:
        if self._hook is None:
            self._hook = self._make_hook()
        n, m = batch.source_x.shape[0], batch.target_x.shape[0]
        device = batch.source_x.device
        inputs = {"G": _Embed(self), "C": self.classifier, "src_imgs": batch.source_x, "src_labels": batch.source_y,
                  "target_imgs": batch.target_x, "src_domain": torch.zeros(n, device=device),
                  "target_domain": torch.ones(m, device=device), "custom_backward": stepper.step}  # fmt: skip
        if hasattr(self, "discriminator"):
            inputs["D"] = self.discriminator
        with stepper.autocast():
            _, losses = self._hook(inputs)
        terms = dict(losses["total_loss"])  # pytorch-adapt's weighted terms (floats) and their "total"
        terms.pop("total", None)
        return {name: torch.tensor(value) for name, value in terms.items()}


def _register(name: str, ours: str) -> None:
    doc = f"pytorch-adapt's {name.upper()} (its hook, its defaults) trained by this library's engine; ours: {ours!r}."
    cls = type(f"PA_{name}", (PytorchAdaptMethod,), {"hook_name": name, "__doc__": doc,
                                                       "adaptation_term": f"pytorch-adapt's {name} hook"})  # fmt: skip
    cls.name = f"pa:{name}"
    PYTORCH_ADAPT_METHODS.add(f"pa:{name}", cls)


for _name in ("dann", "dan", "coral", "mcc", "bnm", "afn", "bsp", "im"):
    _register(_name, _name)
