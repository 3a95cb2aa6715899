"""Class importance weights under label shift (Combes et al., NeurIPS 2020)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize


def label_shift_weights(
    confusion: torch.Tensor, target_prediction: torch.Tensor, source_prior: torch.Tensor
) -> torch.Tensor:
    """Class weights :math:`w_y \\approx p_T(y)/p_S(y)` from predictions, under generalized label shift.

    Combes, Zhao, Wang & Gordon, "Domain Adaptation with Conditional Distribution Matching and
    Generalized Label Shift", NeurIPS 2020 (after Lipton et al.'s black-box shift estimation, ICML 2018;
    their code is transcribed in ``tests/reference/test_label_shift_vs_authors.py``): with
    :math:`C_{ij} = P_S(\\hat Y = i, Y = j)` (the source's joint distribution of predicted and true labels)
    and :math:`\\mu_i = P_T(\\hat Y = i)` (the target's mean prediction), the weights solve
    :math:`\\mu = C w`; estimated as

    .. math:: \\min_w \\tfrac12 \\lVert C w - \\mu \\rVert^2 \\quad\\text{s.t.}\\quad w \\ge 0,\\;
              \\textstyle\\sum_y w_y\\, p_S(y) = 1.

    The authors' code (``network.py``, ``im_weights_update``) passes :math:`q = -C\\mu` to its QP
    solver where this objective's linear term is :math:`-C^\\top\\mu`; the two agree when :math:`C` is
    symmetric (an accurate source classifier: :math:`C` near diagonal), and only this form recovers
    :math:`w` exactly when :math:`\\mu = Cw` (the reference test shows both).

    Parameters
    ----------
    confusion : Tensor (K, K), rows the predicted class and columns the true class, summing to 1
        (mean over source examples of ``softmax(logits)`` outer ``one_hot(y)``).
    target_prediction : Tensor (K,), the mean target softmax, summing to 1.
    source_prior : Tensor (K,), the source's class proportions, summing to 1.

    Returns
    -------
    Tensor (K,) float32 on the device of ``confusion``, non-negative, ``(weights * source_prior).sum() == 1``.

    Examples
    --------
    A perfect source classifier: the weights are the ratio of the class proportions.

    >>> p_s, p_t = torch.tensor([0.5, 0.5]), torch.tensor([0.8, 0.2])
    >>> label_shift_weights(torch.diag(p_s), p_t, p_s)
    tensor([1.6000, 0.4000])
    """
    c = confusion.detach().double().cpu().numpy()
    mu = target_prediction.detach().double().cpu().numpy()
    prior = source_prior.detach().double().cpu().numpy()
    k = c.shape[0]
    if c.shape != (k, k) or mu.shape != (k,) or prior.shape != (k,):
        raise ValueError(
            f"label_shift_weights needs confusion (K, K), target_prediction (K,) and source_prior (K,); "
            f"got {tuple(c.shape)}, {tuple(mu.shape)}, {tuple(prior.shape)}"
        )
    gram, linear = c.T @ c, c.T @ mu
    solution = minimize(
        lambda w: 0.5 * w @ gram @ w - linear @ w,
        np.ones(k) / max(float(prior.sum()), 1e-12),
        jac=lambda w: gram @ w - linear,
        method="SLSQP",
        bounds=[(0.0, None)] * k,
        constraints=[{"type": "eq", "fun": lambda w: prior @ w - 1.0, "jac": lambda w: prior}],
        options={"ftol": 1e-12, "maxiter": 500},
    )
    weights = np.clip(solution.x, 0.0, None)
    return torch.as_tensor(weights / max(float(prior @ weights), 1e-12), dtype=torch.float32, device=confusion.device)
