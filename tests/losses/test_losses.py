"""Losses against closed forms (no reference library needed; the pytorch-adapt comparisons are in
tests/reference/test_losses_vs_pytorch_adapt.py)."""

import math

import numpy as np
import pytest
import torch
from helpers import assert_same_value_and_grad

from adapt import losses
from adapt.losses import entropy, mcc_loss, mmd


# ---------------------------------------------------------------- gradient reversal
def test_gradient_reversal_identity_forward_and_scaled_negative_backward():
    x = torch.randn(4, 3, requires_grad=True)
    y = losses.gradient_reversal(x, 0.7)
    assert torch.equal(y, x)
    (y * torch.arange(3.0)).sum().backward()
    torch.testing.assert_close(x.grad, -0.7 * torch.arange(3.0).expand(4, 3))


# ---------------------------------------------------------------- domain adversarial
def test_domain_adversarial_loss_closed_form():
    s, t = torch.tensor([2.0, -1.0]), torch.tensor([0.5])
    sig = torch.sigmoid
    mean_of_domain_means = -(torch.log(sig(s)).mean() + torch.log(1 - sig(t)).mean()) / 2
    torch.testing.assert_close(losses.domain_adversarial_loss(s, t), mean_of_domain_means)
    torch.testing.assert_close(losses.domain_adversarial_loss(s, t, reduction="sum"), 2 * mean_of_domain_means)
    # perfectly confused discriminator: log 2
    assert math.isclose(
        float(losses.domain_adversarial_loss(torch.zeros(4), torch.zeros(4))), math.log(2), rel_tol=1e-6
    )
    with pytest.raises(ValueError, match="reduction"):
        losses.domain_adversarial_loss(s, t, reduction="max")


def test_domain_adversarial_loss_weighted_means():
    s, t = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 0.1])
    ws, wt = torch.tensor([1.0, 3.0]), torch.tensor([2.0, 0.5])
    ls, lt = -torch.log(torch.sigmoid(s)), -torch.log(1 - torch.sigmoid(t))
    per_domain = 0.5 * ((ws * ls).sum() / ws.sum() + (wt * lt).sum() / wt.sum())
    torch.testing.assert_close(losses.domain_adversarial_loss(s, t, ws, wt), per_domain)
    joint = ((ws * ls).sum() + (wt * lt).sum()) / (ws.sum() + wt.sum())
    torch.testing.assert_close(losses.domain_adversarial_loss(s, t, ws, wt, weight_normalization="joint"), joint)
    with pytest.raises(ValueError, match="both"):
        losses.domain_adversarial_loss(s, t, ws, None)


