"""Issue 'adaptation that pays off': the shift zoo, budgets, gains and negative transfer, label-free
selection in ``fit``, validators on the evaluation view, and the numerical edge cases."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from adapt import DAN, DANN, DeepCORAL, SourceOnly
from adapt.bench import load_suite, write_report
from adapt.bench.report import paired_gains, transfer_summary
from adapt.bench.runner import expand, run_sweep
from adapt.data import make_task, moons_shift, task
from adapt.data.synthetic import OPTDIGITS_SHIFTS
from adapt.losses import entropy, mcc_loss, mmd
from adapt.train.data import InputError

# ---------------------------------------------------------------- the shift zoo


@pytest.mark.parametrize("kind", OPTDIGITS_SHIFTS[1:])
def test_optdigits_shifts_are_disjoint_shifted_halves(kind):
    t = task("optdigits-shifts", "clean", kind)
    xs, xt = t.source_train.tensors[0], t.target_train.tensors[0]
    assert xs.shape[1:] == xt.shape[1:] == (1, 16, 16) and t.num_classes == 10
    assert float(xs.min()) >= -1 and float(xs.max()) <= 1 and float(xt.min()) >= -1 and float(xt.max()) <= 1
    same = task("optdigits-shifts", "clean", kind)
    assert torch.equal(xt, same.target_train.tensors[0])  # generated from the seed, deterministic
    labels = t.target_test.tensors[1].numpy()
    counts = np.bincount(labels, minlength=10)
    if kind == "imbalanced":  # a pure label shift: class proportions fall as 0.7^c
        assert counts[0] > 5 * counts[9] and len(labels) < 0.5 * len(xs)
    else:  # every other shift keeps the balanced half and changes the images
        assert counts.min() > 0.8 * counts.max()
        clean = task("optdigits-shifts", "clean", "imbalanced").target_train.tensors[0]
        assert not torch.equal(xt[: len(clean)], clean)


def test_zoo_suites_split_the_shifts_and_run_two_budgets():
    tune, confirm = load_suite("zoo-tune"), load_suite("zoo-confirm")
    assert (tune.split, confirm.split) == ("tuning", "confirmation")
    tune_tasks, confirm_tasks = {t.name for t in tune.tasks}, {t.name for t in confirm.tasks}
    assert not tune_tasks & confirm_tasks and len(tune_tasks | confirm_tasks) >= 10
    for suite in (tune, confirm):
        assert sum(t.backbone["kind"] == "convnet" for t in suite.tasks) >= 3
        assert all(not hp for hp in suite.methods.values())  # library defaults, nothing tuned per suite
        runs = expand(suite)
        assert {r.train["steps"] for r in runs} == {500, 3000}
        assert {(r.train["steps"], r.eval_every) for r in runs} == {(500, 50), (3000, 300)}
        assert len({r.run_id for r in runs}) == len(runs)


# ---------------------------------------------------------------- gains and negative transfer


def test_paired_gains_and_negative_transfer_rate_closed_form():
    rows = []
    for seed, (base, a, b) in enumerate([(0.50, 0.47, 0.60), (0.60, 0.61, 0.70), (0.70, 0.75, 0.65)]):
        rows += [{"method": "source_only", "task": "t", "seed": seed, "budget": 100, "score": base},
                 {"method": "a", "task": "t", "seed": seed, "budget": 100, "score": a},
                 {"method": "b", "task": "t", "seed": seed, "budget": 100, "score": b}]  # fmt: skip
    gains = paired_gains(pd.DataFrame(rows))
    table = transfer_summary(gains)
    np.testing.assert_allclose(sorted(gains[gains.method == "a"]["gain"]), [-3.0, 1.0, 5.0], atol=1e-9)
    assert table.loc[("a", 100), "gain"] == pytest.approx(1.0)
    assert table.loc[("a", 100), "negative_transfer"] == pytest.approx(1 / 3)  # -3 < -2
    assert table.loc[("b", 100), "negative_transfer"] == pytest.approx(1 / 3)  # -5 < -2
    assert table.loc[("a", 100), "pairs"] == 3


BUDGET_SUITE = """
name = "budgets"
seeds = 2
budgets = [30, 60]
checkpoints = 3
validators = ["im", "entropy"]

[train]
batch_size = 32
lr = 0.05

[backbones.mlp]
kind = "mlp"
hidden = [16]
activation = "tanh"

[[tasks]]
benchmark = "moons"
source = "source"
target = "rotated"
backbone = "mlp"

