"""Virtual adversarial training: the smoothness penalty of VADA and DIRT-T."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ._utils import float32_region


def _unit(x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(len(x), -1)
    return (flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)).reshape(x.shape)


def virtual_adversarial_loss(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    logits: torch.Tensor | None = None,
    epsilon: float = 1.0,
    xi: float = 1e-3,
    power_iterations: int = 1,
) -> torch.Tensor:
    """KL divergence between the predictions at ``x`` and at ``x + r``, with r the perturbation of norm
    ``epsilon`` that changes them most (found by power iteration from random noise).

    Miyato et al., "Virtual Adversarial Training", TPAMI 2019; used on both domains by VADA (Shu et
    al., "A DIRT-T Approach to Unsupervised Domain Adaptation", ICLR 2018):
    :math:`\\mathrm{KL}(p(\\cdot|x)\\,\\|\\,p(\\cdot|x + r_{adv}))`, averaged over the batch. The clean
    predictions are a fixed target (no gradient). The starting noise is drawn with ``torch.randn``.

    With BatchNorm in the model, compare like with like: leave ``logits`` None, so that the clean
    predictions come from the same kind of batch as the perturbed ones, and call it inside
    :func:`adapt.models.frozen_running_statistics` (batch statistics, running estimates
    untouched) and :func:`adapt.models.dropout_disabled` (one network for every pass). Clean logits
    of another batch (a joint source and target batch), BatchNorm switched to evaluation mode for the
    perturbed pass only, a fresh dropout mask per pass, or clean logits from an autocast pass make the
    divergence measure those differences instead of the perturbation. All passes run in float32.

    Parameters
    ----------
    model : maps inputs to logits.
    x : the inputs (B, ...).
    logits : ``model(x)`` if the caller has it from the same kind of pass (same batch, same modes,
        float32); None computes it (no gradient).
    epsilon : L2 norm of the adversarial perturbation, per example, in input units.
    xi : L2 norm of the probe perturbation of the power iteration. The VAT paper's 1e-6, added in
        float32 to a few thousand inputs in [0, 1], leaves most of them unchanged (checked in
        ``tests/methods/test_vat_vada_dirt_t.py``); the default 1e-3 changes every one.
    power_iterations : number of power iterations.
    """
    with float32_region(x):  # every pass in float32: clean and perturbed predictions of one precision
        if logits is None:
            with torch.no_grad():
                logits = model(x)
        target = logits.detach().float().softmax(dim=1)
        noise = torch.randn(x.shape, device=x.device, dtype=x.dtype)
        for _ in range(power_iterations):
            probe = (xi * _unit(noise)).requires_grad_()
            divergence = F.kl_div(model(x + probe).float().log_softmax(dim=1), target, reduction="batchmean")
            (noise,) = torch.autograd.grad(divergence, probe)
        perturbed = model(x + epsilon * _unit(noise.detach())).float().log_softmax(dim=1)
        return F.kl_div(perturbed, target, reduction="batchmean")
