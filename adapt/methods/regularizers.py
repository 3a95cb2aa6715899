"""Regularizers any method can take by name: ``create("cdan", regularizers={"bsp": 1e-4, "mcc": 1.0})``.

A regularizer maps the :class:`~adapt.batch.Outputs` of the method's forward pass (source and
target features and logits) to one scalar (one marked ``needs_model``, such as MIC's, also takes the
method and the batch); the method adds ``weight * value`` to its loss as the
term ``"reg_<name>"``. Each name is also a method that trains with the source loss plus that one
term (``create("bsp")``), and its default ``trade_off`` is the regularizer's default weight in a
composed name: ``create("cdan+bsp+mcc")`` is CDAN with ``regularizers={"bsp": 1e-4, "mcc": 1.0}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from numbers import Real
from typing import Any

import torch

from ..batch import Outputs
from ..losses import bnm_loss, entropy, information_maximization_loss, mcc_loss
from ..losses.features import adaptive_feature_norm_loss, batch_spectral_penalty
from ..registry import Registry

Regularizer = Callable[..., torch.Tensor]

#: name -> function of the forward pass's outputs
REGULARIZERS: Registry[Regularizer] = Registry("regularizer")


@REGULARIZERS.register("bsp")
def spectral_penalty(out: Outputs) -> torch.Tensor:
    """BSP (Chen et al. 2019): the largest singular value squared, source plus target features."""
    return batch_spectral_penalty(out.source_features) + batch_spectral_penalty(out.target_features)


@REGULARIZERS.register("afn")
def feature_norm(out: Outputs) -> torch.Tensor:
    """SAFN (Xu et al. 2019): pull every feature norm of both domains toward 1 beyond its current value."""
    return adaptive_feature_norm_loss(out.source_features) + adaptive_feature_norm_loss(out.target_features)


@REGULARIZERS.register("bnm")
def nuclear_norm(out: Outputs) -> torch.Tensor:
    """BNM (Cui et al. 2020): the negative nuclear norm of the target predictions."""
    return bnm_loss(out.target_logits)


@REGULARIZERS.register("minent", "entropy")
def target_entropy(out: Outputs) -> torch.Tensor:
    """Entropy minimization (Grandvalet & Bengio 2004) on the target predictions."""
    return entropy(out.target_logits)


@REGULARIZERS.register("im")
def information_maximization(out: Outputs) -> torch.Tensor:
    """Information maximization (Gomes et al. 2010; SHOT): target entropy minus the entropy of the mean."""
    return information_maximization_loss(out.target_logits)


@REGULARIZERS.register("mcc")
def class_confusion(out: Outputs) -> torch.Tensor:
    """MCC (Jin et al. 2020) at its paper's temperature 2.5 (the ``mcc`` method can change it)."""
    return mcc_loss(out.target_logits, 2.5)


def check_regularizers(regularizers: Mapping[str, float] | None) -> dict[str, float]:
    """``{name: weight}`` with known names and finite non-negative weights, or a named error."""
    if regularizers is None:
        return {}
    if not isinstance(regularizers, Mapping):
        raise TypeError(f"regularizers must be a mapping of name to weight, got {type(regularizers).__name__}")
    checked = {}
    for name, weight in regularizers.items():
        REGULARIZERS.get(name)  # unknown names: a ValueError listing the available ones
        if isinstance(weight, bool) or not isinstance(weight, Real) or not 0 <= float(weight) < float("inf"):
            raise ValueError(f"the weight of regularizer {name!r} must be a finite number >= 0, got {weight!r}")
        canonical = REGULARIZERS.canonical(name)
        if canonical in checked:
            raise ValueError(f"regularizer {canonical!r} is given twice (as {name!r} and under another name)")
        checked[canonical] = float(weight)
    return checked


def regularizer_value(name: str, out: Outputs, model: Any = None, batch: Any = None) -> torch.Tensor:
    """One regularizer on one forward pass (a ``needs_model`` one with the method and the batch too)."""
    function = REGULARIZERS[name]
    if getattr(function, "needs_model", False):
        if model is None or batch is None:
            raise ValueError(f"regularizer {name!r} needs the method and the batch")
        return function(model, batch)
    return function(out)


def regularization_terms(
    regularizers: Mapping[str, float], out: Outputs, model: Any = None, batch: Any = None
) -> dict[str, torch.Tensor]:
    """``{"reg_<name>": weight * value}`` for each regularizer on one forward pass."""
    return {f"reg_{name}": weight * regularizer_value(name, out, model, batch) for name, weight in regularizers.items()}
