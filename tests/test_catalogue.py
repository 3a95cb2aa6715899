"""The catalogue: the losses of the methods added after the first six (closed forms and transcriptions
of the cited code), composition by name, and each multi-stage or statistics-based method's mechanics."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adapt import losses, methods
from adapt.batch import Batch
from adapt.bench import load_suite
from adapt.bench.report.figures import FAMILY_ORDER
from adapt.bench.report.ranks import friedman_nemenyi, friedman_statistics, nemenyi_critical_difference
from adapt.bench.runner import run_sweep
from adapt.models import MLP
from adapt.testing import default_backbone, toy_problem
from adapt.train.data import InputError
from adapt.train.schedules import warm_start_grl_coefficient

# ---------------------------------------------------------------- losses: closed forms


def test_batch_spectral_penalty_closed_form():
    features = torch.diag(torch.tensor([3.0, 2.0, 0.5]))  # singular values 3, 2, 0.5
    assert float(losses.batch_spectral_penalty(features)) == pytest.approx(9.0)
    assert float(losses.batch_spectral_penalty(features, k=2)) == pytest.approx(13.0)
    with pytest.raises(ValueError, match="k must be at least 1"):
        losses.batch_spectral_penalty(features, k=0)
    with pytest.raises(ValueError, match=r"expects \(batch, features\)"):
        losses.batch_spectral_penalty(torch.ones(3))


def test_adaptive_feature_norm_value_is_step_squared_and_gradient_grows_norms():
    features = torch.randn(8, 4, requires_grad=True)
    value = losses.adaptive_feature_norm_loss(features, step_size=0.5)
    assert value.item() == pytest.approx(0.25)
    value.backward()
    # gradient descent moves every feature along itself, away from zero: norms grow
    radial = (features.grad * features.detach()).sum(dim=1)
    assert bool((radial < 0).all())


def test_classifier_discrepancy_closed_form():
    a = torch.tensor([[0.0, 0.0]])  # softmax (0.5, 0.5)
    b = torch.tensor([[math.log(3.0), 0.0]])  # softmax (0.75, 0.25)
    assert float(losses.classifier_discrepancy(a, b)) == pytest.approx(0.25)
    assert float(losses.classifier_discrepancy(b, b)) == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        losses.classifier_discrepancy(torch.zeros(2, 3), torch.zeros(2, 4))


def test_domain_confusion_is_log_two_at_a_uniform_classifier():
    assert float(losses.domain_confusion_loss(torch.zeros(5))) == pytest.approx(math.log(2))
    assert float(losses.domain_confusion_loss(torch.full((5,), 4.0))) > math.log(2)


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


# ---------------------------------------------------------------- methods: what each loss is


def _built(name, **hparams):
    d = toy_problem()
    torch.manual_seed(0)
    model = methods.create(name, default_backbone(), 3, **hparams)
    model.build(d["xs"][:2])
    model.train()
    return model, Batch(d["xs"], d["ys"], d["xt"], step=1000)


def test_jan_term_is_jmmd_of_features_and_softmax():
    model, batch = _built("jan")
    terms = model.loss(batch, 0.5)
    out = model.forward_domains(batch)
    expected = losses.jmmd(
        [out.source_features, out.source_logits.softmax(1)],
        [out.target_features, out.target_logits.softmax(1)],
        multipliers=[losses.DAN_MULTIPLIERS, (1.0,)],
    )
    torch.testing.assert_close(terms["jmmd"], expected)


@pytest.mark.parametrize(
    ("name", "function"),
    [("bnm", losses.bnm_loss), ("minent", losses.entropy), ("im", losses.information_maximization_loss)],
)
def test_prediction_regularizer_methods_weigh_their_loss_on_the_target(name, function):
    model, batch = _built(name, trade_off=0.3)
    terms = model.loss(batch, 0.5)
    torch.testing.assert_close(terms[name], 0.3 * function(model.forward_domains(batch).target_logits))


def test_feature_regularizer_methods_sum_both_domains():
    model, batch = _built("bsp")
    out = model.forward_domains(batch)
    expected = 1e-4 * (
        losses.batch_spectral_penalty(out.source_features) + losses.batch_spectral_penalty(out.target_features)
    )
    torch.testing.assert_close(model.loss(batch, 0.5)["bsp"], expected)
    model, batch = _built("afn")
    assert model.loss(batch, 0.5)["afn"].item() == pytest.approx(0.05 * 2 * 1.0**2)  # Delta r = 1 on each domain


def test_paper_defaults():
    assert methods.hyperparameters("bsp")["trade_off"] == 1e-4  # Chen et al. 2019
    assert methods.hyperparameters("afn")["trade_off"] == 0.05  # Xu et al. 2019
    assert methods.hyperparameters("mdd")["margin"] == 4.0  # Zhang et al. 2019, Office-31
    assert methods.hyperparameters("mcd")["generator_steps"] == 4  # Saito et al. 2018, digits


def test_mcd_stages_train_their_modules():
    model, batch = _built("mcd", generator_steps=2)
    from adapt.train.engine import Stepper, TrainConfig, make_optimizer

    stepper = Stepper(make_optimizer(model.param_groups(), TrainConfig(lr=0.1)), torch.device("cpu"), None, None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    terms = model.update(batch, 0.5, stepper)
    after = model.state_dict()
    assert {"classification", "discrepancy", "generator_discrepancy"} <= set(terms)
    for key in ("classifier.weight", "second_classifier.weight", "backbone.0.weight"):
        assert not torch.equal(before[key], after[key]), key
    # predictions average the two classifiers
    x = batch.target_x
    features = model.embed(x)
    torch.testing.assert_close(model(x), (model.classifier(features) + model.second_classifier(features)) / 2)


def test_mcd_discrepancy_stage_raises_the_discrepancy_and_the_generator_stage_lowers_it():
    model, batch = _built("mcd")
    from adapt.train.engine import Stepper, TrainConfig, make_optimizer

    stepper = Stepper(
        make_optimizer(model.param_groups(), TrainConfig(lr=0.05, momentum=0.0)), torch.device("cpu"), None, None
    )

    def discrepancy():
        with torch.no_grad():
            return float(model._discrepancy(model.embed(batch.target_x)))

    start = discrepancy()
    for _ in range(5):  # stage B alone
        stepper.step(sum(model.loss(batch, 0.5).values()), only=[model.classifier, model.second_classifier])
    raised = discrepancy()
    for _ in range(5):  # stage C alone
        stepper.step(model._discrepancy(model.embed(batch.target_x)), only=[model.backbone, model.bottleneck])
    assert raised > start and discrepancy() < raised


def test_adabn_predicts_with_target_statistics():
    d = toy_problem()
    xs, ys = d["xs"], d["ys"]
    xt = d["xt"] + 10.0  # a large offset the source statistics know nothing about
    torch.manual_seed(0)
    model = methods.AdaBN(nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU()), 3)
    model.fit((xs, ys), xt, steps=60, batch_size=16, device="cpu", verbose=False)
    norm = model.backbone[1]
    with torch.no_grad():
        target_mean = model.backbone[0](xt).mean(0)
        source_mean = model.backbone[0](xs).mean(0)
    assert torch.allclose(norm.running_mean, target_mean, atol=0.3 * float((target_mean - source_mean).abs().max()))
    assert (norm.running_mean - target_mean).abs().max() < (norm.running_mean - source_mean).abs().max()


def test_adabn_needs_batch_norm():
    d = toy_problem()
    with pytest.raises(InputError, match=r"no BatchNorm layer.*bottleneck_dim"):
        methods.AdaBN(default_backbone(), 3).fit((d["xs"], d["ys"]), d["xt"], steps=1, device="cpu", verbose=False)


def test_domain_confusion_trains_the_discriminator_then_confuses_it():
    model, batch = _built("domain_confusion", discriminator_hidden=(16,))
    from adapt.train.engine import Stepper, TrainConfig, make_optimizer

    stepper = Stepper(make_optimizer(model.param_groups(), TrainConfig(lr=0.1)), torch.device("cpu"), None, None)
    terms = model.update(batch, 0.5, stepper)
    assert {"classification", "confusion", "domain"} <= set(terms)


# ---------------------------------------------------------------- composition


def test_composed_names_add_regularizers_at_their_default_weights():
    model = methods.create("cdan+bsp+MCC", default_backbone(), 3)
    assert isinstance(model, methods.CDAN) and model.regularizers == {"bsp": 1e-4, "mcc": 1.0}
    model = methods.create("dann+bsp", default_backbone(), 3, regularizers={"bsp": 1e-3, "entropy": 0.2})
    assert model.regularizers == {"bsp": 1e-3, "minent": 0.2}
    assert methods.get("dan+afn") is methods.DAN


def test_regularizer_terms_are_weighted_and_on_the_same_forward_pass():
    model, batch = _built("dan", regularizers={"bnm": 0.5, "bsp": 2e-4})
    torch.manual_seed(1)
    terms = model.loss_terms(batch, 0.5)
    assert set(terms) == {"classification", "mmd", "reg_bnm", "reg_bsp"}
    out = model.forward_domains(batch)
    torch.testing.assert_close(terms["reg_bnm"], 0.5 * losses.bnm_loss(out.target_logits))
    bsp = losses.batch_spectral_penalty(out.source_features) + losses.batch_spectral_penalty(out.target_features)
    torch.testing.assert_close(terms["reg_bsp"], 2e-4 * bsp)
    assert model._outputs is None  # no graph kept between steps


def test_bad_regularizers_are_named():
    with pytest.raises(ValueError, match="unknown regularizer 'bsq'; available: afn, bnm, bsp"):
        methods.create("dann", default_backbone(), 3, regularizers={"bsq": 1.0})
    with pytest.raises(ValueError, match="unknown regularizer 'foo'"):
        methods.create("dann+foo", default_backbone(), 3)
    with pytest.raises(ValueError, match="weight of regularizer 'bsp' must be a finite number >= 0"):
        methods.create("dann", default_backbone(), 3, regularizers={"bsp": -1.0})
    with pytest.raises(TypeError, match="mapping of name to weight"):
        methods.create("dann", default_backbone(), 3, regularizers=["bsp"])
    for name in ("mcd", "adabn", "source_only", "adda", "symnets"):
        with pytest.raises(ValueError, match="does not take regularizers"):
            methods.create(name, default_backbone(), 3, regularizers={"bsp": 1e-4})


def test_composed_model_saves_and_loads_its_regularizers(tmp_path):
    d = toy_problem()
    model = methods.create("cdan+mcc", MLP(6, (8,)), 3, discriminator_hidden=(8,))
    model.fit((d["xs"], d["ys"]), d["xt"], steps=3, batch_size=8, device="cpu", verbose=False)
    model.save(tmp_path / "m.pt")
    loaded = methods.Adapter.load(tmp_path / "m.pt")
    assert isinstance(loaded, methods.CDAN) and loaded.regularizers == {"mcc": 1.0}


COMPOSED_SUITE = """
name = "composed"
seeds = 1
[train]
steps = 20
batch_size = 16
[backbones.small]
kind = "mlp"
hidden = [8]
[[tasks]]
benchmark = "moons"
source = "source"
target = "rotated"
backbone = "small"
[methods.dann]
discriminator_hidden = [8]
[methods."dann+bsp+mcc"]
discriminator_hidden = [8]
regularizers = { bsp = 2e-4 }
"""


def test_a_composed_method_trains_in_a_suite(tmp_path):
    path = tmp_path / "composed.toml"
    path.write_text(COMPOSED_SUITE)
    suite = load_suite(path)
    assert suite.methods["dann+bsp+mcc"]["regularizers"] == {"bsp": 2e-4}
    counts = run_sweep(suite, tmp_path / "out", jobs=1, verbose=False)
    assert counts["ok"] == 2
    import json

    records = [json.loads(p.read_text()) for p in (tmp_path / "out" / "runs").glob("*.json")]
    assert {r["config"]["method"] for r in records} == {"dann", "dann+bsp+mcc"}


def test_a_suite_names_a_bad_composed_method(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(COMPOSED_SUITE.replace('"dann+bsp+mcc"', '"dann+bsq"'))
    with pytest.raises(ValueError, match=r"methods\.dann\+bsq: unknown regularizer .bsq."):
        load_suite(path)


# ---------------------------------------------------------------- ranks: Demšar (2006)


def test_friedman_and_nemenyi_match_demsars_worked_example():
    """Demšar 2006, Sec. 3.2.2: 4 classifiers on 14 data sets, average ranks 3.143, 2.000, 2.893, 1.964:
    chi2_F = 9.28, F_F = 3.69, and CD = 1.25 at alpha 0.05 (q = 2.569)."""
    chi_square, _, f_f = friedman_statistics(np.array([3.143, 2.000, 2.893, 1.964]), 14)
    assert chi_square == pytest.approx(9.28, abs=0.01)
    assert f_f == pytest.approx(3.69, abs=0.01)
    assert nemenyi_critical_difference(4, 14) == pytest.approx(1.25, abs=0.005)


@pytest.mark.parametrize(("k", "q"), [(2, 1.960), (3, 2.343), (5, 2.728), (6, 2.850), (8, 3.031), (10, 3.164)])
def test_nemenyi_quantiles_match_demsars_table(k, q):
    """Demšar 2006, Table 5(a): critical values q_0.05 of the two-tailed Nemenyi test."""
    assert nemenyi_critical_difference(k, 6) / math.sqrt(k * (k + 1) / 36) == pytest.approx(q, abs=1e-3)


def test_ranks_ties_and_cliques():
    scores = pd.DataFrame({"a": [0.9, 0.8, 0.7], "b": [0.9, 0.6, 0.6], "c": [0.1, 0.2, 0.3]})
    test = friedman_nemenyi(scores)
    assert list(test.average_ranks.index) == ["a", "b", "c"]
    assert test.average_ranks["a"] == pytest.approx((1.5 + 1 + 1) / 3)  # a tie shares the mean rank
    assert test.n_datasets == 3 and test.critical_difference > 1.9  # 3 methods, 3 tasks: nothing significant
    assert test.cliques == [["a", "b", "c"]]
    # 30 tasks that always rank m3 > m2 > m1 > m0: neighbours differ by 1 rank > CD = 0.86, no clique
    far = friedman_nemenyi(pd.DataFrame({f"m{i}": np.full(30, float(i)) for i in range(4)}))
    assert far.critical_difference == pytest.approx(0.856, abs=1e-3) and far.cliques == []
    # ... unless m1 and m2 swap on half of them: their ranks (2.5 each) join one clique
    swapped = pd.DataFrame({f"m{i}": np.full(30, float(i)) for i in range(4)})
    swapped.loc[::2, ["m1", "m2"]] = [2.0, 1.0]
    assert [sorted(c) for c in friedman_nemenyi(swapped).cliques] == [["m1", "m2"]]


# ---------------------------------------------------------------- the report with many methods

MANY_SUITE = """
name = "many"
seeds = 2
[train]
steps = 15
batch_size = 16
[backbones.small]
kind = "mlp"
hidden = [8]
[[tasks]]
benchmark = "moons"
source = "source"
target = "rotated"
backbone = "small"
model = {{ bottleneck_dim = 8 }}
[[tasks]]
benchmark = "blobs-conditional"
source = "source"
target = "target"
backbone = "small"
model = {{ bottleneck_dim = 8 }}
{methods}
"""


def test_report_with_many_methods_has_method_table_ranks_and_readable_figures(tmp_path):
    from test_bench import cli

    names = ["source_only", "adabn", "dann", "cdan+bsp", "dan", "jan", "mcd", "mdd", "bnm", "minent", "afn"]
    tables = "\n".join(f'[methods."{n}"]' + ("\ndiscriminator_hidden = [8]" if n[:4] in ("dann", "cdan") else "")
                       for n in names)  # fmt: skip
    suite = tmp_path / "many.toml"
    suite.write_text(MANY_SUITE.format(methods=tables))
    proc = cli("run", "--suite", suite, "--out", tmp_path / "out", "--jobs", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr
    report = tmp_path / "out" / "report"
    for name in ("methods.md", "methods.csv", "ranks.md", "critical_difference.png", "bars.png", "gain.png"):
        assert (report / name).exists(), name
    methods_table = pd.read_csv(report / "methods.csv")
    assert set(methods_table["method"]) == set(names) - {"source_only"}
    row = methods_table.set_index("method").loc["cdan+bsp"]
    assert row["paper"] == "Long et al., NeurIPS 2018 + Chen et al., ICML 2019" and row["family"] == "adversarial"
    assert list(methods_table["family"]) == sorted(methods_table["family"], key=FAMILY_ORDER.index)  # grouped
    assert "Friedman" in (report / "ranks.md").read_text()


def test_every_method_declares_its_family_paper_and_term():
    for name in methods.available():
        cls = methods.get(name)
        assert cls.family in FAMILY_ORDER, name
        assert cls.adaptation_term and (cls.paper or name == "source_only"), name


# ---------------------------------------------------------------- the second batch: SymNets, ADDA, GVB, RTN, VADA


def test_symnets_domain_loss_and_entropy_match_pytorch_adapt():
    pa_layers = pytest.importorskip("pytorch_adapt.layers")
    g = torch.Generator().manual_seed(0)
    cs, ct = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    for half in (0, 1):
        expected = pa_layers.SymNetsDomainLoss(half_idx=half)(cs, ct)
        torch.testing.assert_close(losses.symmetric_domain_loss(cs, ct, half), expected)
    torch.testing.assert_close(losses.symmetric_entropy(cs, ct), pa_layers.SymNetsEntropyLoss()(cs, ct))


def test_symnets_category_confusion_is_the_papers_equation():
    """Zhang et al. 2019: -1/2 log p_{y} - 1/2 log p_{y+C} of the joint softmax. (pytorch-adapt's
    SymNetsCategoryLoss applies cross_entropy to the probabilities, a second softmax: not this.)"""
    cs, ct, y = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]]), torch.tensor([0])
    p = torch.softmax(torch.tensor([1.0, 0.0, 0.0, 2.0]), 0)
    expected = -(0.5 * torch.log(p[0]) + 0.5 * torch.log(p[2]))
    torch.testing.assert_close(losses.symmetric_category_confusion(cs, ct, y), expected)


def test_symnets_predicts_with_the_target_classifier():
    model, batch = _built("symnets")
    x = batch.target_x
    torch.testing.assert_close(model(x), model.target_classifier(model.embed(x)))


def test_adda_pretrains_on_the_source_then_adapts_a_copy():
    d = toy_problem()
    torch.manual_seed(0)
    model = methods.ADDA(default_backbone(), 3, discriminator_hidden=(8,))
    model.fit((d["xs"], d["ys"]), d["xt"], steps=4, batch_size=8, device="cpu", verbose=False, log_every=1)
    assert bool(model.adapting)
    classifier = model.classifier.weight.detach().clone()
    source_encoder = {k: v.clone() for k, v in model.source_encoder.state_dict().items()}
    from adapt.train.engine import Stepper, TrainConfig, make_optimizer

    stepper = Stepper(make_optimizer(model.param_groups(), TrainConfig(lr=0.1)), torch.device("cpu"), None, None)
    model.train()
    before = model.backbone[0].weight.detach().clone()
    terms = model.update(Batch(d["xs"], d["ys"], d["xt"], step=10), 0.9, stepper)
    assert {"classification", "confusion", "domain"} <= set(terms)
    assert torch.equal(model.classifier.weight, classifier)  # the classifier stays as pre-trained
    assert all(torch.equal(v, source_encoder[k]) for k, v in model.source_encoder.state_dict().items())
    assert not torch.equal(model.backbone[0].weight, before)  # the target encoder moves


def test_adda_confusion_is_the_inverted_label_gan_loss():
    model, batch = _built("adda", discriminator_hidden=(8,))
    terms = model.loss(batch, 0.9)
    logits = model.discriminator(model.embed(batch.target_x))
    expected = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))  # target called source
    torch.testing.assert_close(terms["confusion"], expected)


def test_gvb_bridges_match_pytorch_adapt_model_with_bridge():
    pa_layers = pytest.importorskip("pytorch_adapt.layers")
    from adapt.methods.gvb import Bridged

    torch.manual_seed(0)
    model, bridge = nn.Linear(5, 3), nn.Linear(5, 3)
    x = torch.randn(6, 5)
    ours, ours_bridge = Bridged(model, bridge)(x)
    theirs, theirs_bridge = pa_layers.ModelWithBridge(model, bridge)(x, return_bridge=True)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(ours_bridge, theirs_bridge)


def test_gvb_terms():
    model, batch = _built("gvb", discriminator_hidden=(8,))
    terms = model.loss(batch, 0.5)
    features = model.embed(torch.cat([batch.source_x, batch.target_x]))
    bridge = model.classifier_bridge(features)
    torch.testing.assert_close(terms["generator_bridge"], bridge.abs().mean())
    torch.testing.assert_close(model(batch.source_x), (model.classifier(features) - bridge)[:32])


def test_rtn_source_classifier_is_the_target_one_plus_a_residual():
    pa_layers = pytest.importorskip("pytorch_adapt.layers")
    model, batch = _built("rtn")
    logits = model(batch.source_x)
    torch.testing.assert_close(model.source_logits(logits), pa_layers.PlusResidual(model.residual)(logits))
    terms = model.loss(batch, 0.5)
    torch.testing.assert_close(terms["classification"], F.cross_entropy(model.source_logits(logits), batch.source_y))


def test_vat_matches_pytorch_adapt():
    pa_layers = pytest.importorskip("pytorch_adapt.layers")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    x = torch.randn(10, 6)
    logits = net(x)
    torch.manual_seed(5)
    ours = losses.virtual_adversarial_loss(net, x, logits, epsilon=2.0, xi=1e-6)
    torch.manual_seed(5)
    theirs = pa_layers.VATLoss(epsilon=2.0, xi=1e-6)(x, logits, net)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)
    assert ours.item() > 0


def test_vat_under_frozen_statistics_leaves_batch_norm_alone_and_compares_like_with_like():
    from adapt.models import frozen_running_statistics

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    x = torch.randn(8, 4)
    means = net[1].running_mean.clone()
    with frozen_running_statistics(net):
        value = losses.virtual_adversarial_loss(net, x, epsilon=1e-4)
    assert torch.equal(net[1].running_mean, means) and net[1].momentum == 0.1
    # a tiny perturbation of the same batch barely moves the predictions: clean logits come from the
    # same batch statistics (BatchNorm in eval mode for one pass only would show the train/eval gap)
    assert 0 <= value.item() < 1e-6


def test_vada_terms_and_defaults():
    model, batch = _built("vada", discriminator_hidden=(8,))
    terms = model.loss(batch, 0.5)
    assert set(terms) == {"classification", "domain", "source_vat", "target_entropy", "target_vat"}
    hp = methods.hyperparameters("vada")
    assert (hp["trade_off"], hp["source_vat"], hp["target_weight"]) == (0.01, 1.0, 0.01)


def test_loss_log_averages_each_term_over_the_steps_that_returned_it():
    """A method may change its terms mid-run (ADDA after pre-training): each is logged by name."""
    from adapt.train.engine import _LossLog

    log = _LossLog()
    log.add({"classification": torch.tensor(1.0)}, 0)
    log.add({"classification": torch.tensor(3.0), "confusion": torch.tensor(2.0)}, 1)
    row = log.flush(2)
    assert row == {"classification": 2.0, "confusion": 2.0, "total": 4.0}
    log.add({"confusion": torch.tensor(4.0), "classification": torch.tensor(0.5)}, 2)  # another order
    assert log.flush(3) == {"classification": 0.5, "confusion": 4.0, "total": 4.5}
    log.add({"classification": torch.tensor(1.0)}, 3)
    row = log.flush(4)
    assert row["classification"] == 1.0 and math.isnan(row["confusion"]) and row["total"] == 1.0


def test_adda_history_shows_the_adaptation_terms_after_pretraining():
    d = toy_problem()
    model = methods.ADDA(default_backbone(), 3, discriminator_hidden=(8,))
    history = model.fit((d["xs"], d["ys"]), d["xt"], steps=8, batch_size=8, device="cpu", verbose=False, log_every=2)
    assert history["confusion"].iloc[:2].isna().all() and history["confusion"].iloc[2:].notna().all()


# ---------------------------------------------------------------- FixMatch-style self-training


@pytest.mark.parametrize("shape", [(16, 5), (16, 3, 12, 12)])
def test_views_are_seeded_per_example_and_strong_is_farther(shape):
    from adapt.methods.augment import strong_view, weak_view

    x = torch.randn(shape)
    torch.manual_seed(0)
    weak = weak_view(x)
    torch.manual_seed(0)
    assert torch.equal(weak, weak_view(x))  # the global generator: a seeded fit sees the same views
    strong = strong_view(x)
    assert weak.shape == strong.shape == x.shape
    assert 0 < (weak - x).norm() < (strong - x).norm()
    per_example = (weak - x).flatten(1).norm(dim=1)
    assert per_example.std() > 0  # each example gets its own draw


def test_fixmatch_pseudo_labels_only_confident_examples():
    model, batch = _built("fixmatch", threshold=1.0)
    assert model.loss(batch, 0.5)["pseudo_label"].item() == 0.0  # nothing is 100% sure
    model, batch = _built("fixmatch", threshold=0.0)
    torch.manual_seed(0)
    term = model.loss(batch, 0.5)["pseudo_label"]
    assert term.item() > 0


# ---------------------------------------------------------------- review mends


def test_vat_default_probe_survives_float32_where_the_papers_does_not():
    """With 3072 inputs in [0, 1], a probe of norm 1e-6 (the VAT paper's xi) vanishes when added in float32:
    most inputs do not change at all. The default xi = 1e-3 changes them all."""
    import inspect

    default_xi = inspect.signature(losses.virtual_adversarial_loss).parameters["xi"].default
    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 32)
    direction = torch.randn_like(x)
    direction = direction / direction.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    assert ((x + 1e-6 * direction) == x).float().mean() > 0.5
    assert ((x + default_xi * direction) == x).float().mean() < 0.01


def test_vat_with_dropout_disabled_measures_the_perturbation_not_the_dropout_masks():
    from adapt.models import dropout_disabled

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 3))
    x = torch.randn(16, 6)
    noisy = losses.virtual_adversarial_loss(net, x, epsilon=1e-6).item()
    with dropout_disabled(net):
        quiet = losses.virtual_adversarial_loss(net, x, epsilon=1e-6).item()
    assert net[2].training  # put back
    assert quiet < 1e-5 and noisy > 1e-3  # float32 round-off against different dropout masks


def test_frozen_running_statistics_put_every_buffer_back_even_after_nan():
    from adapt.models import frozen_running_statistics

    norm = nn.BatchNorm1d(3, momentum=None)  # a cumulative average: counts matter
    norm(torch.randn(8, 3))
    state = {k: v.clone() for k, v in norm.state_dict().items()}
    with frozen_running_statistics(norm):
        norm(torch.full((4, 3), float("nan")))
    assert all(torch.equal(v, state[k]) for k, v in norm.state_dict().items())


def test_domain_confusion_reads_b_by_1_logits_as_binary():
    z = torch.randn(6)
    torch.testing.assert_close(losses.domain_confusion_loss(z[:, None]), losses.domain_confusion_loss(z))


def test_a_regularizer_given_twice_is_an_error():
    with pytest.raises(ValueError, match="regularizer 'minent' is given twice"):
        methods.create("dann", default_backbone(), 3, regularizers={"entropy": 0.1, "minent": 0.2})


def test_ranks_leave_out_methods_missing_a_task_and_say_so(tmp_path):
    from adapt.bench.report.ranks import write_ranks

    summary = pd.DataFrame(
        [{"task": t, "method": m, "mean": v} for t in ("t1", "t2", "t3") for m, v in (("a", 1), ("b", 2), ("c", 3))]
        + [{"task": "t1", "method": "d", "mean": 4.0}]
    )
    _, table, caption = write_ranks(summary, tmp_path)
    assert list(table.index) == ["c", "b", "a"] and "left out, not scored on every task: d" in caption


def test_fixmatch_term_is_the_papers_unlabeled_loss_on_fixed_views(monkeypatch):
    """Sohn et al. 2020: mean over the batch of 1[max q >= tau] * CE(argmax q, p_strong), q from the weak view."""
    import adapt.methods.fixmatch as fixmatch

    model, batch = _built("fixmatch", trade_off=0.7)
    monkeypatch.setattr(fixmatch, "weak_view", lambda x: x)
    monkeypatch.setattr(fixmatch, "strong_view", lambda x: x * 0.5)
    model.eval()  # the same logits in both passes below (no BatchNorm here, but no dropout surprises either)
    with torch.no_grad():
        n = len(batch.source_x)
        logits = model.classifier(model.embed(torch.cat([batch.source_x, batch.target_x, batch.target_x * 0.5])))
        weak, strong = logits[n : 2 * n], logits[2 * n :]
    q = weak.softmax(1)
    model.threshold = float(q.max(1).values.median())  # half of the examples pass
    term = model.loss(batch, 0.5)["pseudo_label"]
    mask = (q.max(1).values >= model.threshold).float()
    expected = 0.7 * (mask * F.cross_entropy(strong, q.argmax(1), reduction="none")).mean()
    assert 0 < mask.mean() < 1  # some examples pass the threshold, some do not
    torch.testing.assert_close(term.detach(), expected)
