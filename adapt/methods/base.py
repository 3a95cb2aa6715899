"""The base class of every method: an ``nn.Module`` with a scikit-learn style estimator API.

A method subclass declares

* its hyperparameters as keyword-only ``__init__`` arguments with the paper's defaults (stored
  under the same attribute names; no other work in ``__init__``);
* its extra modules in :meth:`Adapter.build_modules` (called once the feature width is known);
* its loss terms for one batch in :meth:`Adapter.loss`.

The shared engine (:mod:`adapt.train.engine`) does the rest.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import numbers
import os
import pickle
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .._files import write_atomically
from .._version import __version__
from ..batch import Batch, Outputs
from ..data import dataset_labels
from ..data.base import is_labeled
from ..models.batchnorm import frozen_running_statistics
from ..models.heads import Bottleneck
from ..models.rebuild import backbone_spec, describe, rebuild_backbone
from ..train.data import InputError, _to_tensor, check_labels, iterate_inputs
from ..train.engine import Callback, Stepper, TrainConfig, train
from ..validators import VALIDATORS, ValidationCallback
from ..validators.scores import prediction_accuracy
from .registry import METHODS, SOURCE_FREE_METHODS, TRANSFER_BASELINES
from .regularizers import check_regularizers, regularization_terms

CHECKPOINT_FORMAT = 1

#: name -> ("log_uniform", low, high) | ("uniform", low, high) | ("choice", [values])
SearchSpace = dict[str, tuple[Any, ...]]


def _like_input(x: Any, out: torch.Tensor) -> Any:
    """scikit-learn's convention: numpy inputs (an array, or an ``(x, y)`` pair of arrays) give numpy
    outputs; tensors, Datasets and DataLoaders give tensors."""
    first = x[0] if isinstance(x, (tuple, list)) and len(x) else x
    return out.numpy() if isinstance(first, np.ndarray) else out


class NotFittedError(RuntimeError):
    """The model was used before ``fit`` or ``load``."""


def _hparam_value(value: Any) -> Any:
    # Tuples become lists so that checkpoints hold only JSON-like types (weights_only loading).
    return list(value) if isinstance(value, tuple) else value


def check_loss_weights(method: Any) -> None:
    """A loss weight of ``method`` (``trade_off``, ``*_weight``) below 0 would maximize its term: refused by
    name (at ``fit``, and when a suite names it)."""
    for key, value in vars(method).items():
        weight = key == "trade_off" or key.endswith("_weight")
        if weight and isinstance(value, numbers.Real) and not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{type(method).__name__}'s {key} must be a finite number >= 0 (a weight below 0 "
                             f"maximizes its loss term), got {value!r}")  # fmt: skip


def _unknown_arguments(cls: type, names: list[str]) -> str:
    """'DANN() got unknown argument(s) foo; its hyperparameters: ...' (every keyword of the ``__init__``
    chain), and where presets go."""
    known = sorted({p.name for klass in cls.__mro__ if "__init__" in vars(klass)
                    for p in inspect.signature(vars(klass)["__init__"]).parameters.values()
                    if p.kind is p.KEYWORD_ONLY or (p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self")}
                   - {"backbone", "num_classes"})  # fmt: skip
    hint = " (a preset is chosen by adapt.create(name, backbone, num_classes, preset=...))" if "preset" in names else ""
    return f"{cls.__name__}() got unknown argument(s) {', '.join(names)}{hint}; its hyperparameters: {', '.join(known)}"


def _check_fit_options(train_options: dict[str, Any]) -> None:
    """``fit``'s extra keywords must be :class:`TrainConfig` fields."""
    valid = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(train_options) - valid)
    if unknown:
        raise TypeError(f"unknown fit option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")


def _warn_if_augmented(select_by: str, data: Any) -> None:
    """Warn when the target ``select_by`` would score (or the dataset it wraps: Subset, Unlabeled) has a
    torchvision transform that draws at random: each scoring would see other images."""
    for _ in range(4):
        if "Random" in repr(getattr(data, "transform", None)):
            warnings.warn(f"select_by={select_by!r} scores the target through its training view, which is random "
                          "(its transform augments): pass target_eval= its evaluation view (task.target_eval for "
                          "a task)", stacklevel=4)  # fmt: skip
            return
        data = getattr(data, "dataset", None)
        if data is None:
            return


