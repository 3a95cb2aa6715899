"""pytorch-adapt's implementations (``pa:<method>``) and validators (``pa:<validator>``) inside this
library's engine and harness."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from helpers import cli
from test_bench import write_suite

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
    assert set(PYTORCH_ADAPT_METHODS.names()) == {f"pa:{m}" for m in ("afn", "bnm", "bsp", "coral", "dan", "dann",
                                                                       "im", "mcc")}  # fmt: skip


def test_pa_dann_step_is_pytorch_adapts_own_dann_step():
    """One step through our engine equals one training_step of pytorch-adapt's DANN adapter on copies
    of the same modules (same losses, same updated weights)."""
    from pytorch_adapt.adapters import DANN as PADANN
    from pytorch_adapt.containers import Models, Optimizers

    d = toy_problem(n=16)
    torch.manual_seed(0)
    backbone = MLP(6, (8,))
    initial = copy.deepcopy(backbone)
    model = methods.create("pa:dann", backbone, 3)
    history = model.fit((d["xs"], d["ys"]), d["xt"], steps=1, batch_size=16, lr=0.1, momentum=0.0, weight_decay=0.0,
                        lr_schedule="constant", log_every=1, verbose=False, seed=0)  # fmt: skip
    seed_everything(0)  # the heads fit built, built again from the same seed
    twin = methods.create("pa:dann", initial, 3)
    twin.build(d["xs"][:2])
    G, C, D = twin.backbone, twin.classifier, twin.discriminator
    theirs = PADANN(models=Models({"G": G, "C": C, "D": D}), optimizers=Optimizers((torch.optim.SGD, {"lr": 0.1})))
    # the engine's first batch: a permutation of 16 examples per domain from the seeded generator
    generator = torch.Generator().manual_seed(0)
    order_s, order_t = torch.randperm(16, generator=generator), torch.randperm(16, generator=generator)
    batch = {"src_imgs": d["xs"][order_s], "src_labels": d["ys"][order_s], "target_imgs": d["xt"][order_t],
             "src_domain": torch.zeros(16), "target_domain": torch.ones(16)}  # fmt: skip
    losses = theirs.training_step(batch)["total_loss"]
    for term in ("src_c_loss", "src_domain_loss", "target_domain_loss"):
        assert math.isclose(history[term].iloc[0], losses[term], rel_tol=1e-5), term
    torch.testing.assert_close(model.backbone.state_dict(), G.state_dict())
    torch.testing.assert_close(model.discriminator.state_dict(), D.state_dict())


def test_pa_names_are_checked():
    with pytest.raises(ValueError, match="takes no added regularizers"):
        methods.create("pa:dann+bsp", MLP(2, (4,)), 2)
    with pytest.raises(ValueError, match="pa:dan, pa:dann"):
        methods.create("pa:cdan", MLP(2, (4,)), 2)


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
