"""Contract checks parametrized over the registry: a new method is tested by registering it."""

import pytest
import torch
from torch import nn

from adapt import methods
from adapt.methods import registry
from adapt.testing import CONTRACT_CHECKS, check_target_changes_update, default_backbone

HPARAMS = {
    "dann": {"discriminator_hidden": (16,)},
    "cdan": {"discriminator_hidden": (16,)},
    "domain_confusion": {"discriminator_hidden": (16,)},
    "adda": {"discriminator_hidden": (16,)},
    "gvb": {"discriminator_hidden": (16,)},
    "vada": {"discriminator_hidden": (16,)},
    "dirt_t": {"discriminator_hidden": (16,)},  # the contract's batches are half-way: the refinement stage
    "adabn": {"bottleneck_dim": 8},  # AdaBN needs BatchNorm layers
    "fixmatch": {"threshold": 0.0},  # an untrained model is never 95% sure: here every pseudo-label counts
}


@pytest.mark.parametrize("check", CONTRACT_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", methods.available())
def test_contract(name, check):
    check(name, default_backbone, HPARAMS.get(name, {}))


@pytest.mark.parametrize("check", CONTRACT_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "hparams",
    [
        {"name": "cdan", "randomized": True, "randomized_dim": 32},
        {"name": "cdan", "entropy_conditioning": True},
        {"name": "dan", "estimator": "linear"},
        {"name": "dan", "adapt_logits": True, "bandwidth": "median"},
        {"name": "dann", "bottleneck_dim": 8},
        {"name": "cdan+bsp+mcc", "discriminator_hidden": (16,)},
        {"name": "dann", "discriminator_hidden": (16,), "regularizers": {"afn": 0.05, "entropy": 0.1}},
        {"name": "dan+bnm"},
        {"name": "domain_confusion+im", "discriminator_hidden": (16,)},
        {"name": "mcd", "generator_steps": 1},
        {"name": "gvb+mcc", "discriminator_hidden": (16,)},
        {"name": "rtn+bsp"},
        {"name": "dirt_t", "vada_fraction": 0.9, "discriminator_hidden": (16,)},  # still in the VADA stage
        {"name": "dirt_t", "vada_fraction": 0.1, "bottleneck_dim": 8},  # refinement with BatchNorm
    ],
    ids=lambda h: "-".join(f"{k}={v}" for k, v in h.items()),
)
def test_contract_variants(hparams, check):
    hparams = dict(hparams)
    check(hparams.pop("name"), default_backbone, hparams)


@pytest.fixture
def broken_method():
    """A method that claims to adapt but never reads its target batch."""

    @methods.register_method("ignores_target_test")
    class IgnoresTarget(methods.Adapter):
        def __init__(self, backbone: nn.Module, num_classes: int, **kwargs):
            super().__init__(backbone, num_classes, **kwargs)

        def loss(self, batch, progress):
            logits = self(batch.source_x)
            return {"classification": self.classification_loss(logits, batch.source_y), "fake": logits.pow(2).mean()}

    yield "ignores_target_test"
    registry.METHODS.remove("ignores_target_test")


def test_contract_catches_a_method_that_ignores_the_target(broken_method):
    with pytest.raises(AssertionError, match="does not depend on the target"):
        check_target_changes_update(broken_method, default_backbone, {})


def test_registry_rejects_duplicates_and_lists_names():
    with pytest.raises(ValueError, match="already registered"):
        methods.register_method("dann")(type("X", (methods.Adapter,), {}))
    with pytest.raises(ValueError, match=r"unknown method 'danny'; available: adabn, .*cdan, coral, dan, dann"):
        methods.create("danny", default_backbone(), 3)
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) trade_of for method .dann.; valid: .*trade_off"):
        methods.create("dann", default_backbone(), 3, trade_of=1.0)


def test_registry_names_and_aliases():
    assert methods.available() == [
        "adabn", "adda", "afn", "atdoc", "bnm", "bsp", "cdan", "coral", "dan", "dann", "dirt_t", "domain_confusion", "fixmatch", "gvb", "im", "jan",
        "mcc", "mcd", "mdd", "minent", "mme", "rtn", "source_only", "symnets", "vada",
    ]  # fmt: skip
    assert methods.get("mmd") is methods.DAN and methods.get("MMD") is methods.DAN
    assert isinstance(methods.create("cdan", default_backbone(), 3, entropy_conditioning=True), methods.CDAN)
    assert methods.hyperparameters("dann")["trade_off"] == 1.0
    assert "bottleneck_dim" in methods.hyperparameters("mcc")


def test_public_api_star_import_resolves():
    import adapt

    namespace: dict = {}
    exec("from adapt import *", namespace)
    for name in adapt.__all__:
        assert name in namespace
    for module in (adapt.losses, adapt.methods, adapt.models):
        for name in module.__all__:
            assert getattr(module, name) is not None


def test_multi_stage_update_extension_point():
    """An MCD-like method trains different modules in separate optimizer stages."""
    from adapt.train.engine import Stepper, TrainConfig, make_optimizer

    class TwoStage(methods.Adapter):
        def __init__(self, backbone, num_classes, **kwargs):
            super().__init__(backbone, num_classes, **kwargs)

        def loss(self, batch, progress):
            return {"classification": self.classification_loss(self(batch.source_x), batch.source_y)}

        def update(self, batch, progress, stepper):
            terms = self.loss(batch, progress)
            stepper.step(terms["classification"], only=[self.classifier])
            disagreement = self(batch.target_x).softmax(1).var(0).sum()
            stepper.step(disagreement, only=[self.backbone])
            return {**terms, "disagreement": disagreement}

    torch.manual_seed(0)
    model = TwoStage(default_backbone(), 3)
    xs, ys, xt = torch.randn(8, 6), torch.arange(8) % 3, torch.randn(8, 6)
    model.build(xs)
    stepper = Stepper(make_optimizer(model.param_groups(), TrainConfig(lr=0.1)), torch.device("cpu"), None, None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    from adapt.batch import Batch

    terms = model.update(Batch(xs, ys, xt), 0.5, stepper)
    assert set(terms) == {"classification", "disagreement"}
    after = model.state_dict()
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])
    assert not torch.equal(before["backbone.0.weight"], after["backbone.0.weight"])
    history = model.fit((xs, ys), xt, steps=3, batch_size=4, device="cpu", verbose=False, log_every=1)
    assert {"classification", "disagreement", "total"} <= set(history.columns)


def test_cdan_refit_can_switch_between_exact_and_randomized_maps():
    from adapt.testing import toy_problem

    d = toy_problem()
    model = methods.CDAN(default_backbone(), 3, discriminator_hidden=(8,))
    model.fit((d["xs"], d["ys"]), d["xt"], steps=2, batch_size=8, device="cpu", verbose=False)
    assert model.feature_projection is None
    model.randomized, model.randomized_dim = True, 16
    model.fit((d["xs"], d["ys"]), d["xt"], steps=2, batch_size=8, device="cpu", verbose=False)
    assert model.feature_projection.shape == (8, 16)
    model.randomized = False
    model.fit((d["xs"], d["ys"]), d["xt"], steps=2, batch_size=8, device="cpu", verbose=False)
    assert model.feature_projection is None and "feature_projection" not in model.state_dict()
