"""What the offline source-free methods share: adapting a trained source model with target data alone."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

import pandas as pd
import torch
from torch import nn

from ..batch import Batch
from ..errors import InputError
from ..models.memory import TargetMemory, check_memory_size
from ..train.engine import Callback, Stepper
from .base import Adapter

S = TypeVar("S", bound="SourceFreeAdapter")


def split_classifier(model: nn.Module, head: str | None = None) -> tuple[nn.Module, nn.Module, nn.Linear]:
    """Copies of a trained classifier's parts: ``(backbone, bottleneck, classifier)``.

    One of our models gives its own three parts. For any other ``nn.Module``, ``head`` names the
    attribute holding the final ``nn.Linear`` (``head="fc"`` for a torchvision ResNet); everything
    else, with the head replaced by the identity, is the feature extractor. An ``nn.Sequential``
    needs no name: its last module is the head.
    """
    if isinstance(model, Adapter):
        model._require_built()
        return copy.deepcopy(model.backbone), copy.deepcopy(model.bottleneck), copy.deepcopy(model.classifier)
    if head is None:
        if not (isinstance(model, nn.Sequential) and len(model) >= 2):
            raise InputError(
                f"cannot tell the classifier head of a {type(model).__name__}: name it, e.g. from_source(model, "
                f"head='fc') for a torchvision ResNet"
            )
        features, classifier = copy.deepcopy(model[:-1]), copy.deepcopy(model[-1])
    else:
        classifier = getattr(model, head, None)
        if not isinstance(classifier, nn.Module):
            raise InputError(f"the model has no module {head!r} to use as its classifier head")
        features = copy.deepcopy(model)
        setattr(features, head, nn.Identity())
        classifier = copy.deepcopy(classifier)
    if not isinstance(classifier, nn.Linear):
        name = type(classifier).__name__
        raise InputError(f"the classifier head must be an nn.Linear (features -> logits), got {name}")
    return features, nn.Identity(), classifier


class SourceFreeAdapter(Adapter):
    """Base class of the offline source-free methods: ``Method.from_source(model).fit(target)``.

    The source model is any trained classifier (see :func:`split_classifier`); it is copied, not
    changed. ``fit`` takes the target alone: the training engine runs without a source stream, and
    the batches a method sees hold empty source tensors. Everything else (predict, score, save,
    load, validators, checkpoints) is :class:`~adapt.methods.base.Adapter`'s.
    """

    uses_source = False
    accepts_regularizers = False
    family = "source-free"
    #: Modules kept exactly as trained on the source (SHOT's hypothesis).
    frozen_modules: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_source(
        cls: type[S], model: nn.Module, *, head: str | None = None, preset: str | None = None, **hparams: Any
    ) -> S:
        """A method ready to adapt a copy of the trained ``model``; ``hparams`` are the method's, over those of
        its named ``preset`` (the authors' script for one dataset, say, optimizer settings included)."""
        backbone, bottleneck, classifier = split_classifier(model, head)
        ours = isinstance(model, Adapter)
        settings, fit = cls.preset(preset) if preset is not None else ({}, {})
        adapted = cls(
            backbone,
            classifier.out_features,
            feature_dim=model.feature_dim if ours else classifier.in_features,
            bottleneck_dim=model.bottleneck_dim if ours else None,
            **{**settings, **hparams},
        )
        adapted.fit_preset_ = fit
        adapted.bottleneck, adapted.classifier = bottleneck, classifier
        adapted.input_shape_ = getattr(model, "input_shape_", None)
        adapted.build_modules(classifier.in_features)
        for name in cls.frozen_modules:
            getattr(adapted, name).requires_grad_(False)
        adapted.is_built = True
        return adapted

    def build(self, example: torch.Tensor) -> None:
        """Check that the source model takes these inputs; nothing is re-initialized."""
        if not self.is_built:
            raise RuntimeError(
                f"{type(self).__name__} adapts a trained model: create it with {type(self).__name__}.from_source(model)"
            )
        self._check_inputs(example)
        if getattr(self, "input_shape_", None) is None:  # a model of your own: the inputs it adapts on
            self.input_shape_ = tuple(example.shape[1:])

    def fill_memory(self, memory: TargetMemory) -> None:
        """Store every target example's features and predictions (one pass in eval mode, before the
        first step, as the NRC and AaD authors fill their banks), in dataset order."""
        data = getattr(self, "target_data_", None)
        if data is None:
            name = type(self).__name__
            raise RuntimeError(f"{name} fills its memory from the whole target: train it with fit(target)")
        features = self._collect(data, 256, "features").to(memory.features.device)
        with torch.no_grad():
            predictions = self.classifier(features.to(self._device())).float().softmax(dim=1)
        memory.update(torch.arange(len(features), device=features.device), features, predictions.to(features.device))

    def fit(  # type: ignore[override]
        self,
        target: Any,
        *,
        target_labeled: Any = None,
        steps: int = 1000,
        batch_size: int = 64,
        seed: int | None = 0,
        device: str | torch.device = "auto",
        callbacks: Sequence[Callback] = (),
        select_by: str | None = None,
        select_every: int | None = None,
        target_eval: Any = None,
        **train_options: Any,
    ) -> pd.DataFrame:
        """Adapt on the unlabeled ``target`` alone (a tensor, array, Dataset or DataLoader; labels, if
        present, are ignored), and on a few labeled target examples ``target_labeled`` if given; the
        options are :meth:`Adapter.fit`'s (``target_eval``: the target with evaluation transforms, which
        validators score and SHOT clusters). Returns the history."""
        evaluation = next((d for d in (target_eval, target, target_labeled) if d is not None), None)
        config, selection = self.train_config(steps=steps, batch_size=batch_size, seed=seed, device=device,
                                              callbacks=callbacks, select_by=select_by, select_every=select_every,
                                              evaluation=evaluation, **train_options)  # fmt: skip
        return self._train(None, target, config, evaluation, selection, target_labeled)  # the trained heads stay


class NeighbourMemoryAdapter(SourceFreeAdapter):
    """A source-free method that looks up ``neighbours`` neighbours in a memory of the target
    (:class:`~adapt.models.memory.TargetMemory`, ``self.memory``): sized for the target before training,
    filled by one pass over it before the first step (:meth:`fill_memory`), then refreshed by ``loss``."""

    def memory_neighbours(self) -> int:
        """The most neighbours a lookup asks for (the target must hold more examples)."""
        raise NotImplementedError

    def build_modules(self, feature_dim: int) -> None:
        self.memory = TargetMemory(feature_dim, self.num_classes)

    def prepare_target(self, num_examples: int) -> None:
        check_memory_size(type(self).__name__, num_examples, self.memory_neighbours())
        super().prepare_target(num_examples)
        self.memory.resize(num_examples)

    def update(self, batch: Batch, progress: float, stepper: Stepper) -> dict[str, torch.Tensor]:
        if batch.step == 0:
            self.fill_memory(self.memory)
        return super().update(batch, progress, stepper)
