"""Contract checks parametrized over the registry: a new method is tested by registering it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import adapt as adapt_package
from adapt import methods
from adapt.methods import registry
from adapt.testing import CONTRACT_CHECKS, check_target_changes_update, default_backbone


def contract_hparams(name: str) -> dict:
    """What a method needs to run on the contract's tiny batches: a small discriminator where it has one
    (speed), then the settings its class declares in ``contract_hparams``."""
    small = {"discriminator_hidden": (16,)} if "discriminator_hidden" in methods.hyperparameters(name) else {}
    return {**small, **methods.get(name).contract_hparams}


@pytest.mark.parametrize("check", CONTRACT_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", methods.available())
def test_contract(name, check):
    check(name, default_backbone, contract_hparams(name))


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
    """Every registered method is exported under its class name, knows its registered name, and every
    alias leads to a registered name (the names come from the registry: none is listed here)."""
    import adapt

    registries = (methods.METHODS, methods.SOURCE_FREE_METHODS, methods.TRANSFER_BASELINES)
    for reg in registries:
        for name, cls in reg.items():
            assert cls.name == name and name == name.lower() and name.isidentifier(), (name, cls)
            assert getattr(methods, cls.__name__) is cls
            if reg is not methods.SOURCE_FREE_METHODS:
                assert getattr(adapt, cls.__name__) is cls and cls.__name__ in adapt.__all__
        for alias, name in reg.aliases().items():
            assert reg.get(alias) is reg.get(name) and name in reg.names()
    assert methods.get("mmd") is methods.DAN and methods.get("MMD") is methods.DAN
    assert isinstance(methods.create("cdan", default_backbone(), 3, entropy_conditioning=True), methods.CDAN)
    assert methods.hyperparameters("dann")["trade_off"] == 1.0
    assert "bottleneck_dim" in methods.hyperparameters("mcc")


def test_a_new_method_file_is_all_it_takes(tmp_path):
    """One file dropped into a copy of ``adapt/methods`` is exported by ``adapt``, listed by ``adapt-bench
    list``, found by ``create`` and run through the contract checks, with no other file edited."""
    package = Path(adapt_package.__file__).parent
    shutil.copytree(package, tmp_path / "adapt", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "adapt" / "methods" / "throwaway.py").write_text(
        "from .base import Adapter\n"
        "from .registry import register_method\n\n\n"
        "@register_method('throwaway')\n"
        "class Throwaway(Adapter):\n"
        '    """Entropy on the target, for this test."""\n\n'
        "    def loss(self, batch, progress):\n"
        "        out = self.forward_domains(batch)\n"
        "        entropy = -(out.target_logits.softmax(1) * out.target_logits.log_softmax(1)).sum(1).mean()\n"
        "        return {'classification': self.classification_loss(out.source_logits, batch.source_y),\n"
        "                'entropy': entropy}\n"
    )
    probe = (
        "import adapt\n"
        "from adapt import Throwaway\n"
        "from adapt.bench.listing import render\n"
        "from adapt.testing import CONTRACT_CHECKS, default_backbone\n"
        "assert 'Throwaway' in adapt.__all__ and adapt.methods.get('throwaway') is Throwaway\n"
        "assert '  throwaway: Throwaway' in render()\n"
        "for check in CONTRACT_CHECKS:\n"
        "    check('throwaway', default_backbone, {})\n"
        "print('ok', adapt.__file__)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}  # run from tmp_path: the checkout must not be found first
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok") and str(tmp_path) in done.stdout


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


@pytest.mark.parametrize("name", methods.available())
def test_declared_search_space_is_valid_for_a_suite(name):
    """What ``[search] <name> = "default"`` draws from: known kinds over the method's own hyperparameters."""
    from adapt.bench.search import check_search_spec

    space = methods.get(name).search_space
    assert set(space) <= set(methods.hyperparameters(name)), sorted(set(space) - set(methods.hyperparameters(name)))
    for key, spec in space.items():
        assert check_search_spec(list(spec)) is None, (key, spec, check_search_spec(list(spec)))
