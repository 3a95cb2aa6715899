"""CDAN: CDAN+E weights, the multilinear map and the presets against the authors' code and TLlib."""

import numpy as np
import pytest
import torch
from helpers import warm_start
from torch import nn

from adapt import methods
from adapt.batch import Batch
from adapt.losses import domain_adversarial_loss, entropy_weights


def official_cdan_e_loss(d_prob: np.ndarray, softmax: np.ndarray) -> float:
    """Transcription of the CDAN authors' ``CDAN`` with entropy (thuml/CDAN at commit c904cd3, ``pytorch/loss.py``
    lines 21-43, ``Entropy`` lines 9-14): half source, half target (line 31), weights normalized within each
    domain, BCE on probabilities. The value only: the reversed gradient of line 33 is not transcribed."""
    n = len(d_prob) // 2
    entropy = -(softmax * np.log(softmax + 1e-5)).sum(1)
    w = 1.0 + np.exp(-entropy)
    source_w, target_w = w * (np.arange(2 * n) < n), w * (np.arange(2 * n) >= n)
    weight = source_w / source_w.sum() + target_w / target_w.sum()
    labels = np.array([1.0] * n + [0.0] * n)
    bce = -(labels * np.log(d_prob) + (1 - labels) * np.log(1 - d_prob))
    return float((weight * bce).sum() / weight.sum())


def tllib_cdan_e_loss(d_prob: np.ndarray, softmax: np.ndarray) -> float:
    """Transcription of ``ConditionalDomainAdversarialLoss.forward`` with entropy conditioning and a sigmoid
    discriminator (thuml/Transfer-Learning-Library at commit c4aa59e, ``tllib/alignment/cdan.py`` lines 101-119;
    ``entropy``, ``tllib/modules/entropy.py`` lines 28-30): weights normalized over the whole batch."""
    entropy = -(softmax * np.log(softmax + 1e-5)).sum(1)
    w = 1.0 + np.exp(-entropy)
    w = w / w.sum() * len(w)
    n = len(d_prob) // 2
    labels = np.array([1.0] * n + [0.0] * n)
    bce = -(labels * np.log(d_prob) + (1 - labels) * np.log(1 - d_prob))
    return float((w * bce).mean())


def official_cdan_coefficients(calls: int) -> list[float]:
    """Transcription of ``AdversarialNetwork.forward``'s schedule (thuml/CDAN at commit c904cd3,
    ``pytorch/network.py`` lines 384-386: ``if self.training: self.iter_num += 1`` before
    ``coeff = calc_coeff(self.iter_num, self.high, self.low, self.alpha, self.max_iter)``, with
    ``iter_num = 0``, ``alpha = 10``, ``max_iter = 10000`` from lines 377-382): the coefficient of each call."""
    iter_num, coefficients = 0, []
    for _ in range(calls):
        iter_num += 1  # noqa: SIM113 (their counter, incremented before use)
        coefficients.append(warm_start(iter_num, 10.0, 10000.0))
    return coefficients


def test_cdan_official_reversal_lags_the_authors_by_one_step():
    """Their discriminator counts its calls from 1 (it increments before computing); the engine's step counts
    from 0, so at every step the official preset's coefficient is theirs of the step before. A difference of
    one step in 10,000 (at most 0.0005 in the coefficient), stated in CDAN's docstring."""
    model = methods.create("cdan", nn.Linear(4, 4), num_classes=2, preset="official")
    theirs = official_cdan_coefficients(3001)
    ours = [model.grl_coefficient(0.5, step) for step in range(3001)]
    assert ours[0] == 0.0 and theirs[0] > 0.0
    np.testing.assert_allclose(ours[1:], theirs[:-1], rtol=1e-12)
    assert max(abs(a - b) for a, b in zip(ours, theirs)) < 5e-4


def _cdan_inputs(n=6, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    confident_source = torch.cat([torch.full((n, 1), 3.0), torch.full((n, 1), 0.3)])  # the domains differ in entropy
    return torch.randn(2 * n, generator=g), torch.randn(2 * n, c, generator=g) * confident_source


def test_cdan_e_per_domain_weights_match_the_authors_code():
    d_logits, class_logits = _cdan_inputs()
    w = entropy_weights(class_logits)
    ours = domain_adversarial_loss(d_logits[:6], d_logits[6:], w[:6], w[6:], weight_normalization="per_domain")
    expected = official_cdan_e_loss(torch.sigmoid(d_logits).double().numpy(),
                                    torch.softmax(class_logits, 1).double().numpy())  # fmt: skip
    assert float(ours) == pytest.approx(expected, rel=1e-4)


def test_cdan_e_joint_weights_match_tllib_and_differ_from_per_domain():
    d_logits, class_logits = _cdan_inputs(seed=3)
    w = entropy_weights(class_logits)
    joint = domain_adversarial_loss(d_logits[:6], d_logits[6:], w[:6], w[6:], weight_normalization="joint")
    expected = tllib_cdan_e_loss(torch.sigmoid(d_logits).double().numpy(),
                                 torch.softmax(class_logits, 1).double().numpy())  # fmt: skip
    assert float(joint) == pytest.approx(expected, rel=1e-4)
    per_domain = domain_adversarial_loss(d_logits[:6], d_logits[6:], w[:6], w[6:])
    assert abs(float(joint) - float(per_domain)) > 1e-3


@pytest.mark.parametrize("preset", ["official", "tllib"])
def test_cdan_presets_use_the_multilinear_map_even_when_large(preset):
    model = methods.create("cdan", nn.Linear(4, 256), num_classes=31, preset=preset, entropy_conditioning=True)
    assert not model.uses_randomized_map(256)  # 256 * 31 > 4096
    default = methods.create("cdan", nn.Linear(4, 256), num_classes=31)
    assert default.uses_randomized_map(256) and not default.uses_randomized_map(100)


def test_cdan_official_preset_end_to_end_loss_is_the_authors_loss():
    torch.manual_seed(0)
    model = methods.create("cdan", nn.Linear(5, 4), num_classes=3, preset="official", entropy_conditioning=True,
                           discriminator_dropout=0.0)  # fmt: skip
    xs, xt, ys = torch.randn(6, 5), torch.randn(6, 5) + 1, torch.randint(0, 3, (6,))
    model.build(xs)
    term = float(model.loss(Batch(xs, ys, xt), 0.5)["domain"].detach())
    with torch.no_grad():
        f = model.embed(torch.cat([xs, xt]))
        g = torch.softmax(model.classifier(f), 1)
        op = torch.bmm(g.unsqueeze(2), f.unsqueeze(1)).reshape(12, -1)
        probs = torch.sigmoid(model.discriminator(op))
    assert term == pytest.approx(official_cdan_e_loss(probs.double().numpy(), g.double().numpy()), rel=1e-4)
