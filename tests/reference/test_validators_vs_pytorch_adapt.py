"""Validator scores against pytorch-adapt's validators; skipped without pytorch-adapt."""

import math

import pytest

pytest.importorskip("pytorch_adapt")

import numpy as np
import torch
from pytorch_adapt import validators as pa_validators
from pytorch_adapt.validators.deep_embedded_validator import get_dev_risk

from adapt.validators import bnm_score, class_ami_score, dev_risk, entropy_score, im_score, snd_score


def test_scores_match_pytorch_adapt_validators():
    logits = torch.randn(60, 5) * 2
    assert math.isclose(im_score(logits), pa_validators.IMValidator()(target_train={"logits": logits}), abs_tol=1e-5)
    assert math.isclose(
        entropy_score(logits), pa_validators.EntropyValidator()(target_train={"logits": logits}), abs_tol=1e-5
    )
    assert math.isclose(bnm_score(logits), pa_validators.BNMValidator()(target_train={"logits": logits}), abs_tol=1e-5)
    ref_snd = pa_validators.SNDValidator()(target_train={"preds": torch.softmax(logits, 1)})
    assert math.isclose(snd_score(logits), ref_snd, abs_tol=1e-4)


def feat_normalizer_fn(normalize, p):
    """Transcription of ``feat_normalizer_fn`` (KevinMusgrave/powerful-benchmarker at commit 009150a,
    ``validator_tests/configs/cluster_config.py`` lines 41-47)."""

    def fn(x):
        if normalize:
            return torch.nn.functional.normalize(x, dim=1, p=p)
        return x

    return fn


@pytest.mark.parametrize("seed", range(4))
def test_class_ami_is_the_benchmarks_class_ami_centroid_init(seed):
    """``ClassAMICentroidInit_layer_features_normalize_True_p_2.0`` of Musgrave et al.'s tables
    (powerful-benchmarker ``latex/utils.py`` line 111; ``cluster_config.py`` lines 50-100: pytorch-adapt's
    ClassClusterValidator with ``centroid_init="label_centers"`` and the normalizer above), on clusters
    that overlap, where the k-means initialization matters."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(200, 8, generator=g)
    logits = features[:, :5] + 0.7 * torch.randn(200, 5, generator=g)
    reference = pa_validators.ClassClusterValidator(
        layer="features", with_src=False, pca_size=None, centroid_init="label_centers",
        feat_normalizer=feat_normalizer_fn(True, 2.0),
    )(target_train={"features": features, "logits": logits})  # fmt: skip
    assert class_ami_score(features, logits) == reference
    assert 0.05 < reference < 0.9


@pytest.mark.parametrize("normalization", [None, "max"])
def test_dev_risk_matches_pytorch_adapt(normalization):
    rng = np.random.default_rng(0)
    weights, losses = rng.uniform(0.2, 3, 40), rng.uniform(0, 2, 40)
    ref = get_dev_risk(torch.tensor(weights[:, None].copy()), torch.tensor(losses[:, None]), normalization)
    assert math.isclose(dev_risk(weights, losses, normalization), float(ref), rel_tol=1e-9)
