"""pytorch-adapt's implementations (``pa:<method>``) and validators (``pa:<validator>``) inside this
library's engine and harness."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from helpers import cli, write_suite

from adapt import methods
from adapt.data import moons_shift
from adapt.methods.pa_backend import PYTORCH_ADAPT_METHODS
from adapt.models import MLP
from adapt.testing import toy_problem
from adapt.train import seed_everything
from adapt.validators import ModelOutputs, create_validator

pytest.importorskip("pytorch_adapt")


def test_every_pa_method_trains_in_the_engine_and_repeats_with_its_seed():
    xs, ys, xt, _ = moons_shift()
    for name in PYTORCH_ADAPT_METHODS.names():
        runs = []
        for _ in range(2):
            torch.manual_seed(0)
            model = methods.create(name, MLP(2, (16,)), 2)
            history = model.fit((xs, ys), xt, steps=60, lr=0.05, log_every=20, verbose=False, seed=0)
            runs.append(history.drop(columns="seconds"))
        assert np.isfinite(runs[0]["total"]).all(), name
        assert runs[0].equals(runs[1]), name
    expected = ("adda", "afn", "atdoc", "bnm", "bsp", "cdan", "coral", "dan", "dann", "im", "mcc", "mcd")
    assert set(PYTORCH_ADAPT_METHODS.names()) == {f"pa:{m}" for m in expected}


@pytest.mark.parametrize("name", ["dann", "cdan"])
def test_one_pa_step_is_pytorch_adapts_own_adapter_step(name):
    """One step through our engine equals one training_step of pytorch-adapt's own adapter on copies of
    the same modules: the same losses and the same updated weights (for CDAN: its discriminator stage,
    then its generator stage, each stepping only its own optimizers)."""
    from pytorch_adapt import adapters
    from pytorch_adapt.containers import Misc, Models, Optimizers

    d = toy_problem(n=16)
    torch.manual_seed(0)
    backbone = MLP(6, (8,))
    initial = copy.deepcopy(backbone)
    model = methods.create(f"pa:{name}", backbone, 3)
    history = model.fit((d["xs"], d["ys"]), d["xt"], steps=1, batch_size=16, lr=0.1, momentum=0.0, weight_decay=0.0,
                        lr_schedule="constant", log_every=1, verbose=False, seed=0)  # fmt: skip
    seed_everything(0)  # the heads fit built, built again from the same seed
    twin = methods.create(f"pa:{name}", initial, 3)
    twin.build(d["xs"][:2])
    models = Models({"G": twin.backbone, "C": twin.classifier, "D": twin.discriminator})
    sgd = Optimizers((torch.optim.SGD, {"lr": 0.1}))
    if name == "dann":
        theirs = adapters.DANN(models=models, optimizers=sgd)
    else:
        theirs = adapters.CDAN(models=models, optimizers=sgd, misc=Misc({"feature_combiner": twin.feature_combiner}))
    # the engine's first batch: a permutation of 16 examples per domain from the seeded generator
    generator = torch.Generator().manual_seed(0)
    order_s, order_t = torch.randperm(16, generator=generator), torch.randperm(16, generator=generator)
    batch = {"src_imgs": d["xs"][order_s], "src_labels": d["ys"][order_s], "target_imgs": d["xt"][order_t],
             "src_domain": torch.zeros(16), "target_domain": torch.ones(16)}  # fmt: skip
    losses = theirs.training_step(batch)
    if name == "dann":
        expected = losses["total_loss"]
    else:
        expected = {
            f"{stage.removesuffix('_loss')}_{k}": v for stage, terms in losses.items() for k, v in terms.items()
        }
    compared = [term for term in history.columns if term in expected and term != "total"]
    assert len(compared) >= 3
    for term in compared:
        assert math.isclose(history[term].iloc[0], expected[term], rel_tol=1e-5), term
    for ours, twin_module in ((model.backbone, twin.backbone), (model.discriminator, twin.discriminator),
                              (model.classifier, twin.classifier)):  # fmt: skip
        torch.testing.assert_close(ours.state_dict(), twin_module.state_dict())


def test_pa_names_are_checked():
    with pytest.raises(ValueError, match="takes no added regularizers"):
        methods.create("pa:dann+bsp", MLP(2, (4,)), 2)
    with pytest.raises(ValueError, match="pa:dan, pa:dann"):
        methods.create("pa:gvb", MLP(2, (4,)), 2)


def test_pa_validators_agree_with_ours():
    torch.manual_seed(0)
    logits, features = torch.randn(80, 4) * 2, torch.randn(80, 6)
    outputs = ModelOutputs(logits, features)
    for name in ("im", "entropy", "bnm", "snd"):
        ours, theirs = create_validator(name).score(outputs), create_validator(f"pa:{name}").score(outputs)
        assert math.isclose(ours, theirs, abs_tol=1e-4), name


def test_a_suite_with_both_backends_reports_them_side_by_side(tmp_path):
    suite = write_suite(tmp_path, seeds=2, steps=40, second='"pa:dann"', second_hparams="[methods.dann]")
    text = suite.read_text().replace("eval_every = 20", 'eval_every = 20\nvalidators = ["im", "pa:im"]')
    suite.write_text(text)
    out = tmp_path / "results"
    done = cli("run", "--suite", suite, "--out", out, "--quiet")
    assert done.returncode == 0, done.stderr
    table = (out / "report" / "backends.md").read_text()
    assert "| dann |" in table and table.count("\n| ") == 2  # header row and the one shared method
    assert "beside pytorch-adapt's" in done.stdout
    assert "pa:im" in (out / "report" / "validators.md").read_text()
