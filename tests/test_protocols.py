"""Presets are what they say: each one against a transcription of the formula or code it cites.

The transcriptions below are written from the cited sources (TLlib, thuml/Transfer-Learning-Library at
commit c4aa59e: ``tllib/alignment/dan.py``, ``tllib/modules/kernels.py``, ``tllib/modules/grl.py``,
``tllib/alignment/cdan.py``, ``tllib/modules/entropy.py``; the CDAN authors' code, thuml/CDAN at commit
c904cd3: ``pytorch/loss.py`` and ``pytorch/network.py``; Ganin et al., JMLR 2016, Eq. 18) in plain loops
and numpy, on fixed inputs, independently of the library's vectorized code. Each function names its lines.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from adapt import methods
from adapt.batch import Batch
from adapt.losses import domain_adversarial_loss, entropy_weights, mmd

# ---------------------------------------------------------------- transcriptions


def tllib_mkmmd(zs: np.ndarray, zt: np.ndarray, linear: bool) -> float:
    """Transcription of ``MultipleKernelMaximumMeanDiscrepancy`` (thuml/Transfer-Learning-Library at commit
    c4aa59e, ``tllib/alignment/dan.py``: ``forward`` lines 78-89, ``_update_index_matrix`` lines 92-119) with
    ``GaussianKernel(alpha=2 ** k)``, k = -3..1 (``tllib/modules/kernels.py``, ``forward`` lines 56-62; the
    kernels of ``examples/domain_adaptation/image_classification/dan.py`` lines 82-85)."""
    b = len(zs)
    feats = np.concatenate([zs, zt])
    d2 = ((feats[None, :, :] - feats[:, None, :]) ** 2).sum(-1)
    kernel = sum(np.exp(-d2 / (2 * (2.0**k) * d2.mean())) for k in range(-3, 2))
    index = np.zeros((2 * b, 2 * b))
    if linear:
        for i in range(b):
            s1, s2 = i, (i + 1) % b
            t1, t2 = s1 + b, s2 + b
            index[s1, s2] = 1 / b
            index[t1, t2] = 1 / b
            index[s1, t2] = -1 / b
            index[s2, t1] = -1 / b
    else:
        for i in range(b):
            for j in range(b):
                if i != j:
                    index[i, j] = index[i + b, j + b] = 1 / (b * (b - 1))
                index[i, j + b] = index[i + b, j] = -1 / (b * b)
    return float((kernel * index).sum() + 2 / (b - 1))


def warm_start(step: float, alpha: float, max_iters: float, lo: float = 0.0, hi: float = 1.0) -> float:
    """The coefficient of ``WarmStartGradientReverseLayer.forward`` (thuml/Transfer-Learning-Library at commit
    c4aa59e, ``tllib/modules/grl.py`` lines 71-74); the CDAN authors' ``calc_coeff`` (thuml/CDAN at commit
    c904cd3, ``pytorch/network.py`` lines 10-11) is the same expression."""
    return 2.0 * (hi - lo) / (1.0 + math.exp(-alpha * step / max_iters)) - (hi - lo) + lo


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


def ganin_domain_loss(d_prob_s: np.ndarray, d_prob_t: np.ndarray) -> float:
    """The domain term of Ganin et al., JMLR 2016, Eq. 18: a mean over each domain, summed."""
    return float(-np.log(d_prob_s).mean() - np.log(1 - d_prob_t).mean())


# ---------------------------------------------------------------- DAN


def _features(n=16, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(n, d, generator=g) * 1.3 + 0.4


@pytest.mark.parametrize("linear", [True, False])
def test_tllib_mkmmd_transcription_matches_mmd_options(linear):
    zs, zt = _features()
    expected = tllib_mkmmd(zs.double().numpy(), zt.double().numpy(), linear)
    ours = mmd(zs, zt, multipliers=(0.25, 0.5, 1, 2, 4), bandwidth="mean_all_pairs", kernel_sum=True,
               estimator="cyclic" if linear else "unbiased")  # fmt: skip
    b = len(zs)
    assert float(ours) + 2 / (b - 1) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_dan_tllib_preset_is_tllibs_linear_mkmmd_on_the_features():
    torch.manual_seed(0)
    model = methods.create("dan", nn.Linear(5, 6), num_classes=3, preset="tllib")
    xs, xt = torch.randn(16, 5), torch.randn(16, 5) + 0.5
    model.build(xs)
    terms = model.loss(Batch(xs, torch.randint(0, 3, (16,)), xt), 0.3)
    with torch.no_grad():
        fs, ft = model.embed(xs).double().numpy(), model.embed(xt).double().numpy()
    expected = tllib_mkmmd(fs, ft, linear=True) - 2 / (16 - 1)
    assert float(terms["mmd"].detach()) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_dan_default_averages_kernels_so_tllib_sum_is_five_times_larger_at_equal_bandwidth():
    zs, zt = _features()
    opts = dict(multipliers=(0.25, 0.5, 1, 2, 4), bandwidth="mean_all_pairs", estimator="unbiased")
    assert float(mmd(zs, zt, kernel_sum=True, **opts)) == pytest.approx(5 * float(mmd(zs, zt, **opts)), rel=1e-5)


# ---------------------------------------------------------------- gradient-reversal schedules


@pytest.mark.parametrize(("preset", "alpha", "max_iters"), [("tllib", 1.0, 1000), ("official", 10.0, 10000)])
def test_warm_start_presets_follow_the_cited_schedule(preset, alpha, max_iters):
    """TLlib's DANN and CDAN losses: alpha 1, max_iters 1000 (thuml/Transfer-Learning-Library at c4aa59e,
    ``tllib/alignment/dann.py`` line 62, ``tllib/alignment/cdan.py`` line 86); the CDAN authors'
    ``AdversarialNetwork``: alpha 10, max_iter 10000 (thuml/CDAN at c904cd3, ``pytorch/network.py`` lines 377-386)."""
    name = "dann" if preset == "tllib" else "cdan"
    model = methods.create(name, nn.Linear(4, 4), num_classes=2, preset=preset)
    for step in (0, 1, 500, 1000, 3000, 20000):
        # progress is irrelevant for a warm start: the same step at any run length gives one value
        for progress in (0.1, 0.9):
            assert model.grl_coefficient(progress, step) == pytest.approx(warm_start(step, alpha, max_iters))
    if preset == "tllib":
        tllib_cdan = methods.create("cdan", nn.Linear(4, 4), num_classes=2, preset="tllib")
        assert tllib_cdan.grl_coefficient(0.5, 1234) == pytest.approx(warm_start(1234, 1.0, 1000))


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


def test_dann_paper_preset_ramps_with_progress():
    model = methods.create("dann", nn.Linear(4, 4), num_classes=2, preset="paper")
    for p in (0.0, 0.1, 0.5, 1.0):
        assert model.grl_coefficient(p, step=7) == pytest.approx(2 / (1 + math.exp(-10 * p)) - 1)


def test_the_scheduled_coefficient_is_the_one_that_scales_the_reversed_gradient():
    torch.manual_seed(0)
    model = methods.create("dann", nn.Linear(4, 3), num_classes=2, preset="tllib", discriminator_hidden=(5,),
                           discriminator_batch_norm=False)  # fmt: skip
    xs, xt, ys = torch.randn(8, 4), torch.randn(8, 4), torch.randint(0, 2, (8,))
    model.build(xs)
    step = 2500
    model.zero_grad()
    model.loss(Batch(xs, ys, xt, step=step), 0.0)["domain"].backward()
    reversed_grad = model.backbone.weight.grad.clone()
    model.zero_grad()
    features = model.embed(torch.cat([xs, xt]))
    logits = model.discriminator(features)
    domain_adversarial_loss(logits[:8], logits[8:]).backward()
    plain_grad = model.backbone.weight.grad.clone()
    torch.testing.assert_close(reversed_grad, -warm_start(step, 1.0, 1000) * plain_grad)


# ---------------------------------------------------------------- domain-loss scale


def test_dann_paper_preset_sums_the_domain_losses_as_eq_18_and_tllib_averages_them():
    """TLlib's ``DomainAdversarialLoss.forward`` takes half the sum of the two domains' mean BCE
    (thuml/Transfer-Learning-Library at commit c4aa59e, ``tllib/alignment/dann.py`` lines 85-87)."""
    torch.manual_seed(0)
    xs, xt, ys = torch.randn(10, 4), torch.randn(10, 4) + 1, torch.randint(0, 2, (10,))
    values = {}
    for preset in ("paper", "tllib"):
        torch.manual_seed(1)
        model = methods.create("dann", nn.Linear(4, 3), num_classes=2, preset=preset, discriminator_hidden=(5,),
                               discriminator_batch_norm=False)  # fmt: skip
        model.build(xs)
        term = float(model.loss(Batch(xs, ys, xt), 0.5)["domain"].detach())
        with torch.no_grad():
            probs = torch.sigmoid(model.discriminator(model.embed(torch.cat([xs, xt])))).double().numpy()
        values[preset] = (term, ganin_domain_loss(probs[:10], probs[10:]))
    assert values["paper"][0] == pytest.approx(values["paper"][1], rel=1e-5)
    assert values["tllib"][0] == pytest.approx(0.5 * values["tllib"][1], rel=1e-5)


def test_unequal_batches_weigh_each_domain_equally():
    s, t = torch.tensor([2.0, -1.0]), torch.tensor([0.5])
    expected = 0.5 * (-torch.log(torch.sigmoid(s)).mean() - torch.log(1 - torch.sigmoid(t)).mean())
    torch.testing.assert_close(domain_adversarial_loss(s, t), expected)
    torch.testing.assert_close(domain_adversarial_loss(s, t, reduction="sum"), 2 * expected)


# ---------------------------------------------------------------- CDAN+E weights and map


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


def test_presets_build_the_cited_discriminators():
    """The CDAN authors' ``AdversarialNetwork`` (thuml/CDAN at commit c904cd3, ``pytorch/network.py`` lines
    365-397; width 1024, ``pytorch/train_image.py`` line 118; its Sigmoid is in the loss here) and TLlib's
    ``DomainDiscriminator`` with BatchNorm (thuml/Transfer-Learning-Library at commit c4aa59e,
    ``tllib/modules/domain_discriminator.py`` lines 37-46; width 1024, ``examples/.../dann.py`` line 76)."""
    official = methods.create("cdan", nn.Linear(4, 4), num_classes=2, preset="official")
    official.build(torch.randn(2, 4))
    layers = [type(m).__name__ for m in official.discriminator.net]
    assert layers == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert [m.out_features for m in official.discriminator.net if isinstance(m, nn.Linear)] == [1024, 1024, 1]
    tllib = methods.create("dann", nn.Linear(4, 4), num_classes=2, preset="tllib")
    tllib.build(torch.randn(2, 4))
    assert [type(m).__name__ for m in tllib.discriminator.net][:3] == ["Linear", "BatchNorm1d", "ReLU"]


def test_dann_default_discriminator_is_the_cdan_authors_discriminator():
    """DANN's docstring: its default discriminator is that of the CDAN authors' code (the official preset)."""
    default = methods.create("dann", nn.Linear(4, 4), num_classes=2)
    official = methods.create("cdan", nn.Linear(4, 4), num_classes=2, preset="official")
    for model in (default, official):
        model.build(torch.randn(2, 4))

    def layers(model):  # the input width differs (CDAN sees features x predictions)
        return [(type(m).__name__, getattr(m, "out_features", None), getattr(m, "p", None))
                for m in model.discriminator.net]  # fmt: skip

    assert layers(default) == layers(official)
    assert [p for _, _, p in layers(default) if p is not None] == [0.5, 0.5]
    # CDAN's own default keeps the BatchNorm discriminator sized to the features
    cdan = methods.create("cdan", nn.Linear(4, 4), num_classes=2)
    assert cdan.discriminator_batch_norm and cdan.discriminator_hidden is None


def test_unknown_preset_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"has no preset 'paper'.*tllib"):
        methods.create("dan", nn.Linear(2, 2), num_classes=2, preset="paper")
    with pytest.raises(ValueError, match="presets: none"):
        methods.create("mcc", nn.Linear(2, 2), num_classes=2, preset="tllib")


# ---------------------------------------------------------------- suites that cite TLlib


# Transcribed from TLlib's scripts (thuml/Transfer-Learning-Library at commit c4aa59e, under
# examples/domain_adaptation/image_classification/): the dann.py and cdan.py defaults (bottleneck 256, batch 32,
# lr 0.01, lr-gamma 0.001, lr-decay 0.75, momentum 0.9, weight decay 1e-3, 20 epochs x 1000 iterations: dann.py
# lines 228-253, cdan.py lines 239-268; Nesterov SGD and the inverse schedule: dann.py lines 79-81, cdan.py
# lines 85-86; the backbone at 0.1x: tllib/modules/classifier.py line 93) and the dann.sh / cdan.sh command
# lines (Office-31, lines 3-8: --epochs 20; Office-Home, lines 11-22, and VisDA-2017, lines 25-26: --epochs 30;
# DomainNet, dann.sh lines 29-40 and cdan.sh lines 30-41: --bottleneck-dim 1024 --epochs 30 -i 2500, and cdan.sh
# adds -r -rd 51200): (epochs x iterations per epoch, bottleneck width, CDAN options). DAN and the other methods
# share these settings; TLlib's dan.py / dan.sh and mdd.py / mdd.sh use others (see the suites' headers).
TLLIB_SCRIPTS = {
    "office31": (20 * 1000, 256, {}),
    "officehome": (30 * 1000, 256, {}),
    "visda": (30 * 1000, 256, {}),
    "domainnet": (30 * 2500, 1024, {"randomized": True, "randomized_dim": 51200}),
}


@pytest.mark.parametrize("name", sorted(TLLIB_SCRIPTS))
def test_suites_citing_tllib_use_its_script_settings_and_presets(name):
    from adapt.bench import load_suite

    steps, bottleneck, cdan_options = TLLIB_SCRIPTS[name]
    suite = load_suite(name)
    assert suite.train == {**suite.train, "steps": steps, "batch_size": 32, "lr": 0.01, "nesterov": True,
                           "weight_decay": 0.001, "backbone_lr_mult": 0.1, "lr_schedule": "inverse"}  # fmt: skip
    assert suite.train.get("momentum", 0.9) == 0.9 and suite.train.get("optimizer", "sgd") == "sgd"
    assert all(t.model == {"bottleneck_dim": bottleneck} for t in suite.tasks)
    for method in ("dann", "dan"):
        assert suite.methods[method] == {"preset": "tllib"}
    assert suite.methods["cdan"] == {"preset": "tllib", **cdan_options}


# The source-free suites adapt with each method's authors' script for the dataset (see the methods'
# docstrings for the repository, commit and lines): (method -> lr, weight decay, lr schedule, K).
SOURCE_FREE_SCRIPTS = {
    "office31-source-free": {"shot": (1e-2, 1e-3, "dann", None), "nrc": (1e-3, 1e-3, "dann", 2),
                             "aad": (1e-3, 5e-4, "constant", 3)},
    "officehome-source-free": {"shot": (1e-2, 1e-3, "dann", None), "nrc": (1e-3, 5e-4, "constant", 3),
                               "aad": (1e-3, 5e-4, "constant", 3)},
    "source-free": {"shot": (1e-2, 1e-3, "dann", None), "nrc": (1e-3, 1e-3, "dann", 5),
                    "aad": (1e-3, 1e-3, "dann", 5)},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SOURCE_FREE_SCRIPTS))
def test_source_free_suites_adapt_with_the_authors_optimizers(name):
    from adapt.bench import load_suite
    from adapt.bench.runner import expand

    runs = {r.method: r.resolved() for r in expand(load_suite(name)) if r.seed == 0}
    for method, (lr, decay, schedule, k) in SOURCE_FREE_SCRIPTS[name].items():
        train = runs[method]["train"]
        assert (train["lr"], train["weight_decay"], train["lr_schedule"]) == (lr, decay, schedule), method
        assert (train["backbone_lr_mult"], train["momentum"], train["nesterov"]) == (0.1, 0.9, True), method
        assert runs[method]["hparams"].get("k") == k, method
    source = runs["shot"]["source_train"]["train"]  # SHOT's image_source.py: weight decay 1e-3, Nesterov
    if name != "source-free":
        assert (source["weight_decay"], source["nesterov"], source["backbone_lr_mult"]) == (1e-3, True, 0.1)


def test_every_shipped_suite_says_whether_defaults_were_tuned_on_it():
    from adapt.bench.suite import available_suites, load_suite

    for name, path in available_suites().items():
        assert "defaults_tuned" in path.read_text(), name
        suite = load_suite(name)
        assert suite.defaults_tuned == (name in {"quick", "quick-search", "catalogue", "backends", "zoo-tune"}), name
    assert load_suite("zoo-confirm").split == "confirmation" and not load_suite("zoo-confirm").defaults_tuned
