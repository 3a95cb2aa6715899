"""Maximum mean discrepancy with multi-kernel Gaussian families (DAN) and its joint variant (JAN).

Four estimators of the squared MMD between samples ``x`` (n, d) and ``y`` (m, d) are offered
(the first three from Gretton et al., "A Kernel Two-Sample Test", JMLR 2012):

* ``"biased"``   -- :math:`\\mathrm{MMD}^2_b`, Eq. 5: means over all pairs, diagonals included.
* ``"unbiased"`` -- :math:`\\mathrm{MMD}^2_u`, Eq. 3: the within-domain means exclude ``i = j``.
* ``"linear"``   -- :math:`\\mathrm{MMD}^2_l`, Lemma 14: one pass over disjoint pairs,
  :math:`\\frac{1}{m'}\\sum_i h(z_{2i-1}, z_{2i})` with
  :math:`h = k(x_1,x_2)+k(y_1,y_2)-k(x_1,y_2)-k(x_2,y_1)`; O(n d) time and memory. This is the
  estimator of DAN (Long et al., ICML 2015, Eq. 6).
* ``"cyclic"``   -- TLlib's "linear" DAN: the mean of :math:`h(z_i, z_{i+1})` over the ``b``
  cyclically consecutive pairs ``(i, (i + 1) mod b)`` of the first ``b = min(n, m)`` examples;
  every example enters two terms. O(n d). (TLlib adds the constant :math:`2/(b-1)`, which changes
  no gradient and is left out here.)

The kernel is the average (or, with ``kernel_sum=True``, the sum) of Gaussians
:math:`k_\\gamma(a,b) = \\exp(-\\lVert a-b\\rVert^2/\\gamma)` with
:math:`\\gamma = \\text{multiplier} \\times \\text{base}`; the base bandwidth is the mean of the
pairwise squared distances of the pooled sample over pairs ``i != j`` (``"mean"``) or over all
ordered pairs, self-pairs included (``"mean_all_pairs"``, TLlib's ``GaussianKernel``), the median,
or a fixed number. The bandwidth is treated as a constant (no gradient flows through it), as in
DAN's implementation. TLlib writes its kernel as :math:`\\exp(-d^2 / (2\\alpha\\,\\bar d^2))` with
:math:`\\alpha = 2^k`: that is ``multipliers = 2 * 2^k`` here (:data:`TLLIB_DAN_MULTIPLIERS`).

Distances are computed after subtracting the pooled mean (they do not change, but the expansion
:math:`\\lVert a\\rVert^2 + \\lVert b\\rVert^2 - 2a^\\top b` loses every digit when the features share a
large offset).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import torch
from torch.utils.checkpoint import checkpoint

from ._utils import float32_region

Estimator = Literal["biased", "unbiased", "linear", "cyclic"]
Bandwidth = Literal["mean", "mean_all_pairs", "median"] | float
ESTIMATORS = ("biased", "unbiased", "linear", "cyclic")

#: Bandwidth multipliers :math:`2^k, k=-3..1` of the base bandwidth (DAN's family of 5 kernels).
DAN_MULTIPLIERS: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0)
#: TLlib's DAN family, ``GaussianKernel(alpha=2**k)`` for k = -3..1, in this module's convention
#: :math:`\gamma = m \cdot \text{base}` (TLlib divides by :math:`2\alpha`).
TLLIB_DAN_MULTIPLIERS: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances, shape (len(a), len(b)), clamped at 0."""
    sq = a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1).unsqueeze(0) - 2.0 * (a @ b.t())
    return sq.clamp_min(0.0)


def mean_squared_distance(z: torch.Tensor) -> torch.Tensor:
    """Mean of :math:`\\lVert z_i - z_j\\rVert^2` over all ordered pairs ``i != j``, in O(N d).

    Uses :math:`\\sum_{i,j}\\lVert z_i-z_j\\rVert^2 = 2N\\sum_i\\lVert z_i\\rVert^2 - 2\\lVert\\sum_i z_i\\rVert^2`.
    """
    n = z.shape[0]
    if n < 2:
        raise ValueError("mean_squared_distance needs at least 2 points")
    z = z - z.mean(0, keepdim=True)  # the sum becomes 0: no cancellation between two large terms
    total = 2.0 * n * z.pow(2).sum()
    return (total / (n * (n - 1))).clamp_min(0.0)


