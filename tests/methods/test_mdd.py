"""MDD: the margin disparity discrepancy against TLlib and its gradient reversal."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adapt import losses, methods
from adapt.testing import default_backbone
from adapt.train.schedules import warm_start_grl_coefficient


def tllib_mdd(y_s, y_s_adv, y_t, y_t_adv, margin=4.0):
    """Transcription of ``ClassificationMarginDisparityDiscrepancy`` (thuml/Transfer-Learning-Library at commit
    c4aa59e, ``tllib/alignment/mdd.py``: the two disparities of ``__init__``, lines 142-152; ``shift_log``,
    lines 220-236; ``MarginDisparityDiscrepancy.forward`` without instance weights, reduction 'mean', lines 68-85)."""
    _, prediction_s = y_s.max(dim=1)
    source_loss = -margin * F.cross_entropy(y_s_adv, prediction_s, reduction="none")
    _, prediction_t = y_t.max(dim=1)
    shifted_log = torch.log(torch.clamp(1.0 - F.softmax(y_t_adv, dim=1) + 1e-6, max=1.0))
    target_loss = -F.nll_loss(shifted_log, prediction_t, reduction="none")
    return (source_loss + target_loss).mean()


@pytest.mark.parametrize("margin", [1.0, 4.0])
def test_margin_disparity_discrepancy_matches_tllib_transcription(margin):
    g = torch.Generator().manual_seed(0)
    y_s, y_t = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    adv_s = torch.randn(8, 5, generator=g).requires_grad_()
    adv_t = (torch.randn(8, 5, generator=g) * 4).requires_grad_()
    ours = losses.margin_disparity_discrepancy(y_s, adv_s, y_t, adv_t, margin)
    theirs = tllib_mdd(y_s, adv_s, y_t, adv_t, margin)
    torch.testing.assert_close(ours, theirs)
    grads = torch.autograd.grad(ours, (adv_s, adv_t))
    torch.testing.assert_close(grads, torch.autograd.grad(theirs, (adv_s, adv_t)))


def test_mdd_closed_form_on_one_pair():
    # source: adversary agrees with the main prediction at probability 1/2; target: at 1/4
    y_s, adv_s = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    y_t, adv_t = torch.tensor([[0.0, 1.0]]), torch.tensor([[math.log(3.0), 0.0]])
    expected = 4.0 * math.log(0.5) + math.log(1 - 0.25 + 1e-6)
    assert float(losses.margin_disparity_discrepancy(y_s, adv_s, y_t, adv_t)) == pytest.approx(expected, rel=1e-5)


def test_mdd_reversal_reaches_tllibs_coefficient():
    """TLlib's MDD: ``WarmStartGradientReverseLayer(alpha=1.0, lo=0.0, hi=0.1, max_iters=1000)``
    (thuml/Transfer-Learning-Library at commit c4aa59e, ``tllib/alignment/mdd.py`` lines 250-251), whose
    coefficient is that of ``WarmStartGradientReverseLayer.forward`` (``tllib/modules/grl.py`` lines 71-74, lo = 0)."""
    model = methods.MDD(default_backbone(), 3)
    for step in (0, 500, 1000, 5000):
        tllib = 2.0 * 0.1 / (1.0 + np.exp(-1.0 * step / 1000)) - 0.1
        ours = warm_start_grl_coefficient(
            step, model.grl_max, alpha=model.grl_warm_start_alpha, max_steps=model.grl_warm_start_steps
        )
        assert ours == pytest.approx(tllib)