[methods.source_only]
[methods.coral]
"""


def test_report_prints_negative_transfer_per_budget_and_the_selection_study(tmp_path):
    path = tmp_path / "budgets.toml"
    path.write_text(BUDGET_SUITE)
    counts = run_sweep(load_suite(str(path)), tmp_path / "out", verbose=False)
    assert counts["ok"] == 8
    report = write_report(tmp_path / "out", figures=False)
    assert list(report.transfer.index) == [("coral", 30), ("coral", 60)]
    assert "negative transfer" in report.transfer.columns
    study = report.study
    assert {"last", "val: im", "val: entropy"} <= set(study.index)
    assert study.loc["last", "gain vs last (points)"] == 0
    assert (tmp_path / "out" / "report" / "transfer.md").exists()
    assert (tmp_path / "out" / "report" / "selection_study.md").exists()


# ---------------------------------------------------------------- label-free selection in fit


def _moons():
    xs, ys, xt, yt = moons_shift(seed=1)
    return torch.from_numpy(xs), torch.from_numpy(ys), torch.from_numpy(xt), torch.from_numpy(yt)


def test_fit_select_by_restores_the_best_checkpoint_by_the_validator():
    xs, ys, xt, _ = _moons()
    torch.manual_seed(0)
    model = DANN(nn.Sequential(nn.Linear(2, 16), nn.Tanh()), 2, discriminator_hidden=(16,))
    history = model.fit((xs, ys), xt, steps=60, lr=0.05, select_by="im", select_every=10, verbose=False)
    scores = history.dropna(subset=["val_im"]).set_index("step")["val_im"]
    assert len(scores) == 6 and model.selected_step_ == scores.idxmax()
    from adapt.validators import create_validator

    assert create_validator("im")(model, xt) == pytest.approx(scores.max(), abs=1e-6)
    model.fit((xs, ys), xt, steps=20, verbose=False)
    assert model.selected_step_ is None


def test_validation_does_not_change_how_the_model_trains():
    """Scoring checkpoints may draw random numbers (a DataLoader's base seed); training must not see them."""
    xs, ys, xt, _ = _moons()
    final = {}
    for select_by in (None, "class_ami"):
        torch.manual_seed(0)  # the backbone is initialized here, before fit seeds anything
        model = DANN(nn.Sequential(nn.Linear(2, 16), nn.Tanh()), 2, discriminator_dropout=0.5)
        scored = DataLoader(TensorDataset(xt), batch_size=64)  # iterating it draws a base seed
        history = model.fit(
            (xs, ys),
            xt,
            steps=40,
            lr=0.05,
            seed=3,
            select_by=select_by,
            select_every=10,
            target_eval=scored,
            verbose=False,
        )
        final[select_by] = history.set_index("step")["total"]
    pd.testing.assert_series_equal(final[None], final["class_ami"])


def test_fit_select_by_rejects_validators_that_need_source_labels_or_do_not_exist():
    xs, ys, xt, _ = _moons()
    model = SourceOnly(nn.Linear(2, 4), 2)
    with pytest.raises(ValueError, match="source validation data"):
        model.fit((xs, ys), xt, steps=5, select_by="source_accuracy", verbose=False)
    with pytest.raises(ValueError, match="unknown validator 'nope'"):
        model.fit((xs, ys), xt, steps=5, select_by="nope", verbose=False)


def test_validators_score_the_evaluation_view_of_the_target(monkeypatch):
    from adapt.bench import runner, scoring

    xs, ys, xt, yt = _moons()
    augmented, plain = TensorDataset(xt + torch.randn_like(xt), yt), TensorDataset(xt, yt)
    t = make_task("moons", "s", TensorDataset(xs, ys), "t", augmented, ["a", "b"], (2,), target_eval_data=plain)
    assert torch.equal(t.target_eval[0][0], xt[0]) and not torch.equal(t.target_train[0][0], xt[0])

    seen = {}
    import adapt.validators as validators

    class Recording(validators.ValidationCallback):
        def __init__(self, names, target, *args, **kwargs):
            seen["target"] = target
            super().__init__(names, target, *args, **kwargs)

    monkeypatch.setattr(scoring, "ValidationCallback", Recording)
    monkeypatch.setattr(runner, "_load_task", lambda *args: t)
    spec = expand(_single_run_suite(tmp_suite=load_suite("quick")))[0]
    record = runner.execute(spec, device="cpu")
    assert record["status"] == "ok", record.get("error")
    assert seen["target"] is t.target_eval


def _single_run_suite(tmp_suite):
    tmp_suite.tasks = tmp_suite.tasks[:1]
    tmp_suite.methods = {"source_only": {}}
    tmp_suite.seeds = 1
    tmp_suite.train = {**tmp_suite.train, "steps": 20}
    tmp_suite.validators = ["im"]
    tmp_suite.source_holdout = 0.0
    tmp_suite.select_by = "im"
    return tmp_suite


# ---------------------------------------------------------------- numerical edge cases


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


@pytest.mark.parametrize("method", [DeepCORAL, DAN])
def test_a_dataloader_ending_in_a_batch_of_one_is_fine_for_pairwise_losses(method):
    x, y = torch.randn(33, 3), torch.randint(0, 2, (33,))
    source = DataLoader(TensorDataset(x, y), batch_size=16)  # epochs end with a batch of 1
    target = DataLoader(TensorDataset(x + 1), batch_size=16)
    model = method(nn.Linear(3, 4), 2)
    history = model.fit(source, target, steps=10, verbose=False)  # 10 steps cross several epoch ends
    assert len(history) and np.isfinite(history["total"]).all()


def test_a_dataloader_with_only_batches_of_one_is_a_clear_error():
    x, y = torch.randn(5, 3), torch.randint(0, 2, (5,))
    with pytest.raises(InputError, match="needs at least 2 source examples per batch"):
        DeepCORAL(nn.Linear(3, 4), 2).fit(DataLoader(TensorDataset(x, y), batch_size=1), x, steps=3, verbose=False)


def test_source_only_with_batchnorm_and_batch_size_one_is_a_clear_error():
    x, y = torch.randn(10, 3), torch.randint(0, 2, (10,))
    model = SourceOnly(nn.Linear(3, 4), 2, bottleneck_dim=8)
    with pytest.raises(InputError, match=r"at least 2 source examples.*BatchNorm.*'bottleneck.1'"):
        model.fit((x, y), x, batch_size=1, steps=3, verbose=False)
    DANN(nn.Linear(3, 4), 2, bottleneck_dim=8).fit((x, y), x, batch_size=1, steps=3, verbose=False)  # 1 + 1 is fine