def _evaluation_view(target_eval: Any, select_data: Any, target: Any, target_labeled: Any, select_by: Any) -> Any:
    """What ``fit`` scores and clusters: ``target_eval``, else the target (a warning when ``select_by`` would score
    it through random augmentation), else the labeled target inputs."""
    if select_by is not None and target_eval is None and select_data is None:
        _warn_if_augmented(select_by, target)
    if select_data is not None:
        warnings.warn("fit(select_data=...) is now fit(target_eval=...)", DeprecationWarning, stacklevel=3)
        if target_eval is None:
            target_eval = select_data
    return next((d for d in (target_eval, target, target_labeled) if d is not None), None)


def _selection_callback(name: str, target: Any, every: int) -> ValidationCallback:
    """The callback behind ``fit(select_by=...)``: one target-only validator, best checkpoint kept."""
    if name not in VALIDATORS:
        raise ValueError(f"unknown validator {name!r} for select_by; available: {', '.join(VALIDATORS)}")
    if VALIDATORS[name].needs_source_val or VALIDATORS[name].needs_source_train:
        raise ValueError(
            f"select_by={name!r} needs labeled source validation data; fit(select_by=...) takes validators that "
            f"need only the target ({', '.join(n for n, v in VALIDATORS.items() if not v.needs_source_val)}), "
            f"or pass adapt.validators.ValidationCallback([{name!r}], target, source_val, ...) in callbacks"
        )
    return ValidationCallback([name], target, every=max(1, every), select=name)


