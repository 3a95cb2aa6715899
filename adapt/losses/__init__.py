"""Pure, typed loss functions for domain adaptation.

Every function takes tensors and returns a scalar tensor (or per-sample values); none holds state.
Schedules (for example the gradient-reversal coefficient) are passed in by the caller.
"""

from .adversarial import (
    domain_adversarial_loss,
    entropy_weights,
    multilinear_map,
    randomized_multilinear_map,
)
from .coral import coral_loss, covariance, scale_free_coral_loss
from .discrepancy import classifier_discrepancy, domain_confusion_loss, margin_disparity_discrepancy
from .entropy import (
    bnm_loss,
    diversity_loss,
    entropy,
    information_maximization_loss,
    mcc_loss,
    minimax_entropy_loss,
    prediction_kl,
    soft_likelihood_ratio,
    symmetric_cross_entropy,
)
from .features import adaptive_feature_norm_loss, batch_spectral_penalty
from .grl import gradient_reversal
from .label_shift import label_shift_weights
from .mmd import DAN_MULTIPLIERS, TLLIB_DAN_MULTIPLIERS, jmmd, mean_squared_distance, mmd, squared_distances
from .symmetric import symmetric_category_confusion, symmetric_domain_loss, symmetric_entropy
from .vat import virtual_adversarial_loss

__all__ = [
    "DAN_MULTIPLIERS",
    "TLLIB_DAN_MULTIPLIERS",
    "adaptive_feature_norm_loss",
    "batch_spectral_penalty",
    "bnm_loss",
    "classifier_discrepancy",
    "coral_loss",
    "covariance",
    "diversity_loss",
    "domain_adversarial_loss",
    "domain_confusion_loss",
    "entropy",
    "entropy_weights",
    "gradient_reversal",
    "information_maximization_loss",
    "jmmd",
    "label_shift_weights",
    "margin_disparity_discrepancy",
    "mcc_loss",
    "mean_squared_distance",
    "minimax_entropy_loss",
    "mmd",
    "multilinear_map",
    "prediction_kl",
    "randomized_multilinear_map",
    "scale_free_coral_loss",
    "soft_likelihood_ratio",
    "squared_distances",
    "symmetric_category_confusion",
    "symmetric_cross_entropy",
    "symmetric_domain_loss",
    "symmetric_entropy",
    "virtual_adversarial_loss",
]
