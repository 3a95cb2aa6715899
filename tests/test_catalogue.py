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
    """Transcription of TLlib's ClassificationMarginDisparityDiscrepancy (tllib/alignment/mdd.py)."""
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
    """TLlib's MDD: WarmStartGradientReverseLayer(alpha=1, lo=0, hi=0.1, max_iters=1000)."""
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
    for name in ("mcd", "adabn", "source_only"):
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