class Adapter(nn.Module):
    """Classifier ``classifier(bottleneck(backbone(x)))`` trained with a method's loss.

    Parameters
    ----------
    backbone : nn.Module mapping inputs to a 2-D feature tensor (B, D). It is trained in place.
    num_classes : number of classes, at least 2.
    feature_dim : D; inferred by one dry forward pass when None.
    bottleneck_dim : if given, a Linear-BatchNorm-ReLU bottleneck of this width follows the
        backbone (TLlib uses 256 for ResNets).
    regularizers : ``{name: weight}`` of terms added to the method's loss, computed on the same
        forward pass (see :mod:`adapt.methods.regularizers`: 'bsp', 'afn', 'bnm', 'entropy', 'im',
        'mcc'); for example ``create("cdan", regularizers={"bsp": 1e-4, "mcc": 1.0})``.
    """

    name: ClassVar[str] = ""
    #: What kind of method this is, for grouping in reports: 'baseline', 'adversarial', 'discrepancy',
    #: 'classifier disagreement', 'regularizer', 'self-training', 'normalization'.
    family: ClassVar[str] = "other"
    #: The paper, short ("Ganin et al., JMLR 2016"), and what the method adds to the source loss, for tables.
    paper: ClassVar[str] = ""
    adaptation_term: ClassVar[str] = ""
    #: False only for methods that by design ignore the target batch (SourceOnly).
    uses_target: ClassVar[bool] = True
    #: False for source-free methods: they train on the target alone (``fit(target)``, no source stream).
    uses_source: ClassVar[bool] = True
    #: False for methods whose loss has no adaptation term: they adapt otherwise (AdaBN's statistics).
    adapts_by_gradient: ClassVar[bool] = True
    #: False for methods that cannot add ``regularizers`` to their loss (multi-stage or no joint pass).
    accepts_regularizers: ClassVar[bool] = True
    #: Modules a mid-run update leaves unchanged by design (ADDA's classifier after pre-training).
    fixed_modules: ClassVar[tuple[str, ...]] = ()
    #: Smallest per-domain batch the loss is defined for (covariances and MMD need pairs).
    min_batch_size: ClassVar[int] = 1
    #: The range a sweep draws hyperparameters from when a suite asks for the method's own
    #: (``[search] dann = "default"``; see :data:`SearchSpace`); beside the defaults it ranges around.
    search_space: ClassVar[SearchSpace] = {}
    #: Settings the registry-wide contract tests (:mod:`adapt.testing`) need to run the method on
    #: their tiny untrained batches (FixMatch's threshold, AdaBN's BatchNorm bottleneck).
    contract_hparams: ClassVar[dict[str, Any]] = {}
    #: Named sets of hyperparameters reproducing a paper or a reference code (``create(name, preset=...)``);
    #: a preset's ``"fit"`` entry holds the training options it sets (:class:`~adapt.train.engine.TrainConfig`).
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Training options this method brings to ``fit`` (its authors' optimizer and schedule, where the
    #: library adopts them); ``fit``'s own arguments override them.
    fit_defaults: ClassVar[dict[str, Any]] = {}
    #: Moves when the method's code changes its results in a way its hyperparameters do not show, so
    #: that a benchmark's runs of it rerun (a run's identity includes it; see CHANGELOG.md).
    revision: ClassVar[int] = 1

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        feature_dim: int | None = None,
        bottleneck_dim: int | None = None,
        regularizers: dict[str, float] | None = None,
        **unknown: Any,
    ) -> None:
        super().__init__()
        if unknown:
            raise TypeError(_unknown_arguments(type(self), sorted(unknown)))
        if regularizers and not self.accepts_regularizers:
            raise ValueError(f"{type(self).__name__} does not take regularizers (see its docstring)")
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"backbone must be a torch.nn.Module, got {type(backbone).__name__}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        num_classes = int(num_classes)  # numpy integers too
        self.backbone = backbone
        self.num_classes = num_classes
        self.feature_dim = feature_dim
        self.bottleneck_dim = bottleneck_dim
        self.regularizers = check_regularizers(regularizers)
        self._outputs: Outputs | None = None
        self._keep_outputs = False
        self.is_built = False
        self.history_: pd.DataFrame | None = None
        self.selected_step_: int | None = None
        #: Training options of the preset the model was created with (``create(name, preset=...)``).
        self.fit_preset_: dict[str, Any] = {}

    # ----------------------------------------------------------------- what a method defines
    def build_modules(self, feature_dim: int) -> None:
        """Create the method's extra modules (discriminators, random maps). Default: none."""

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        """Weighted loss terms for one batch; the engine minimizes their sum."""
        raise NotImplementedError

    def prepare_target(self, num_examples: int) -> None:
        """Called by the engine after :meth:`build`, before training, with the number of target
        examples; a method with a memory of the target (ATDOC) sizes it here. The number is kept as
        ``target_examples_`` and saved with the model, so that :meth:`load` can size it again."""
        self.target_examples_: int | None = int(num_examples)

    def labeled_target_terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``{"target_classification": weight * cross-entropy}`` on the batch's labeled target examples
        (``fit(target_labeled=...)``), through the network's own forward pass; ``{}`` without them.

        :meth:`loss_terms` adds it to every method's loss; a method whose :meth:`update` takes several
        optimizer steps adds it to the step that trains its classifier on the source labels.
        """
        if batch.labeled_target_x is None or batch.labeled_target_y is None:
            return {}
        loss = self.classification_loss(self(batch.labeled_target_x), batch.labeled_target_y)
        return {"target_classification": batch.labeled_target_weight * loss}

    def loss_terms(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        """:meth:`loss` plus the ``regularizers`` (on the outputs of the forward pass it made) and the
        labeled target examples' classification loss (:meth:`labeled_target_terms`)."""
        self._outputs, self._keep_outputs = None, bool(self.regularizers)
        try:
            terms = self.loss(batch, progress)
            if self.regularizers:
                if self._outputs is None:
                    name = type(self).__name__
                    raise RuntimeError(f"{name}.loss does not call forward_domains; it cannot add regularizers")
                terms.update(regularization_terms(self.regularizers, self._outputs, self, batch))
        finally:
            self._outputs, self._keep_outputs = None, False  # no graph kept alive between steps
        return {**terms, **self.labeled_target_terms(batch)}

    def update(self, batch: Batch, progress: float, stepper: Stepper) -> dict[str, torch.Tensor]:
        """One training update. The default is one forward, one backward, one optimizer step.

        Methods with several optimizer stages per batch (MCD, ADDA) override this and call
        ``stepper.step(loss, only=[modules])`` once per stage.
        """
        if getattr(stepper, "sam_rho", 0.0):
            return self.sharpness_aware_update(batch, progress, stepper)
        with stepper.autocast():
            terms = self.loss_terms(batch, progress)
        stepper.step(terms)
        return terms

    #: Loss terms that are the task's (SDAT smooths their sum), as opposed to the adaptation terms.
    TASK_TERMS = frozenset({"classification", "target_classification"})

    def sharpness_aware_update(self, batch: Batch, progress: float, stepper: Stepper) -> dict[str, torch.Tensor]:
        """SDAT (``fit(sam_rho=...)``; Rangwani et al., CVPR 2022): the classifier network (backbone, bottleneck,
        classifier; not the discriminators, as their SAM optimizer holds only those) is moved along the gradient of
        the task loss (classification, labeled target, regularizers: their ``cls_loss`` and, for CDAN+MCC,
        ``mcc``), every term is computed there, and the step is taken from the unperturbed weights
        (:meth:`~adapt.train.engine.Stepper.sharpness_aware_step`). The first pass leaves the other modules'
        BatchNorm statistics as they were (theirs does not run the discriminator)."""
        classifier_net = [self.backbone, self.bottleneck, self.classifier]
        others = [m for m in self.children() if all(m is not c for c in classifier_net)]
        with contextlib.ExitStack() as stack:
            for module in others:
                stack.enter_context(frozen_running_statistics(module))
            with stepper.autocast():
                first = self.loss_terms(batch, progress)
        task_names = self.TASK_TERMS | {f"reg_{name}" for name in self.regularizers}
        task = torch.stack([t.float() for k, t in first.items() if k in task_names]).sum()
        perturbed = [p for m in classifier_net for p in m.parameters() if p.requires_grad]

        def terms_at() -> dict[str, torch.Tensor]:
            with stepper.autocast():
                return self.loss_terms(batch, progress)

        return stepper.sharpness_aware_step(task, terms_at, perturbed)

    # ----------------------------------------------------------------- building
    def build(self, example: torch.Tensor) -> None:
        """Infer the feature width with a dry forward pass on ``example`` and build the heads."""
        device = next(iter(self.backbone.parameters()), torch.empty(0)).device
        was_training = self.backbone.training
        self.backbone.eval()  # no BatchNorm statistics update during the dry run
        try:
            with torch.no_grad():
                out = self.backbone(example.to(device))
        except Exception as exc:
            raise InputError(f"the backbone failed on inputs of shape {tuple(example.shape)}: {exc}") from exc
        finally:
            self.backbone.train(was_training)
        if not isinstance(out, torch.Tensor) or out.ndim != 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise InputError(
                f"the backbone must return a 2-D (batch, features) tensor, got {shape}; "
                f"add nn.Flatten() or global pooling at its end"
            )
        if self.feature_dim is not None and out.shape[1] != self.feature_dim:
            raise InputError(f"feature_dim={self.feature_dim} but the backbone returns {out.shape[1]} features")
        self.input_shape_: tuple[int, ...] | None = tuple(example.shape[1:])
        self._build_heads(int(out.shape[1]))

    def _build_heads(self, backbone_dim: int) -> None:
        self.feature_dim = backbone_dim
        if self.bottleneck_dim:
            self.bottleneck: nn.Module = Bottleneck(backbone_dim, self.bottleneck_dim)
            width = self.bottleneck_dim
        else:
            self.bottleneck = nn.Identity()
            width = backbone_dim
        self.classifier = nn.Linear(width, self.num_classes)
        self.build_modules(width)
        self.is_built = True
        device = next(iter(self.backbone.parameters()), torch.empty(0)).device
        self.to(device)

    def _require_built(self) -> None:
        if not self.is_built:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit() or load() first")

    # ----------------------------------------------------------------- forward helpers
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Features fed to the classifier: ``bottleneck(backbone(x))``."""
        return self.bottleneck(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, C)."""
        return self.classifier(self.embed(x))

    def forward_domains(self, batch: Batch) -> Outputs:
        """Source and target through the network in one concatenated pass (shared BatchNorm statistics)."""
        n = batch.source_x.shape[0]
        features = self.embed(torch.cat([batch.source_x, batch.target_x]))
        logits = self.classifier(features)
        return self.remember_outputs(Outputs(features[:n], features[n:], logits[:n], logits[n:]))

    def remember_outputs(self, out: Outputs) -> Outputs:
        """Hand the forward pass's outputs to the ``regularizers`` (see :meth:`loss_terms`); a method
        whose ``loss`` does its own forward pass instead of :meth:`forward_domains` calls this."""
        if self._keep_outputs:
            self._outputs = out
        return out

    @staticmethod
    def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy on the labeled source batch (float32)."""
        return F.cross_entropy(logits.float(), labels)

    def param_groups(self, backbone_lr_mult: float = 1.0) -> list[dict[str, Any]]:
        """Backbone parameters at ``lr * backbone_lr_mult``, everything else at ``lr``; a backbone with its own
        ``parameter_groups()`` (a timm ViT with ``layer_decay``) scales each of its groups further."""
        backbone = {id(p) for p in self.backbone.parameters()}
        rest = [p for p in self.parameters() if id(p) not in backbone and p.requires_grad]
        own = getattr(self.backbone, "parameter_groups", None)
        groups = own() if callable(own) else [{"params": [p for p in self.backbone.parameters() if p.requires_grad]}]
        return [
            *({"params": g["params"], "lr_mult": backbone_lr_mult * g.get("lr_mult", 1.0)} for g in groups),
            {"params": rest, "lr_mult": 1.0},
        ]

    # ----------------------------------------------------------------- estimator API
    @classmethod
    def hyperparameter_defaults(cls) -> dict[str, Any]:
        """Keyword-only constructor arguments (this class's and its bases') with their defaults."""
        params: dict[str, Any] = {}
        for klass in cls.__mro__:
            if klass is nn.Module or "__init__" not in vars(klass):
                continue
            for p in inspect.signature(klass.__init__).parameters.values():
                if p.kind is p.KEYWORD_ONLY:
                    params.setdefault(p.name, p.default)
        return params

    @classmethod
    def preset(cls, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """A named preset's hyperparameters, and the training options it sets (its ``"fit"`` entry)."""
        if name not in cls.presets:
            valid = ", ".join(sorted(cls.presets)) or "none"
            raise ValueError(f"method {cls.name!r} has no preset {name!r}; its presets: {valid}")
        settings = dict(cls.presets[name])
        return settings, dict(settings.pop("fit", {}))

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments except the backbone (scikit-learn convention)."""
        names = ["num_classes", *self.hyperparameter_defaults()]
        return {name: _hparam_value(getattr(self, name)) for name in names}

    def fit(
        self,
        source: Any,
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
        select_data: Any = None,
        **train_options: Any,
    ) -> pd.DataFrame:
        """Train on labeled ``source`` and unlabeled ``target``; return the history DataFrame.

        Parameters
        ----------
        source : ``(x, y)`` tensors or arrays, a Dataset yielding ``(x, y)``, or a DataLoader.
        target : a tensor or array ``x``, a Dataset yielding ``x`` or ``(x, y)``, or a
            DataLoader. **Target labels, if present, are ignored**: only inputs are used.
        target_labeled : a few labeled target examples (semi-supervised adaptation), in any form
            ``source`` takes. They are batched like the other domains (a third stream, ``batch_size``
            per step) and every method adds their cross-entropy, weighted by the fit option
            ``labeled_target_weight`` (default 1.0, the source loss's weight), to its loss as the
            term ``target_classification``. Keep them out of the data you score on (see
            :func:`adapt.data.few_shot_split`).
        steps : number of optimizer updates.
        batch_size : examples per domain per step (a DataLoader keeps its own).
        seed : seeds initialization and batch order; None leaves the global RNGs alone.
        device : 'auto' (CUDA if available), 'cpu', 'cuda', 'cuda:1', ...
        callbacks : objects called every ``callback.every`` steps (validators, checkpoints).
        select_by : label-free checkpoint selection: a validator that needs only the target inputs ('entropy',
            'im', 'snd', 'bnm', 'class_ami', 'avg_confidence'; :mod:`adapt.validators`). It scores the model every
            ``select_every`` steps; after training the best checkpoint is loaded back (its step is
            ``selected_step_``). None keeps the last step. Target labels are never used.
        select_every : steps between scored checkpoints (default: a tenth of ``steps``).
        target_eval : the same target inputs with evaluation transforms (no random augmentation; default:
            ``target``): what the ``select_by`` validator scores, and what a method that reads the whole
            target to decide reads (SHOT clusters it, as its authors cluster their test view). Pass it
            when ``target`` applies random augmentation (``task.target_eval`` of a :class:`~adapt.data.Task`).
        select_data : the former name of ``target_eval`` (deprecated).
        **train_options : further :class:`~adapt.train.engine.TrainConfig` fields: ``lr``, ``optimizer``,
            ``momentum``, ``nesterov``, ``weight_decay``, ``backbone_lr_mult``, ``lr_schedule``, ``amp``, ``compile``,
            ``channels_last``, ``grad_clip``, ``log_every``, ``num_workers``, ``verbose``, ``labeled_target_weight``,
            ``target_batch_mult``, ``sam_rho`` (SDAT); the method's ``fit_defaults`` and its preset's fill in the rest.

        Returns the history: a DataFrame with one row per logged step and one column per loss term. Each call
        builds fresh heads (bottleneck, classifier, discriminators); the backbone continues from its weights.
        """
        evaluation = _evaluation_view(target_eval, select_data, target, target_labeled, select_by)
        config, selection = self.train_config(steps=steps, batch_size=batch_size, seed=seed, device=device,
                                              callbacks=callbacks, select_by=select_by, select_every=select_every,
                                              evaluation=evaluation, **train_options)  # fmt: skip
        with self._fresh_heads():
            return self._train(source, target, config, evaluation, selection, target_labeled)

    @contextlib.contextmanager
    def _fresh_heads(self) -> Iterator[None]:
        """Not built while ``fit`` builds fresh heads (the backbone continues from its weights); a fit
        refused before it built them (bad inputs) leaves the model as it was."""
        was_built, heads = self.is_built, getattr(self, "classifier", None)
        self.is_built = False
        try:
            yield
        except BaseException:
            if getattr(self, "classifier", None) is heads:
                self.is_built = was_built
            raise

    def train_config(
        self,
        *,
        steps: int,
        callbacks: Sequence[Callback] = (),
        select_by: str | None = None,
        select_every: int | None = None,
        evaluation: Any = None,
        **options: Any,
    ) -> tuple[TrainConfig, ValidationCallback | None]:
        """The engine's configuration of one ``fit``: the method's ``fit_defaults`` and its preset's training
        options under the caller's ``options``, plus the ``select_by`` callback (scoring ``evaluation``
        every ``select_every`` steps), which is also returned (None without ``select_by``)."""
        options = {**type(self).fit_defaults, **self.fit_preset_, **options}
        _check_fit_options(options)
        check_loss_weights(self)
        every = select_every or steps // 10
        selection = None if select_by is None else _selection_callback(select_by, evaluation, every)
        callbacks = (*callbacks, selection) if selection is not None else tuple(callbacks)
        if options.get("sam_rho") and type(self).update is not Adapter.update:
            raise InputError(f"sam_rho (SDAT) smooths the one optimizer step per batch of a method; "
                             f"{type(self).__name__} takes its own steps (several stages per batch)")  # fmt: skip
        return TrainConfig(steps=steps, callbacks=callbacks, **options), selection

    def _train(
        self, source: Any, target: Any, config: TrainConfig, evaluation: Any, selection: ValidationCallback | None,
        target_labeled: Any = None,
    ) -> pd.DataFrame:  # fmt: skip
        """Train with the engine (``source`` None: source-free) and load the selected checkpoint back.
        During training ``target_data_`` and ``target_eval_`` are the whole target (training and
        evaluation views) for the methods that read it."""
        self.selected_step_ = None
        self.target_data_, self.target_eval_, self.total_steps_ = target, evaluation, config.steps
        try:
            self.history_ = train(self, source, target, config, target_labeled)
        finally:
            self.target_data_ = self.target_eval_ = None  # no reference to the user's data outlives fit
        if selection is not None:
            self.selected_step_ = selection.restore_best(self)
        return self.history_

    def _device(self) -> torch.device:
        return next(iter(self.parameters())).device

    def _check_inputs(self, batch: torch.Tensor) -> None:
        """Inputs must have the rank and the features (or channels) the model was fitted on; the
        spatial size of images may differ (pooled backbones accept any)."""
        fitted = getattr(self, "input_shape_", None)
        if fitted is None or (batch.ndim == len(fitted) + 1 and batch.shape[1] == fitted[0]):
            return
        raise InputError(
            f"inputs of shape (N, {', '.join(map(str, batch.shape[1:]))}) but {type(self).__name__} was fitted "
            f"on inputs of shape (N, {', '.join(map(str, fitted))})"
        )

    @torch.no_grad()
    def _collect(self, x: Any, batch_size: int, what: str) -> torch.Tensor:
        self._require_built()
        was_training = self.training
        self.eval()
        device = self._device()
        try:
            outs = []
            for b in iterate_inputs(x, batch_size):
                self._check_inputs(b)
                try:
                    outs.append((self.embed(b.to(device)) if what == "features" else self(b.to(device))).float().cpu())
                except RuntimeError as exc:
                    fitted = tuple(getattr(self, "input_shape_", None) or ())
                    if tuple(b.shape[1:]) == fitted:
                        raise
                    raise InputError(  # the usual cause: a fixed-size backbone given images of another size
                        f"the backbone failed on inputs of shape (N, {', '.join(map(str, b.shape[1:]))}); "
                        f"{type(self).__name__} was fitted on (N, {', '.join(map(str, fitted))}) and this backbone "
                        f"may not take other sizes: resize the inputs to the fitted size ({exc})"
                    ) from exc
        finally:
            self.train(was_training)
        return torch.cat(outs)

    def predict_logits(self, x: Any, batch_size: int = 256) -> Any:
        """Class logits (N, C), in evaluation mode: a numpy array for numpy inputs, else a CPU tensor
        (tensors, Datasets, DataLoaders). ``predict`` and ``predict_proba`` go through it."""
        return _like_input(x, self._collect(x, batch_size, "logits"))

    def predict_proba(self, x: Any, batch_size: int = 256) -> Any:
        """Class probabilities (N, C); numpy for numpy inputs, else a tensor."""
        return _like_input(x, torch.softmax(torch.as_tensor(self.predict_logits(x, batch_size)), dim=1))

    def predict(self, x: Any, batch_size: int = 256) -> Any:
        """Predicted classes (N,): an int64 numpy array for numpy inputs, else a LongTensor."""
        return _like_input(x, torch.as_tensor(self.predict_logits(x, batch_size)).argmax(dim=1))

    def features(self, x: Any, batch_size: int = 256) -> Any:
        """Classifier-input features (N, D'); numpy for numpy inputs, else a CPU tensor."""
        return _like_input(x, self._collect(x, batch_size, "features"))

    def score(self, x: Any, y: Any = None, batch_size: int = 256) -> float:
        """Accuracy of :meth:`predict` against labels ``y``, or against the labels of a labeled
        Dataset ``x`` (for example ``task.target_test``) when ``y`` is None."""
        if y is None and (isinstance(x, (np.ndarray, torch.Tensor)) or not is_labeled(x)):
            raise InputError("score(x) of unlabeled inputs needs their labels: score(x, y), or a labeled Dataset")
        if y is None:
            y = dataset_labels(x)
        y = check_labels(_to_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y, "score labels"),
                         self.num_classes, "score labels")  # fmt: skip
        predictions = torch.as_tensor(self.predict(x, batch_size))
        if len(predictions) != len(y):
            raise InputError(f"score got {len(y)} labels for {len(predictions)} inputs")
        return prediction_accuracy(predictions, y)[0]

    # ----------------------------------------------------------------- persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Save hyperparameters and weights (a state dict: plain tensors and JSON-like values)."""
        self._require_built()
        if Path(path).is_dir():
            raise IsADirectoryError(f"{path} is a folder; save to a file in it, e.g. {Path(path) / 'model.pt'}")
        payload = {
            "format": CHECKPOINT_FORMAT,
            "method": self.name,
            "adapt_version": __version__,
            "hparams": self.get_params(),
            "input_shape": list(getattr(self, "input_shape_", None) or []) or None,
            "target_examples": getattr(self, "target_examples_", None),
            # enough to rebuild the standard backbones without the user passing one
            "backbone": backbone_spec(self.backbone),
            "backbone_class": type(self.backbone).__name__,
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }
        write_atomically(Path(path), lambda handle: torch.save(payload, handle))

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], backbone: nn.Module | None = None, map_location: str | torch.device = "cpu"
    ) -> Adapter:
        """Rebuild a saved model.

        ``backbone`` is needed only when the model was trained on a backbone of your own: pass a
        module of the same architecture (its weights are replaced). The standard backbones of
        :mod:`adapt.models` (``MLP``, ``LeNet``, ``DTN``, ``ConvNet``, ``ResNetFeatures``) are
        rebuilt from the file. ``Adapter.load`` returns whichever method the file holds;
        ``DANN.load`` insists on DANN. Loading uses ``torch.load(weights_only=True)``: no code in
        the file is run.

        Raises
        ------
        FileNotFoundError : no file at ``path``.
        InputError : the file is not an adapt checkpoint, holds another method, needs a backbone
            that was not passed, or does not fit the backbone passed (names the first mismatch).
        """
        payload = _read_checkpoint(path, map_location)
        method_cls = _method_class(payload["method"])
        if cls is not Adapter and not issubclass(method_cls, cls):
            raise InputError(f"{os.fspath(path)!r} holds a {method_cls.__name__} model, not {cls.__name__}")
        passed = backbone
        backbone = _checkpoint_backbone(payload, backbone, path)
        hparams = dict(payload["hparams"])
        num_classes = hparams.pop("num_classes")
        model = method_cls(backbone, num_classes, **hparams)
        model._build_heads(int(hparams["feature_dim"]))
        model.input_shape_ = tuple(payload["input_shape"]) if payload.get("input_shape") else None
        if payload.get("target_examples") is not None:
            model.prepare_target(int(payload["target_examples"]))
        problem = _state_mismatch(model.state_dict(), payload["state_dict"])
        if problem:
            how = "the backbone passed" if passed is not None else "the backbone rebuilt from the file"
            raise InputError(
                f"{os.fspath(path)!r} does not fit {how} ({describe(backbone)}; the file was saved "
                f"with {_saved_backbone(payload)}): {problem}"
            )
        model.load_state_dict(payload["state_dict"])
        return model


