"""ROID against a transcription of the authors' code, each component removed, and its losses."""

import copy

import pytest
import torch
import torch.nn.functional as F
from test_augment import get_tta_transforms
from torch import nn
from tta_models import cnn_stream

from adapt.losses import soft_likelihood_ratio, symmetric_cross_entropy
from adapt.testtime import ROID


class SymmetricCrossEntropy(nn.Module):
    """Transcription of mariodoebler/test-time-adaptation at 8b2ed63, ``classification/utils/losses.py`` 13-19."""

    def __init__(self, alpha=0.5):
        super().__init__()
        self.alpha = alpha

    def __call__(self, x, x_ema):
        return -(1 - self.alpha) * (x_ema.softmax(1) * x.log_softmax(1)).sum(1) - self.alpha * (
            x.softmax(1) * x_ema.log_softmax(1)
        ).sum(1)


class SoftLikelihoodRatio(nn.Module):
    """Transcription of mariodoebler/test-time-adaptation at 8b2ed63, ``classification/utils/losses.py`` 32-41."""

    def __init__(self, clip=0.99, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.clip = clip

    def __call__(self, logits):
        probs = logits.softmax(1)
        probs = torch.clamp(probs, min=0.0, max=self.clip)
        return -(probs * torch.log((probs / (torch.ones_like(probs) - probs)) + self.eps)).sum(1)


def ema_update_model(model_to_update, model_to_merge, momentum, device, update_all=False):
    """Transcription of mariodoebler/test-time-adaptation at 8b2ed63, ``classification/utils/misc.py`` 8-13."""
    if momentum < 1.0:
        for param_to_update, param_to_merge in zip(model_to_update.parameters(), model_to_merge.parameters()):
            if param_to_update.requires_grad or update_all:
                param_to_update.data = momentum * param_to_update.data + (1 - momentum) * param_to_merge.data.to(device)
    return model_to_update


class TheirROID:
    """Transcription of ``ROID`` (mariodoebler/test-time-adaptation at 8b2ed63, ``classification/methods/roid.py``
    lines 22-123 and 131-163; ``conf.py`` lines 264-269; the optimizer of ``methods/base.py`` lines 162-167 with
    ``cfgs/cifar10_c/roid.yaml``: Adam, lr 1e-3, beta 0.9, no weight decay). ``tta_transform`` is given (theirs:
    ``get_tta_transforms``), and ``batch_size`` is the stream's."""

    def __init__(self, model, num_classes, batch_size, use_consistency, tta_transform=None):
        self.model = copy.deepcopy(model)
        self.num_classes, self.batch_size, self.device = num_classes, batch_size, "cpu"
        self.use_weighting, self.use_prior_correction, self.use_consistency = True, True, use_consistency
        self.momentum_src, self.momentum_probs, self.temperature = 0.99, 0.9, 1 / 3
        self.class_probs_ema = 1 / self.num_classes * torch.ones(self.num_classes)
        self.tta_transform = tta_transform
        self.slr, self.symmetric_cross_entropy = SoftLikelihoodRatio(), SymmetricCrossEntropy()
        self.configure_model()
        self.params, _ = self.collect_params()
        self.optimizer = torch.optim.Adam(self.params, lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0)
        self.src_model = copy.deepcopy(self.model).cpu()
        for param in self.src_model.parameters():
            param.detach_()

    def softmax_entropy(self, logits):
        return -(logits.softmax(1) * logits.log_softmax(1)).sum(1)

    def loss_calculation(self, x):
        imgs_test = x[0]
        outputs = self.model(imgs_test)
        if self.use_weighting:
            with torch.no_grad():
                weights_div = 1 - F.cosine_similarity(self.class_probs_ema.unsqueeze(dim=0), outputs.softmax(1), dim=1)
                weights_div = (weights_div - weights_div.min()) / (weights_div.max() - weights_div.min())
                mask = weights_div < weights_div.mean()
                weights_cert = -self.softmax_entropy(logits=outputs)
                weights_cert = (weights_cert - weights_cert.min()) / (weights_cert.max() - weights_cert.min())
                weights = torch.exp(weights_div * weights_cert / self.temperature)
                weights[mask] = 0.0
                self.class_probs_ema = self.momentum_probs * self.class_probs_ema + (1 - self.momentum_probs) * (
                    outputs.softmax(1).mean(0)
                )
        loss_out = self.slr(logits=outputs)
        if self.use_weighting:
            loss_out = loss_out * weights
            loss_out = loss_out[~mask]
        loss = loss_out.sum() / self.batch_size
        if self.use_consistency:
            outputs_aug = self.model(self.tta_transform(imgs_test[~mask]))
            loss += (self.symmetric_cross_entropy(x=outputs_aug, x_ema=outputs[~mask]) * weights[~mask]).sum() / (
                self.batch_size
            )
        return outputs, loss

    def forward_and_adapt(self, x):
        outputs, loss = self.loss_calculation(x)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.model = ema_update_model(self.model, self.src_model, self.momentum_src, self.device)
        with torch.no_grad():
            if self.use_prior_correction:
                prior = outputs.softmax(1).mean(0)
                smooth = max(1 / outputs.shape[0], 1 / outputs.shape[1]) / torch.max(prior)
                smoothed_prior = (prior + smooth) / (1 + smooth * outputs.shape[1])
                outputs *= smoothed_prior
        return outputs

    def collect_params(self):
        params, names = [], []
        for nm, m in self.model.named_modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)):
                for np_, p in m.named_parameters():
                    if np_ in ["weight", "bias"] and p.requires_grad:
                        params.append(p)
                        names.append(f"{nm}.{np_}")
        return params, names

    def configure_model(self):
        self.model.eval()
        self.model.requires_grad_(False)
        for m in self.model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.requires_grad_(True)
                m.track_running_stats = False
                m.running_mean = None
                m.running_var = None
            elif isinstance(m, nn.BatchNorm1d):
                m.train()
                m.requires_grad_(True)
            elif isinstance(m, (nn.LayerNorm, nn.GroupNorm)):
                m.requires_grad_(True)