def _doubling_chain(multipliers: Sequence[float]) -> bool:
    """True when the sorted multipliers double from one to the next (DAN's 2^k family)."""
    m = sorted(multipliers)
    return len(m) > 1 and all(abs(b - 2.0 * a) <= 1e-12 * b for a, b in itertools.pairwise(m))


def _multi_kernel(
    sq: torch.Tensor, base: torch.Tensor, multipliers: Sequence[float], kernel_sum: bool = False
) -> torch.Tensor:
    r"""Average (or sum) of the Gaussians :math:`\exp(-d^2 / (m\,\text{base}))` over the multipliers ``m``.

    For a doubling family one ``exp`` suffices: :math:`k_{\gamma/2} = k_\gamma^2`, so the narrower
    kernels are successive squares of the widest one.
    """
    base = base.detach().clamp_min(torch.finfo(torch.float32).tiny)
    if _doubling_chain(multipliers):
        kernel = torch.exp(-sq / (base * max(multipliers)))
        out = kernel
        for _ in range(len(multipliers) - 1):
            kernel = kernel * kernel
            out = out + kernel
        return out if kernel_sum else out / len(multipliers)
    out = torch.zeros_like(sq)
    for m in multipliers:
        out = out + torch.exp(-sq / (base * m))
    return out if kernel_sum else out / len(multipliers)


def _base_bandwidth(
    bandwidth: Bandwidth, pooled: torch.Tensor, distances: Sequence[torch.Tensor] | None
) -> torch.Tensor:
    if isinstance(bandwidth, (int, float)) and not isinstance(bandwidth, bool):
        if not bandwidth > 0:
            raise ValueError(f"a fixed bandwidth must be positive, got {bandwidth}")
        return torch.tensor(float(bandwidth), device=pooled.device)
    if bandwidth == "mean":
        return mean_squared_distance(pooled.detach())
    if bandwidth == "mean_all_pairs":
        n = pooled.shape[0]
        return mean_squared_distance(pooled.detach()) * (n - 1) / n
    if bandwidth == "median":
        if distances is None:
            raise ValueError("bandwidth='median' needs the distance matrix; use 'mean' or a number with chunk_size")
        return torch.cat([d.detach().reshape(-1) for d in distances]).median()
    raise ValueError(f"bandwidth must be 'mean', 'mean_all_pairs', 'median' or a positive number, got {bandwidth!r}")


def _check_pair(x: torch.Tensor, y: torch.Tensor, estimator: str) -> None:
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"MMD expects 2-D (batch, features) inputs, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"MMD inputs must have the same feature width, got {x.shape[1]} and {y.shape[1]}")
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(map(repr, ESTIMATORS))}, got {estimator!r}")
    need = 2
    if min(x.shape[0], y.shape[0]) < need:
        raise ValueError(
            f"the {estimator} MMD estimator needs at least {need} samples per domain, got {x.shape[0]} and {y.shape[0]}"
        )