def _method_class(name: str) -> type[Adapter]:
    """The class a checkpoint names: a registered method, a source-free one or a transfer baseline
    (each in its own registry)."""
    for registry in (SOURCE_FREE_METHODS, TRANSFER_BASELINES):
        if name in registry and name not in METHODS:
            return registry.get(name)
    return METHODS.get(name)


def _read_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device) -> dict[str, Any]:
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {os.fspath(path)!r}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:  # torch's advice (weights_only=False) would run the file's code
        raise InputError(
            f"{os.fspath(path)!r} is not an adapt checkpoint: it holds Python objects that loading would execute "
            f"({_refusal(exc)}). adapt loads checkpoints with weights_only=True only; do not "
            "unpickle this file yourself unless you trust where it came from"
        ) from None
    except Exception as exc:
        raise InputError(f"{os.fspath(path)!r} is not an adapt checkpoint (torch.load failed: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{os.fspath(path)!r} is not an adapt checkpoint (format {CHECKPOINT_FORMAT})")
    return payload


def _refusal(exc: Exception) -> str:
    """The line of torch's weights-only refusal that names what the file holds (not its advice)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    named = [line for line in lines if "Unsupported" in line or "GLOBAL" in line]
    return (named or lines or ["refused"])[0][:200]


def _saved_backbone(payload: dict[str, Any]) -> str:
    spec = payload.get("backbone")
    if spec:
        return f"{spec['class']}({', '.join(f'{k}={v!r}' for k, v in spec['config'].items())})"
    if "backbone_class" not in payload:
        return "a backbone it does not describe (saved by an older adapt)"
    return f"a {payload['backbone_class']} of your own"


def _checkpoint_backbone(payload: dict[str, Any], backbone: nn.Module | None, path: Any) -> nn.Module:
    """The backbone passed, or the standard one the file describes; a named error when neither exists."""
    if backbone is not None:
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"backbone must be a torch.nn.Module, got {type(backbone).__name__}")
        return backbone
    if payload.get("backbone"):
        return rebuild_backbone(payload["backbone"])
    method = METHODS.get(payload["method"]).__name__
    raise InputError(
        f"{os.fspath(path)!r} was trained on {_saved_backbone(payload)}: rebuild it the same way and pass it, "
        f"{method}.load({os.fspath(path)!r}, backbone=...)"
    )


def _state_mismatch(expected: dict[str, torch.Tensor], saved: dict[str, torch.Tensor]) -> str:
    """The first difference between the model's state dict and the file's, in words ('' if none)."""
    missing = [k for k in expected if k not in saved]
    unexpected = [k for k in saved if k not in expected]
    shapes = [k for k in expected if k in saved and tuple(expected[k].shape) != tuple(saved[k].shape)]
    if shapes:
        k = shapes[0]
        return (f"{k} has shape {tuple(saved[k].shape)} in the file but {tuple(expected[k].shape)} in this model"
                f"{f' ({len(shapes) - 1} more differ)' if len(shapes) > 1 else ''}")  # fmt: skip
    if missing or unexpected:
        return f"parameters missing from the file: {missing[:3]}; in the file but not in this model: {unexpected[:3]}"
    return ""
