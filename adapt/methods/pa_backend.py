"""pytorch-adapt's own implementations, trained by this library's engine: ``create("pa:dann", ...)``.

Each ``pa:<name>`` computes its loss with pytorch-adapt's hook for that method, wired as pytorch-adapt's
adapters wire it (``DANNHook``; ``CDANHook`` with a ``RandomizedDotProduct`` feature combiner; ``MCDHook``
with two classifiers; ``AlignerPlusCHook`` with ``MMDLoss`` or ``CORALLoss``; ``ClassifierHook`` with
``MCCHook``, ``BNMHook``, ``AFNHook``, ``BSPHook``, ``ATDOCHook`` or the entropy and diversity hooks of IM),
at pytorch-adapt's defaults (its ``MeanWeighter``: the *mean* of the loss terms). Our network (backbone,
bottleneck, classifier) is pytorch-adapt's ``G`` and ``C``; pytorch-adapt's ``Discriminator`` is ``D``.
Everything else is this library's: data, batches, schedule, optimizer, seeds, checkpoints, validators,
scoring. Each of pytorch-adapt's ``OptimizerHook`` stages hands its loss to our ``Stepper``, restricted
to the modules of the optimizers that stage steps (the discriminator stage of CDAN, the classifier stage
of MCD), so the steps are ours too (AMP, clipping, several processes). A suite puts
``[methods."pa:dann"]`` beside ``[methods.dann]`` and the report shows both.

``pa:adda``: pytorch-adapt's ADDA adapts a target encoder from a source encoder trained beforehand; here
the first half of the run trains it with pytorch-adapt's ``ClassifierHook``, then a frozen copy is its
``G`` and ours its ``T`` (as in our ADDA). Needs the ``pytorch-adapt`` extra.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
from torch import nn

from .._optional import require
from ..batch import Batch
from ..errors import InputError
from ..train.engine import Stepper
from .base import Adapter
from .registry import PYTORCH_ADAPT_METHODS

#: Share of a ``pa:adda`` run that trains the source encoder before adapting (as our ADDA's default).
ADDA_PRETRAIN_FRACTION = 0.5


class _Stage:
    """What pytorch-adapt's ``OptimizerHook`` takes for one optimizer: it zeroes the optimizers of a stage
    (each one names its modules), hands the loss to ``custom_backward`` (our Stepper's step on the modules
    named), then steps them (nothing left to do)."""

    def __init__(self, method: PytorchAdaptMethod, modules: list[nn.Module]) -> None:
        self.method, self.modules = method, modules

    def zero_grad(self) -> None:
        self.method._stage_modules += self.modules

    def step(self) -> None:
        pass


class _Embed(nn.Module):
    """pytorch-adapt's ``G``: our backbone and bottleneck (not registered in the adapter, no copy)."""

    def __init__(self, adapter: Adapter) -> None:
        super().__init__()
        self.adapter = [adapter]  # a list: not a submodule, so the adapter is not nested in itself

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter[0].embed(x)


class _Both(nn.Module):
    """pytorch-adapt's ``C`` for MCD: the logits of both classifiers (not registered in the adapter)."""

    def __init__(self, first: nn.Module, second: nn.Module) -> None:
        super().__init__()
        self.pair = [first, second]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [c(x) for c in self.pair]


