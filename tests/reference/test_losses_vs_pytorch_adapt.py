"""Losses against pytorch-adapt's implementations (value and gradient); skipped without pytorch-adapt."""

import pytest

pytest.importorskip("pytorch_adapt")

import torch
from helpers import assert_same_value_and_grad
from pytorch_adapt import hooks as pa_hooks
from pytorch_adapt import layers as pa_layers

from adapt import losses


def test_gradient_reversal_matches_pytorch_adapt():
    ref = pa_layers.GradientReversal(weight=0.3)
    w = torch.randn(5, 2)
    assert_same_value_and_grad(
        lambda x: (losses.gradient_reversal(x, 0.3) * w).sum(), lambda x: (ref(x) * w).sum(), torch.randn(5, 2)
    )


def test_domain_loss_sum_matches_pytorch_adapt_domain_loss_hook():
    """pytorch-adapt's DANN loss has one BCE term per domain (DomainLossHook), each a mean, added up."""
    generator, discriminator = torch.nn.Linear(4, 3), torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0))
    xs, xt = torch.randn(8, 4), torch.randn(6, 4) + 1
    inputs = {"src_imgs": xs, "target_imgs": xt, "src_domain": torch.zeros(8), "target_domain": torch.ones(6),
              "G": generator, "D": discriminator}  # fmt: skip
    outputs, pa_losses = pa_hooks.DomainLossHook()(inputs)
    expected = pa_losses["src_domain_loss"].mean() + pa_losses["target_domain_loss"].mean()
    # pytorch-adapt labels the source 0 and the target 1; ours are the other way round
    source_logits = -outputs["src_imgs_features_dlogits"]
    target_logits = -outputs["target_imgs_features_dlogits"]
    torch.testing.assert_close(losses.domain_adversarial_loss(source_logits, target_logits, reduction="sum"), expected)


@pytest.mark.parametrize("mmd_type", ["quadratic", "linear"])
def test_mmd_matches_pytorch_adapt(mmd_type):
    scales = torch.tensor([0.5, 1.0, 2.0])  # pytorch-adapt multiplies the inverse bandwidth
    bandwidth = 3.0
    ref = pa_layers.MMDLoss(kernel_scales=scales, mmd_type=mmd_type, bandwidth=bandwidth)
    estimator = "unbiased" if mmd_type == "quadratic" else "linear"
    ours = lambda a, b: losses.mmd(  # noqa: E731
        a, b, multipliers=tuple(1 / s for s in scales.tolist()), bandwidth=bandwidth, estimator=estimator
    )
    x, y = torch.randn(16, 8), torch.randn(16, 8) + 0.5
    assert_same_value_and_grad(ours, ref, x, y)


@pytest.mark.parametrize("mmd_type", ["quadratic", "linear"])
def test_jmmd_matches_pytorch_adapt(mmd_type):
    ref = pa_layers.MMDLoss(kernel_scales=torch.tensor([1.0]), mmd_type=mmd_type, bandwidth=2.0)
    estimator = "unbiased" if mmd_type == "quadratic" else "linear"
    x1, y1 = torch.randn(12, 4), torch.randn(12, 4) + 0.3
    x2, y2 = torch.softmax(torch.randn(12, 3), 1), torch.softmax(torch.randn(12, 3), 1)
    ours = lambda a, b, c, d: losses.jmmd(  # noqa: E731
        [a, c], [b, d], multipliers=[(1.0,), (1.0,)], bandwidth=2.0, estimator=estimator
    )
    theirs = lambda a, b, c, d: ref([a, c], [b, d])  # noqa: E731
    assert_same_value_and_grad(ours, theirs, x1, y1, x2, y2)


def test_coral_matches_pytorch_adapt():
    assert_same_value_and_grad(losses.coral_loss, pa_layers.CORALLoss(), torch.randn(16, 5), torch.randn(16, 5) * 1.5)


def test_entropy_losses_match_pytorch_adapt():
    logits = torch.randn(16, 6) * 2
    assert_same_value_and_grad(losses.entropy, pa_layers.EntropyLoss(), logits)
    assert_same_value_and_grad(losses.diversity_loss, pa_layers.DiversityLoss(), logits)
    assert_same_value_and_grad(losses.bnm_loss, pa_layers.BNMLoss(), logits)


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_mcc_matches_pytorch_adapt(temperature):
    ref = pa_layers.MCCLoss(T=temperature)
    assert_same_value_and_grad(lambda z: losses.mcc_loss(z, temperature), ref, torch.randn(16, 5) * 3)


# ---------------------------------------------------------------- the catalogue's losses


@pytest.mark.parametrize("k", [1, 3])
def test_batch_spectral_penalty_matches_pytorch_adapt(k):
    ref = pa_layers.BatchSpectralLoss(k=k)
    assert_same_value_and_grad(lambda x: losses.batch_spectral_penalty(x, k), ref, torch.randn(16, 6) * 2)


def test_adaptive_feature_norm_matches_pytorch_adapt():
    ref = pa_layers.AdaptiveFeatureNorm(step_size=0.7)
    ours = lambda x: losses.adaptive_feature_norm_loss(x, 0.7)  # noqa: E731
    assert_same_value_and_grad(ours, ref, torch.randn(12, 5))


def test_classifier_discrepancy_matches_pytorch_adapt_mcd_loss():
    assert_same_value_and_grad(
        losses.classifier_discrepancy, pa_layers.MCDLoss(), torch.randn(10, 4), torch.randn(10, 4)
    )


def test_domain_confusion_matches_pytorch_adapt_uniform_distribution_loss():
    two_logits = torch.randn(14, 2)
    assert_same_value_and_grad(losses.domain_confusion_loss, pa_layers.UniformDistributionLoss(), two_logits)
    # one binary logit z is the pair (z, 0)
    z = torch.randn(14)
    ref = pa_layers.UniformDistributionLoss()(torch.stack([z, torch.zeros_like(z)], dim=1))
    torch.testing.assert_close(losses.domain_confusion_loss(z), ref)
