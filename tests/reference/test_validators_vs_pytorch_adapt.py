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
    assert math.isclose(snd_score(logits, chunk_size=16), ref_snd, abs_tol=1e-4)


def test_class_ami_matches_pytorch_adapt_on_separable_clusters():
    # k-means inits differ between the two, but well-separated clusters give one partition
    labels = torch.arange(90) % 3
    features = torch.eye(3)[labels] * 10 + 0.3 * torch.randn(90, 3)
    logits = torch.eye(3)[labels] * 5
    logits[:9] = torch.eye(3)[(labels[:9] + 1) % 3] * 5  # 10 % wrong predictions
    ref = pa_validators.ClassClusterValidator()(target_train={"features": features, "logits": logits})
    assert math.isclose(class_ami_score(features, logits), ref, abs_tol=1e-9)
    assert 0.5 < ref < 0.9


@pytest.mark.parametrize("normalization", [None, "max"])
def test_dev_risk_matches_pytorch_adapt(normalization):
    rng = np.random.default_rng(0)
    weights, losses = rng.uniform(0.2, 3, 40), rng.uniform(0, 2, 40)
    ref = get_dev_risk(torch.tensor(weights[:, None].copy()), torch.tensor(losses[:, None]), normalization)
    assert math.isclose(dev_risk(weights, losses, normalization), float(ref), rel_tol=1e-9)