# ---------------------------------------------------------------- MMD
def _numpy_mmd(x, y, gammas, estimator):
    def k(a, b):
        d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return np.mean([np.exp(-d / g) for g in gammas], axis=0)

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    n, m = len(x), len(y)
    if estimator == "biased":
        return kxx.mean() + kyy.mean() - 2 * kxy.mean()
    return (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_mmd_quadratic_closed_form(estimator):
    x, y = torch.randn(7, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64) + 0.5
    got = losses.mmd(x, y, multipliers=(0.5, 1.0, 2.0), bandwidth=2.0, estimator=estimator)
    expected = _numpy_mmd(x.numpy(), y.numpy(), [1.0, 2.0, 4.0], estimator)
    assert got.dtype == torch.float32
    assert math.isclose(float(got), expected, rel_tol=1e-5, abs_tol=1e-6)


def test_mmd_of_sample_with_itself():
    x = torch.randn(20, 4)
    assert abs(float(losses.mmd(x, x, estimator="biased"))) < 1e-6
    assert abs(float(losses.mmd(x, x, estimator="linear"))) < 1e-6
    # the unbiased estimate of MMD(P, P) is centred at 0 and the biased one is >= 0
    x2 = torch.randn(20, 4)
    assert float(losses.mmd(x, x2, estimator="biased")) >= 0


def test_mean_bandwidth_closed_form_is_mean_pairwise_distance():
    z = torch.randn(9, 3, dtype=torch.float64)
    d = ((z[:, None] - z[None]) ** 2).sum(-1)
    expected = d.sum() / (9 * 8)
    torch.testing.assert_close(losses.mean_squared_distance(z), expected)


def test_median_bandwidth_uses_pooled_off_diagonal_distances():
    x, y = torch.randn(6, 2), torch.randn(5, 2)
    z = torch.cat([x, y])
    d = ((z[:, None] - z[None]) ** 2).sum(-1)
    off = d[~torch.eye(11, dtype=torch.bool)]
    med = float(off.median())
    # torch.median takes the lower middle value; the pooled list has every pair twice.
    got = losses.mmd(x, y, multipliers=(1.0,), bandwidth="median", estimator="biased")
    expected = losses.mmd(x, y, multipliers=(1.0,), bandwidth=med, estimator="biased")
    torch.testing.assert_close(got, expected)


def test_linear_estimator_agrees_with_quadratic_in_expectation():
    torch.manual_seed(1)
    vals_lin, vals_quad = [], []
    for _ in range(400):
        x, y = torch.randn(64, 2), torch.randn(64, 2) * 1.3 + 0.4
        vals_lin.append(float(losses.mmd(x, y, bandwidth=2.0, estimator="linear")))
        vals_quad.append(float(losses.mmd(x, y, bandwidth=2.0, estimator="unbiased")))
    lin, quad = np.array(vals_lin), np.array(vals_quad)
    # both are unbiased estimates of the same MMD^2: their means agree within sampling error
    stderr = lin.std() / math.sqrt(len(lin))
    assert abs(lin.mean() - quad.mean()) < 4 * stderr, (lin.mean(), quad.mean(), stderr)
    assert quad.mean() > 5 * stderr  # and the shift is actually detected


@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_chunked_quadratic_equals_full(estimator):
    x, y = torch.randn(37, 5), torch.randn(29, 5) + 0.3
    full = lambda a, b: losses.mmd(a, b, estimator=estimator)  # noqa: E731
    chunked = lambda a, b: losses.mmd(a, b, estimator=estimator, chunk_size=8)  # noqa: E731
    assert_same_value_and_grad(chunked, full, x, y, atol=1e-6)


@pytest.mark.bad_input
def test_chunked_rejects_median_bandwidth():
    with pytest.raises(ValueError, match="median"):
        losses.mmd(torch.randn(8, 2), torch.randn(8, 2), bandwidth="median", chunk_size=4)


def test_jmmd_of_one_layer_is_mmd():
    x, y = torch.randn(10, 3), torch.randn(10, 3)
    torch.testing.assert_close(losses.jmmd([x], [y]), losses.mmd(x, y))


def test_mmd_is_float32_under_autocast_and_accepts_float64():
    x, y = torch.randn(8, 4), torch.randn(8, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        xb = torch.nn.Linear(4, 4)(x)
        assert xb.dtype == torch.bfloat16
        out = losses.mmd(xb, xb + 1)
        c = losses.coral_loss(xb, xb * 2)
    assert out.dtype == torch.float32 and c.dtype == torch.float32
    assert torch.isfinite(losses.mmd(x.double(), y.double()))


@pytest.mark.bad_input
def test_mmd_input_errors():
    with pytest.raises(ValueError, match="same feature width"):
        losses.mmd(torch.randn(4, 2), torch.randn(4, 3))
    with pytest.raises(ValueError, match="at least 2 samples"):
        losses.mmd(torch.randn(1, 2), torch.randn(4, 2))
    with pytest.raises(ValueError, match="estimator"):
        losses.mmd(torch.randn(4, 2), torch.randn(4, 2), estimator="cubic")


# ---------------------------------------------------------------- CORAL
def test_coral_closed_form_numpy():
    x, y = torch.randn(10, 4, dtype=torch.float64), torch.randn(12, 4, dtype=torch.float64) * 2
    cs, ct = np.cov(x.numpy(), rowvar=False), np.cov(y.numpy(), rowvar=False)
    expected = ((cs - ct) ** 2).sum() / (4 * 16)
    assert math.isclose(float(losses.coral_loss(x, y)), expected, rel_tol=1e-5)
    torch.testing.assert_close(losses.covariance(x), torch.from_numpy(cs))


def test_scale_free_coral_closed_form_numpy():
    x, y = torch.randn(10, 4, dtype=torch.float64), torch.randn(12, 4, dtype=torch.float64) * 2
    cs, ct = np.cov(x.numpy(), rowvar=False), np.cov(y.numpy(), rowvar=False)
    mean_variance = (np.trace(cs) + np.trace(ct)) / (2 * 4)
    expected = ((cs - ct) ** 2).sum() / (4 * 4**1.5 * mean_variance**2)
    assert math.isclose(float(losses.scale_free_coral_loss(x, y)), expected, rel_tol=1e-5)


def test_scale_free_coral_is_invariant_to_the_feature_scale():
    x, y = torch.randn(32, 8), torch.randn(32, 8) * torch.linspace(0.5, 2, 8)
    for scale in (1e-3, 10.0, 1e3):
        torch.testing.assert_close(
            losses.scale_free_coral_loss(scale * x, scale * y), losses.scale_free_coral_loss(x, y)
        )
    assert float(losses.coral_loss(10 * x, 10 * y)) > 1e3 * float(losses.coral_loss(x, y))  # the paper's: s^4


def _coral_pull(loss, width: int) -> float:
    """The term's pull next to the cross-entropy's (gradient norms w.r.t. the features) on the features
    of a ConvNet at initialization, UCI digits -> the MNIST-M recipe, 64 + 64 (benchmarks/study_term_scale.py)."""
    from adapt.data.synthetic import optdigits_shift
    from adapt.models import ConvNet

    xs, ys, xt, _ = optdigits_shift(0)
    torch.manual_seed(0)
    net, head = ConvNet(3, out_features=width), torch.nn.Linear(width, 10)
    with torch.no_grad():
        fs, ft = net(torch.from_numpy(xs[:64])), net(torch.from_numpy(xt[:64]))
    fs, ft = fs.requires_grad_(), ft.requires_grad_()
    (ce,) = torch.autograd.grad(torch.nn.functional.cross_entropy(head(fs), torch.from_numpy(ys[:64])), fs)
    gs, gt = torch.autograd.grad(loss(fs, ft), [fs, ft])
    return float(torch.cat([gs, gt]).norm() / ce.norm())


def test_scale_free_coral_pulls_alike_at_every_width():
    """On real features its pull moves less than 2x from 16 to 1024 features; the paper's falls over 10x
    (without the sqrt(d), the scale-free form's would fall about 7x)."""
    free = [_coral_pull(losses.scale_free_coral_loss, w) for w in (16, 1024)]
    paper = [_coral_pull(losses.coral_loss, w) for w in (16, 1024)]
    assert max(free) / min(free) < 2, free
    assert paper[0] / paper[1] > 10, paper


@pytest.mark.bad_input
def test_coral_errors():
    with pytest.raises(ValueError, match="at least 2 rows"):
        losses.coral_loss(torch.randn(1, 3), torch.randn(4, 3))
    with pytest.raises(ValueError, match="same width"):
        losses.coral_loss(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="same width"):
        losses.scale_free_coral_loss(torch.randn(4, 3), torch.randn(4, 2))


# ---------------------------------------------------------------- entropy family
def test_entropy_closed_form():
    assert math.isclose(float(losses.entropy(torch.zeros(3, 5))), math.log(5), rel_tol=1e-6)
    assert float(losses.entropy(torch.tensor([[100.0, 0.0]]))) < 1e-6
    per = losses.entropy(torch.randn(4, 3), reduction="none")
    assert per.shape == (4,)


def test_information_maximization_is_entropy_plus_diversity():
    logits = torch.randn(8, 4)
    torch.testing.assert_close(
        losses.information_maximization_loss(logits, 0.5), losses.entropy(logits) + 0.5 * losses.diversity_loss(logits)
    )
    # uniform marginal of confident predictions: IM reaches its minimum -log C
    confident = torch.eye(4) * 50
    assert math.isclose(float(losses.information_maximization_loss(confident)), -math.log(4), abs_tol=1e-5)


def test_bnm_closed_form_on_one_hot():
    # one-hot predictions covering k classes: nuclear norm = sum of sqrt(count per class)
    logits = torch.tensor([[50.0, 0, 0], [50.0, 0, 0], [0, 50.0, 0], [0, 0, 50.0]])
    expected = -(math.sqrt(2) + 1 + 1) / 4
    assert math.isclose(float(losses.bnm_loss(logits)), expected, rel_tol=1e-5)


def test_mcc_closed_form():
    # confident, one example per class: no confusion at all
    assert float(losses.mcc_loss(torch.eye(3) * 100, temperature=1.0)) < 1e-6
    # identical uniform predictions: every normalized row is uniform, confusion (C-1)/C per row
    assert math.isclose(float(losses.mcc_loss(torch.zeros(4, 3))), 2 / 3, rel_tol=1e-6)


# ---------------------------------------------------------------- CDAN maps
def test_multilinear_map_is_outer_product():
    f, g = torch.randn(3, 4), torch.softmax(torch.randn(3, 2), 1)
    out = losses.multilinear_map(f, g)
    assert out.shape == (3, 8)
    for i in range(3):
        torch.testing.assert_close(out[i], torch.outer(g[i], f[i]).reshape(-1))


def test_randomized_map_preserves_inner_products_in_expectation():
    torch.manual_seed(0)
    f, g = torch.randn(2, 6), torch.softmax(torch.randn(2, 3), 1)
    exact = losses.multilinear_map(f, g)
    target = float(exact[0] @ exact[1])
    rf, rg = torch.randn(6, 200000), torch.randn(3, 200000)
    approx = losses.randomized_multilinear_map(f, g, rf, rg)
    assert math.isclose(float(approx[0] @ approx[1]), target, abs_tol=0.05 * (abs(target) + exact.norm(dim=1).prod()))


def test_entropy_weights_closed_form_and_detached():
    logits = torch.zeros(2, 4, requires_grad=True)
    w = losses.entropy_weights(logits)
    torch.testing.assert_close(w, torch.full((2,), 1 + 1 / 4))
    assert not w.requires_grad


@pytest.mark.parametrize("multipliers", [(0.125, 0.25, 0.5, 1.0, 2.0), (1.0, 3.0), (2.0,)])
def test_multi_kernel_families_match_closed_form(multipliers):
    # the doubling family takes the one-exp squaring path; others evaluate every Gaussian
    x, y = torch.randn(9, 3, dtype=torch.float64), torch.randn(7, 3, dtype=torch.float64) * 1.5
    got = losses.mmd(x, y, multipliers=multipliers, bandwidth=1.7, estimator="unbiased")
    expected = _numpy_mmd(x.numpy(), y.numpy(), [1.7 * m for m in multipliers], "unbiased")
    assert math.isclose(float(got), expected, rel_tol=1e-5, abs_tol=1e-6)


def test_entropy_gradient_is_finite_with_minus_inf_logits():
    logits = torch.tensor([[0.0, 1.0, -math.inf], [2.0, -math.inf, 1.0]], requires_grad=True)
    entropy(logits).backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad[0, 2] == 0 and logits.grad[1, 1] == 0


def test_mcc_is_finite_when_a_class_probability_underflows():
    logits = torch.tensor([[0.0, 1.0, -1e4], [2.0, 0.0, -1e4], [1.0, 1.0, -1e4]], requires_grad=True)
    loss = mcc_loss(logits)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_mmd_keeps_its_precision_when_features_share_a_large_offset():
    g = torch.Generator().manual_seed(0)
    x = 1000 + 0.01 * torch.randn(64, 8, generator=g, dtype=torch.float64)
    y = 1000 + 0.01 * torch.randn(64, 8, generator=g, dtype=torch.float64) + 0.01
    reference = float(mmd(x - 1000, y - 1000))  # the same samples without the offset
    assert reference > 0.01
    assert float(mmd(x.float(), y.float())) == pytest.approx(reference, rel=1e-3)
    assert float(mmd(x.float(), y.float(), estimator="linear")) == pytest.approx(
        float(mmd(x - 1000, y - 1000, estimator="linear")), rel=1e-3
    )