class PytorchAdaptMethod(Adapter):
    """A method whose loss is pytorch-adapt's hook (see the module docstring)."""

    family = "pytorch-adapt"
    paper = "pytorch-adapt (Musgrave et al., 2022)"
    #: pytorch-adapt's name of the method's hook wiring
    hook_name: ClassVar[str] = ""

    def _pa(self, module: str) -> Any:
        return require(f"pytorch_adapt.{module}", "pytorch-adapt", f"method pa:{self.hook_name}")

    def build_modules(self, feature_dim: int) -> None:
        if self.hook_name == "cdan":  # the adapter's documented wiring: combined features of feature_dim
            self.feature_combiner = self._pa("layers").RandomizedDotProduct(
                [feature_dim, self.num_classes], feature_dim
            )
        if self.hook_name in ("dann", "cdan", "adda"):
            self.discriminator = self._pa("models").Discriminator(in_size=feature_dim, h=feature_dim)
        if self.hook_name == "adda":  # pytorch-adapt adapts a copy of a source encoder trained beforehand:
            # here, as in our ADDA, the first half of the run trains it (its ClassifierHook), then it is frozen
            self.source_encoder = nn.Sequential(copy.deepcopy(self.backbone), copy.deepcopy(self.bottleneck))
            self.source_encoder.requires_grad_(False)
            self.register_buffer("adapting", torch.tensor(False))
        if self.hook_name == "mcd":
            self.second_classifier = nn.Linear(feature_dim, self.num_classes)
        self.feature_width = feature_dim
        self._hook: Any = None

    def prepare_target(self, num_examples: int) -> None:
        super().prepare_target(num_examples)
        if self.hook_name == "atdoc":  # its memory of the target (a module: it moves, saves and resumes)
            self._atdoc = self._pa("hooks").ATDOCHook(num_examples, self.feature_width, self.num_classes)
            self.atdoc_memory = self._atdoc.labeler

    def _make_hook(self) -> Any:
        hooks, layers = self._pa("hooks"), self._pa("layers")
        network = [self.backbone, self.bottleneck, self.classifier]
        everything = _Stage(self, [])  # (an empty list: every module)
        if self.hook_name == "adda":
            encoder = [self.backbone, self.bottleneck]  # pytorch-adapt's T, the target encoder
            adapt = hooks.ADDAHook(d_opts=[_Stage(self, [self.discriminator])], g_opts=[_Stage(self, encoder)])
            return {"pretrain": hooks.ClassifierHook([everything]), "adapt": adapt}
        if self.hook_name == "dann":
            return hooks.DANNHook([everything])
        if self.hook_name == "cdan":
            return hooks.CDANHook(d_opts=[_Stage(self, [self.discriminator])], g_opts=[_Stage(self, network)])
        if self.hook_name == "mcd":
            classifiers = [self.classifier, self.second_classifier]
            return hooks.MCDHook(
                g_opts=[_Stage(self, [self.backbone, self.bottleneck])], c_opts=[_Stage(self, classifiers)]
            )
        if self.hook_name in ("dan", "coral"):
            loss = layers.MMDLoss() if self.hook_name == "dan" else layers.CORALLoss()
            return hooks.AlignerPlusCHook([everything], loss_fn=loss, softmax=self.hook_name == "dan")
        post = {"mcc": hooks.MCCHook, "bnm": hooks.BNMHook, "afn": hooks.AFNHook, "bsp": hooks.BSPHook}
        if self.hook_name == "im":
            return hooks.ClassifierHook([everything], post=[hooks.TargetEntropyHook(), hooks.TargetDiversityHook()])
        if self.hook_name == "atdoc":
            return hooks.ClassifierHook([everything], post=[self._atdoc])
        return hooks.ClassifierHook([everything], post=[post[self.hook_name]()])

    def _inputs(self, batch: Batch, stepper: Stepper) -> dict[str, Any]:
        n, m = batch.source_x.shape[0], batch.target_x.shape[0]
        device = batch.source_x.device
        inputs = {"G": _Embed(self), "C": self.classifier, "src_imgs": batch.source_x, "src_labels": batch.source_y,
                  "target_imgs": batch.target_x, "src_domain": torch.zeros(n, device=device),
                  "target_domain": torch.ones(m, device=device),
                  "custom_backward": lambda loss: self._step(loss, stepper)}  # fmt: skip
        for name, key in (("discriminator", "D"), ("feature_combiner", "feature_combiner")):
            if hasattr(self, name):
                inputs[key] = getattr(self, name)
        if self.hook_name == "mcd":
            inputs["C"] = _Both(self.classifier, self.second_classifier)
        if self.hook_name == "adda" and bool(self.adapting):
            inputs["G"], inputs["T"] = self.source_encoder, _Embed(self)
        if self.hook_name == "atdoc":
            if batch.target_index is None:
                raise InputError("pa:atdoc keys its memory by target position; pass the target as arrays or a Dataset")
            inputs["target_sample_idx"] = batch.target_index
        return inputs

    def _step(self, loss: torch.Tensor, stepper: Stepper) -> None:
        """One of pytorch-adapt's stages: our step on the modules its optimizers named (all when none)."""
        modules, self._stage_modules = self._stage_modules, []
        stepper.step(loss, only=modules or None)

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        raise NotImplementedError("pytorch-adapt's hooks compute and apply the loss in update()")

    def update(self, batch: Batch, progress: float, stepper: Stepper) -> dict[str, torch.Tensor]:
        if self._hook is None:
            self._hook = self._make_hook()
        hook = self._hook
        if self.hook_name == "adda":
            if progress >= ADDA_PRETRAIN_FRACTION and not bool(self.adapting):
                self.source_encoder.load_state_dict(nn.Sequential(self.backbone, self.bottleneck).state_dict())
                self.adapting.fill_(True)
            hook = hook["adapt" if bool(self.adapting) else "pretrain"]
        self._stage_modules: list[nn.Module] = []
        with stepper.autocast():
            _, losses = hook(self._inputs(batch, stepper))
        # pytorch-adapt's weighted terms (floats) per stage, each with its "total"
        stages = [dict(terms) for terms in losses.values()]
        named = {}
        for stage, terms in zip(losses, stages):
            terms.pop("total", None)
            prefix = f"{stage.removesuffix('_loss')}_" if len(stages) > 1 else ""
            named.update({f"{prefix}{name}": value for name, value in terms.items()})
        return {name: torch.tensor(value) for name, value in named.items()}


def _register(name: str, ours: str) -> None:
    doc = f"pytorch-adapt's {name.upper()} (its hook, its defaults) trained by this library's engine; ours: {ours!r}."
    cls = type(f"PA_{name}", (PytorchAdaptMethod,), {"hook_name": name, "__doc__": doc,
                                                       "adaptation_term": f"pytorch-adapt's {name} hook"})  # fmt: skip
    cls.name = f"pa:{name}"
    PYTORCH_ADAPT_METHODS.add(f"pa:{name}", cls)


for _name in ("dann", "cdan", "mcd", "adda", "dan", "coral", "mcc", "bnm", "afn", "bsp", "im", "atdoc"):
    _register(_name, _name)
