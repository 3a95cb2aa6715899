"""Regularizer methods and composed names ("cdan+bsp"): weights, terms, errors, save/load, suites."""

import pytest
import torch
from helpers import _built

from adapt import losses, methods
from adapt.bench import load_suite
from adapt.bench.runner import run_sweep
from adapt.models import MLP
from adapt.testing import default_backbone, toy_problem


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


@pytest.mark.bad_input
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


@pytest.mark.bad_input
def test_a_suite_names_a_bad_composed_method(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(COMPOSED_SUITE.replace('"dann+bsp+mcc"', '"dann+bsq"'))
    with pytest.raises(ValueError, match=r"methods\.dann\+bsq: unknown regularizer .bsq."):
        load_suite(path)


@pytest.mark.bad_input
def test_a_regularizer_given_twice_is_an_error():
    with pytest.raises(ValueError, match="regularizer 'minent' is given twice"):
        methods.create("dann", default_backbone(), 3, regularizers={"entropy": 0.1, "minent": 0.2})
