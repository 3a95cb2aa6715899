"""Schedules driven by training progress ``p`` in [0, 1] (or the step, for the TLlib schedule)."""

from __future__ import annotations

import math
from typing import Literal

LRSchedule = Literal["dann", "inverse", "mme", "cosine", "constant"]
GRLSchedule = Literal["dann", "warm_start", "constant"]


def grl_coefficient(progress: float, max_value: float = 1.0, gamma: float = 10.0) -> float:
    """Gradient-reversal coefficient :math:`\\lambda_p = \\frac{2}{1+\\exp(-\\gamma p)} - 1`.

    Ganin et al., JMLR 2016, Sec. 5.2.2 (gamma = 10): rises from 0 to ``max_value`` so that the
    discriminator's noisy early signal does not disturb the features.
    """
    return max_value * (2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0)


def warm_start_grl_coefficient(
    step: int, max_value: float = 1.0, min_value: float = 0.0, alpha: float = 1.0, max_steps: float = 1000.0
) -> float:
    """The step-driven ramp :math:`\\lambda_i = \\frac{2(hi-lo)}{1+\\exp(-\\alpha i/N)} - (hi-lo) + lo`.

    TLlib's ``WarmStartGradientReverseLayer`` (defaults alpha=1, lo=0, hi=1, N=1000) and the CDAN
    authors' ``calc_coeff`` (alpha=10, N=10000) have this form. Unlike :func:`grl_coefficient` it
    depends on the step ``i``, not on the fraction of training done: with N=1000 and alpha=1 the
    coefficient is 0.46 after 1000 steps and 0.91 after 3000, whatever the run length.
    """
    span = max_value - min_value
    return 2.0 * span / (1.0 + math.exp(-alpha * step / max_steps)) - span + min_value


def lr_factor(schedule: LRSchedule, progress: float, step: int) -> float:
    """Multiplier of the base learning rate at ``progress`` (``step`` for 'inverse').

    * ``"dann"``: :math:`(1 + 10p)^{-0.75}`, Ganin et al., JMLR 2016, Sec. 5.2.2.
    * ``"inverse"``: :math:`(1 + 0.001\\,t)^{-0.75}`, TLlib's Office-31 protocol (t = step).
    * ``"mme"``: :math:`(1 + 0.0001\\,t)^{-0.75}`, Saito et al.'s ``inv_lr_scheduler`` (SSDA_MME
      ``utils/lr_schedule.py``, gamma 1e-4; t = step).
    * ``"cosine"``: :math:`\\frac12(1 + \\cos \\pi p)`.
    * ``"constant"``: 1.
    """
    if schedule == "dann":
        return (1.0 + 10.0 * progress) ** -0.75
    if schedule == "inverse":
        return (1.0 + 0.001 * step) ** -0.75
    if schedule == "mme":
        return (1.0 + 0.0001 * step) ** -0.75
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "constant":
        return 1.0
    raise ValueError(f"unknown lr_schedule {schedule!r}; choose 'dann', 'inverse', 'mme', 'cosine' or 'constant'")
