"""Unsupervised model selection: validators, a checkpoint-keeping callback, and validator quality.

>>> from adapt import SourceOnly
>>> from adapt.data import task
>>> from adapt.models import MLP
>>> from adapt.validators import ValidationCallback
>>> t = task("moons", "source", "rotated", source_holdout=0.2)
>>> cb = ValidationCallback(["im", "snd", "source_accuracy"], target=t.target_train, source_val=t.source_val,
...                         every=20, select="im")
>>> model = SourceOnly(MLP(2, (16,)), num_classes=2)
>>> history = model.fit(t.source_train, t.target_train, steps=100, device="cpu", verbose=False, callbacks=[cb])
>>> cb.restore_best(model) in (20, 40, 60, 80, 100)   # the step of the best "im" score, now loaded back
True
"""

from ..registry import import_submodules
from .correlation import spearman, weighted_spearman
from .scores import (
    accuracy_score,
    bnm_score,
    class_ami_score,
    dev_risk,
    domain_importance_weights,
    entropy_score,
    im_score,
    reverse_validation_score,
    snd_score,
)
from .validators import (
    BNM,
    DEV,
    DEVN,
    SND,
    VALIDATORS,
    ClassAMI,
    Entropy,
    InformationMaximization,
    ModelOutputs,
    ReverseValidation,
    SourceAccuracy,
    ValidationCallback,
    Validator,
    collect_outputs,
    create_validator,
    register_validator,
)

import_submodules(__name__, __path__)  # a validator in a new file registers itself (pa_validators: pa:<name>)

__all__ = [
    "BNM",
    "DEV",
    "DEVN",
    "SND",
    "VALIDATORS",
    "ClassAMI",
    "Entropy",
    "InformationMaximization",
    "ModelOutputs",
    "ReverseValidation",
    "SourceAccuracy",
    "ValidationCallback",
    "Validator",
    "accuracy_score",
    "bnm_score",
    "class_ami_score",
    "collect_outputs",
    "create_validator",
    "dev_risk",
    "domain_importance_weights",
    "entropy_score",
    "im_score",
    "register_validator",
    "reverse_validation_score",
    "snd_score",
    "spearman",
    "weighted_spearman",
]
