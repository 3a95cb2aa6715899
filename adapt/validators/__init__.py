"""Unsupervised model selection: validators, a checkpoint-keeping callback, and validator quality.

>>> from adapt.validators import ValidationCallback
>>> cb = ValidationCallback(["im", "snd", "source_accuracy"], target=xt, source_val=(xv, yv),
...                         every=100, select="im")                      # doctest: +SKIP
>>> model.fit((xs, ys), xt, callbacks=[cb]); cb.restore_best(model)      # doctest: +SKIP
"""

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
)

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
    "reverse_validation_score",
    "snd_score",
    "spearman",
    "weighted_spearman",
]