def shade(x: torch.Tensor) -> torch.Tensor:
    """A deterministic stand-in for their random augmentations, so that both sides see the same views."""
    return 0.8 * x.flip(-1) + 0.1


@pytest.mark.parametrize("augment", [None, shade])
def test_roid_matches_the_authors_forward_and_adapt(cnn_model, augment):
    ours = ROID(cnn_model, augment=augment)
    theirs = TheirROID(cnn_model, num_classes=3, batch_size=64, use_consistency=augment is not None,
                       tta_transform=augment)  # fmt: skip
    for batch in cnn_stream().split(64):
        torch.testing.assert_close(ours.predict_logits(batch), theirs.forward_and_adapt((batch,)).detach())
    torch.testing.assert_close(ours.class_probabilities, theirs.class_probs_ema)
    for (name, p), q in zip(ours.model.named_parameters(), theirs.model.parameters()):
        torch.testing.assert_close(p, q, msg=name)
    assert not torch.equal(ours.model[1].weight, cnn_model[1].weight)


@pytest.mark.parametrize("component", ["weighting", "prior_correction", "source_momentum"])
def test_each_component_of_roid_changes_what_it_predicts(cnn_model, component):
    off = {"weighting": False, "prior_correction": False, "source_momentum": 1.0}[component]
    full, without = ROID(cnn_model, augment=None), ROID(cnn_model, augment=None, **{component: off})
    outputs = [(full.predict_logits(b), without.predict_logits(b)) for b in cnn_stream().split(64)]
    assert any(not torch.allclose(a, b) for a, b in outputs)


def test_roid_with_the_authors_augmentation_matches_theirs(cnn_model):
    """Their consistency view: ``get_tta_transforms(img_size, padding_mode="reflect", cotta_augs=False)``
    (``methods/roid.py`` line 33), on images in [0, 1]."""
    ours = ROID(cnn_model)
    theirs = TheirROID(cnn_model, num_classes=3, batch_size=64, use_consistency=True,
                       tta_transform=get_tta_transforms((7, 7), padding_mode="reflect", cotta_augs=False))  # fmt: skip
    for i, batch in enumerate(torch.sigmoid(cnn_stream()).split(64)):
        torch.manual_seed(i)
        mine = ours.predict_logits(batch)
        torch.manual_seed(i)
        torch.testing.assert_close(mine, theirs.forward_and_adapt((batch,)).detach())
    for (name, p), q in zip(ours.model.named_parameters(), theirs.model.parameters()):
        torch.testing.assert_close(p, q, msg=name)


def test_the_losses_are_the_authors():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(16, 5, generator=g) * 3, torch.randn(16, 5, generator=g)
    torch.testing.assert_close(soft_likelihood_ratio(a), SoftLikelihoodRatio()(a))
    torch.testing.assert_close(symmetric_cross_entropy(a, b), SymmetricCrossEntropy()(a, b))
    p = torch.tensor([[0.7, 0.2, 0.1]])
    expected = -(p * torch.log(p / (1 - p) + 1e-5)).sum()  # the closed form
    torch.testing.assert_close(soft_likelihood_ratio(p.log(), reduction="mean"), expected)
    with pytest.raises(ValueError, match="differ"):
        symmetric_cross_entropy(a, b[:, :3])