def _centered(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both samples minus their pooled mean (a constant: distances are unchanged)."""
    center = torch.cat([x, y]).mean(0, keepdim=True).detach()
    return x - center, y - center


def _quadratic_kernels(
    x: torch.Tensor, y: torch.Tensor, multipliers: Sequence[float], bandwidth: Bandwidth, kernel_sum: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Kernel blocks K_xx, K_yy, K_xy from one set of distance matrices (all bandwidths share it)."""
    dxx, dyy, dxy = squared_distances(x, x), squared_distances(y, y), squared_distances(x, y)
    n, m = x.shape[0], y.shape[0]
    off_x = ~torch.eye(n, dtype=torch.bool, device=x.device)
    off_y = ~torch.eye(m, dtype=torch.bool, device=y.device)
    median_pool = None
    if bandwidth == "median":
        median_pool = [dxx[off_x], dyy[off_y], dxy, dxy]
    base = _base_bandwidth(bandwidth, torch.cat([x, y]), median_pool)
    return (
        _multi_kernel(dxx, base, multipliers, kernel_sum),
        _multi_kernel(dyy, base, multipliers, kernel_sum),
        _multi_kernel(dxy, base, multipliers, kernel_sum),
    )


def _linear_pairs(
    x: torch.Tensor, y: torch.Tensor, cyclic: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    if cyclic:  # pairs (i, i + 1 mod b): every example is used twice
        b = min(x.shape[0], y.shape[0])
        return x[:b], torch.roll(x[:b], -1, 0), y[:b], torch.roll(y[:b], -1, 0)
    half = min(x.shape[0], y.shape[0]) // 2  # disjoint pairs (2i, 2i + 1)
    return x[0 : 2 * half : 2], x[1 : 2 * half : 2], y[0 : 2 * half : 2], y[1 : 2 * half : 2]


def _linear_kernels(
    x: torch.Tensor,
    y: torch.Tensor,
    multipliers: Sequence[float],
    bandwidth: Bandwidth,
    kernel_sum: bool = False,
    cyclic: bool = False,
) -> tuple[torch.Tensor, ...]:
    """Kernel values k(x1,x2), k(y1,y2), k(x1,y2), k(x2,y1) on pairs of examples: O(n d)."""
    x1, x2, y1, y2 = _linear_pairs(x, y, cyclic)
    sq = [
        (x1 - x2).pow(2).sum(1),
        (y1 - y2).pow(2).sum(1),
        (x1 - y2).pow(2).sum(1),
        (x2 - y1).pow(2).sum(1),
    ]
    base = _base_bandwidth(bandwidth, torch.cat([x, y]), sq)
    return tuple(_multi_kernel(s, base, multipliers, kernel_sum) for s in sq)


def _combine_quadratic(kxx: torch.Tensor, kyy: torch.Tensor, kxy: torch.Tensor, estimator: str) -> torch.Tensor:
    if estimator == "biased":
        return kxx.mean() + kyy.mean() - 2.0 * kxy.mean()
    n, m = kxx.shape[0], kyy.shape[0]
    xx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    yy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return xx + yy - 2.0 * kxy.mean()


def _combine_linear(k11: torch.Tensor, k22: torch.Tensor, k12: torch.Tensor, k21: torch.Tensor) -> torch.Tensor:
    return (k11 + k22 - k12 - k21).mean()


def _chunked_block_sum(
    rows: torch.Tensor,
    cols: torch.Tensor,
    base: torch.Tensor,
    multipliers: Sequence[float],
    chunk_size: int,
    skip_diagonal: bool,
    kernel_sum: bool = False,
) -> torch.Tensor:
    """Sum of the kernel block K(rows, cols), ``chunk_size`` rows at a time.

    Under autograd each chunk is recomputed in the backward pass (activation checkpointing), so
    peak memory stays O(chunk_size * len(cols)) in both passes.
    """

    def chunk_sum(block: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        k = _multi_kernel(squared_distances(block, cols), base, multipliers, kernel_sum)
        if skip_diagonal:
            idx = torch.arange(block.shape[0], device=block.device)
            k = k.clone()
            k[idx, idx + int(start)] = 0.0
        return k.sum()

    total = rows.new_zeros(())
    for start in range(0, rows.shape[0], chunk_size):
        block = rows[start : start + chunk_size]
        start_t = torch.tensor(start)
        if torch.is_grad_enabled() and (block.requires_grad or cols.requires_grad):
            total = total + checkpoint(chunk_sum, block, start_t, use_reentrant=False)
        else:
            total = total + chunk_sum(block, start_t)
    return total


def mmd(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    multipliers: Sequence[float] = DAN_MULTIPLIERS,
    bandwidth: Bandwidth = "mean",
    estimator: Estimator = "unbiased",
    kernel_sum: bool = False,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Squared multi-kernel MMD between two samples.

    Long et al., "Learning Transferable Features with Deep Adaptation Networks", ICML 2015, Eq. 3
    (MK-MMD) with the estimators of Gretton et al., JMLR 2012 (see the module docstring).

    Parameters
    ----------
    x : Tensor (n, d), source features.
    y : Tensor (m, d), target features.
    multipliers : bandwidth multipliers of the Gaussian family.
    bandwidth : 'mean' (default; over pairs i != j, exact in O(N d)), 'mean_all_pairs' (self-pairs
        included, as TLlib), 'median' (of the pooled off-diagonal squared distances for the
        quadratic estimators, of the evaluated pairs for 'linear' and 'cyclic'), or a number.
    estimator : 'biased', 'unbiased' (default), 'linear' or 'cyclic' (see the module docstring).
    kernel_sum : sum the Gaussians of the family (TLlib, and DAN's :math:`\\sum_u \\beta_u k_u`
        with all :math:`\\beta_u = 1`) instead of averaging them (:math:`\\beta_u = 1/m`).
    chunk_size : for the quadratic estimators, compute the kernel sums this many rows at a time
        with bounded memory (also in the backward pass). Needs a 'mean' or fixed bandwidth.

    Returns
    -------
    Scalar tensor (float32).

    Examples
    --------
    >>> x = torch.randn(64, 8)
    >>> float(mmd(x, x, estimator="biased"))
    0.0
    >>> bool(mmd(x, x + 3.0) > 0.1)  # a shifted copy is far away
    True
    """
    _check_pair(x, y, estimator)
    with float32_region(x):
        x, y = _centered(x.float(), y.float())
        if estimator in ("linear", "cyclic"):
            kernels = _linear_kernels(x, y, multipliers, bandwidth, kernel_sum, cyclic=estimator == "cyclic")
            return _combine_linear(*kernels)
        if chunk_size is None:
            return _combine_quadratic(*_quadratic_kernels(x, y, multipliers, bandwidth, kernel_sum), estimator)
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
        base = _base_bandwidth(bandwidth, torch.cat([x, y]), None)
        n, m = x.shape[0], y.shape[0]
        unbiased = estimator == "unbiased"
        sxx = _chunked_block_sum(x, x, base, multipliers, chunk_size, unbiased, kernel_sum)
        syy = _chunked_block_sum(y, y, base, multipliers, chunk_size, unbiased, kernel_sum)
        sxy = _chunked_block_sum(x, y, base, multipliers, chunk_size, False, kernel_sum)
        nx, ny = (n * (n - 1), m * (m - 1)) if unbiased else (n * n, m * m)
        return sxx / nx + syy / ny - 2.0 * sxy / (n * m)


def jmmd(
    xs: Sequence[torch.Tensor],
    ys: Sequence[torch.Tensor],
    *,
    multipliers: Sequence[Sequence[float]] | None = None,
    bandwidth: Bandwidth = "mean",
    estimator: Estimator = "unbiased",
) -> torch.Tensor:
    """Joint MMD over several layers: the kernel is the product of per-layer kernels.

    Long et al., "Deep Transfer Learning with Joint Adaptation Networks", ICML 2017, Eq. 10
    (quadratic) and Eq. 11 (linear). Typical layers: bottleneck features and softmax outputs.

    Parameters
    ----------
    xs, ys : sequences of Tensors (n, d_l) and (m, d_l), one per layer, same length.
    multipliers : one sequence of bandwidth multipliers per layer (default: DAN's family each).
    bandwidth, estimator : as in :func:`mmd`; each layer's base bandwidth is computed separately.
    """
    if len(xs) != len(ys) or len(xs) == 0:
        raise ValueError(f"jmmd needs the same non-zero number of layers per domain, got {len(xs)} and {len(ys)}")
    if multipliers is None:
        multipliers = [DAN_MULTIPLIERS] * len(xs)
    if len(multipliers) != len(xs):
        raise ValueError(f"give one multiplier sequence per layer: {len(xs)} layers, {len(multipliers)} sequences")
    for x, y in zip(xs, ys):
        _check_pair(x, y, estimator)
    with float32_region(xs[0]):
        products = None
        for x, y, mult in zip(xs, ys, multipliers):
            x, y = _centered(x.float(), y.float())
            if estimator in ("linear", "cyclic"):
                kernels = _linear_kernels(x, y, mult, bandwidth, cyclic=estimator == "cyclic")
            else:
                kernels = _quadratic_kernels(x, y, mult, bandwidth)
            products = kernels if products is None else tuple(p * k for p, k in zip(products, kernels))
        assert products is not None
        if estimator in ("linear", "cyclic"):
            return _combine_linear(*products)
        return _combine_quadratic(*products, estimator)
