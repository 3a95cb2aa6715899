"""Gradient reversal (Ganin & Lempitsky, ICML 2015; Ganin et al., JMLR 2016)."""

from __future__ import annotations

import torch


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coefficient: float) -> torch.Tensor:
        ctx.coefficient = float(coefficient)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return -ctx.coefficient * grad_output, None


def gradient_reversal(x: torch.Tensor, coefficient: float = 1.0) -> torch.Tensor:
    """Identity in the forward pass, gradient times ``-coefficient`` in the backward pass.

    Ganin et al., "Domain-Adversarial Training of Neural Networks", JMLR 2016, Sec. 4.2
    (the pseudo-function :math:`R_\\lambda` of Eq. 15). The coefficient is an argument, not
    state: the training loop passes the scheduled value (see
    :func:`adapt.train.schedules.grl_coefficient`) on every call.

    Parameters
    ----------
    x : Tensor of any shape.
    coefficient : float, the :math:`\\lambda` that scales the reversed gradient.

    Examples
    --------
    >>> x = torch.ones(3, requires_grad=True)
    >>> torch.equal(gradient_reversal(x, 0.5), x)  # the forward pass is the identity
    True
    >>> gradient_reversal(x, 0.5).sum().backward()  # the backward pass reverses and scales
    >>> x.grad
    tensor([-0.5000, -0.5000, -0.5000])
    """
    return _GradientReversal.apply(x, coefficient)
