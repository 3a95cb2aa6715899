"""Validators: closed forms, no target labels, selection and search reports (the pytorch-adapt comparisons are in
tests/reference/test_validators_vs_pytorch_adapt.py)."""

import math

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from adapt import SourceOnly
from adapt.bench import load_suite, run_sweep, write_report
from adapt.bench.report import ORACLE, select_hyperparameters, selection_frame, selection_table
from adapt.bench.suite import SuiteError
from adapt.data import task
from adapt.models import MLP
from adapt.validators import (
    VALIDATORS,
    ModelOutputs,
    SourceAccuracy,
    ValidationCallback,
    bnm_score,
    class_ami_score,
    collect_outputs,
    create_validator,
    dev_risk,
    entropy_score,
    im_score,
    reverse_validation_score,
    scores,
    snd_score,
)


# ---------------------------------------------------------------- closed forms
def test_closed_forms():
    uniform = torch.zeros(10, 4)
    assert math.isclose(entropy_score(uniform), -math.log(4), rel_tol=1e-6)
    assert math.isclose(im_score(uniform), 0.0, abs_tol=1e-6)  # diverse on average, but not confident
    confident = torch.eye(4).repeat(3, 1) * 50
    assert math.isclose(im_score(confident), math.log(4), rel_tol=1e-5)
    assert math.isclose(bnm_score(confident), 4 * math.sqrt(3) / 12, rel_tol=1e-5)
    # identical predictions: every row of the similarity softmax is uniform over the n - 1 others
    assert math.isclose(snd_score(uniform), math.log(9), rel_tol=1e-5)
    logits = torch.randn(37, 5) * 2
    assert math.isclose(snd_score(logits, max_rows=None), snd_score(logits), rel_tol=1e-6)  # 37 < 4096 rows
    # DEV with unit weights is the plain mean loss
    assert math.isclose(dev_risk(np.ones(5), np.arange(5.0)), 2.0)
    acc = SourceAccuracy().score(
        ModelOutputs(torch.empty(0), torch.empty(0), torch.eye(3), None, torch.tensor([0, 1, 0]))
    )
    assert math.isclose(acc, 2 / 3, rel_tol=1e-6)


def test_class_ami_and_reverse_validation_on_clean_clusters():
    centers = torch.eye(3) * 10
    labels = torch.arange(60) % 3
    features = centers[labels] + 0.1 * torch.randn(60, 3)
    good_logits, bad_logits = centers[labels], torch.randn(60, 3)
    assert class_ami_score(features, good_logits) > 0.99
    assert class_ami_score(features, bad_logits) < 0.2
    assert reverse_validation_score(features, good_logits, features, labels) == 1.0


# ---------------------------------------------------------------- no target labels
@pytest.fixture(scope="module")
def trained():
    t = task("moons", "source", "rotated", source_holdout=0.2)
    torch.manual_seed(0)
    model = SourceOnly(MLP(2, (16,)), 2)
    model.fit(t.source_train, t.target_train, steps=100, verbose=False, device="cpu")
    return t, model


def test_scrambled_target_labels_leave_every_score_unchanged(trained):
    t, model = trained
    x, y = t.target_test.tensors
    scores = []
    for labels in (y, y[torch.randperm(len(y))], torch.full_like(y, 1)):
        outputs = collect_outputs(model, TensorDataset(x, labels), t.source_val, t.source_train)
        scores.append({name: cls().score(outputs) for name, cls in VALIDATORS.items()})
    assert scores[0] == scores[1] == scores[2]
    assert all(math.isfinite(v) for v in scores[0].values())


def test_validators_needing_source_validation_say_so(trained):
    t, model = trained
    for name in ("source_accuracy", "dev", "devn", "reverse", "doc", "atc_mc", "atc_ne", "nuclear", "mano"):
        with pytest.raises(ValueError, match=f"validator '{name}' needs a labeled source validation split"):
            create_validator(name)(model, t.target_train)
    with pytest.raises(ValueError, match="source_accuracy need a labeled source validation split"):
        ValidationCallback(["im", "source_accuracy"], t.target_train)
    with pytest.raises(ValueError, match=r"unknown validator 'imm'; available: .*bnm, class_ami"):
        create_validator("imm")
    assert math.isfinite(create_validator("im")(model, t.target_train))


def test_a_source_calibration_replaces_the_source_split_for_the_estimators_only(trained):
    """Source-free scoring: the estimators read the given source-side logits and labels (the source model's),
    whatever the scored model would give on the source; the other source-scoring validators are refused."""
    t, model = trained
    x, labels = t.source_val.tensors
    with torch.no_grad():
        own = torch.as_tensor(model.predict_logits(x))
    wrong = ValidationCallback(["doc"], t.target_train, source_calibration=(own, (labels + 1) % 2))
    right = ValidationCallback(["doc"], t.target_train, source_calibration=(own, labels))
    as_usual = ValidationCallback(["doc"], t.target_train, t.source_val)
    assert right(0, model)["val_doc"] == pytest.approx(as_usual(0, model)["val_doc"])
    source_accuracy = float((own.argmax(1) == labels).double().mean())
    assert right(0, model)["val_doc"] - wrong(0, model)["val_doc"] == pytest.approx(2 * source_accuracy - 1)
    with pytest.raises(ValueError, match="source_accuracy score the adapted model on source data"):
        ValidationCallback(["source_accuracy"], t.target_train, source_calibration=(own, labels))
    with pytest.raises(ValueError, match="source_val or source_calibration, not both"):
        ValidationCallback(["doc"], t.target_train, t.source_val, source_calibration=(own, labels))


def test_validation_callback_keeps_and_restores_best_checkpoint():
    t = task("moons", "source", "rotated", source_holdout=0.2)
    model = SourceOnly(MLP(2, (16,)), 2)
    callback = ValidationCallback(["im", "source_accuracy"], t.target_train, t.source_val, every=20, select="im")
    history = model.fit(t.source_train, t.target_train, steps=100, verbose=False, device="cpu", log_every=20,
                        callbacks=[callback])  # fmt: skip
    best_row = history.loc[history["val_im"].idxmax()]
    assert callback.best_step == best_row["step"]
    assert callback.restore_best(model) == best_row["step"]
    assert math.isclose(create_validator("im")(model, t.target_train), best_row["val_im"], rel_tol=1e-5)


# ---------------------------------------------------------------- selection and search reports
def _record(run_id, method, draw, seed, points, select_by="im"):
    curve = [{"step": s, "target_accuracy": a, "val_im": v} for s, a, v in points]
    return {"id": run_id, "status": "ok", "accuracy": points[-1][1], "config": {
        "method": method, "benchmark": "toy", "source": "a", "target": "b", "seed": seed, "draw": draw,
        "select_by": select_by}, "curve": curve}  # fmt: skip


def test_validator_selection_never_uses_target_accuracy():
    # the validator prefers step 10 (accuracy 0.6); the oracle picks step 20 (accuracy 0.9)
    records = [_record(f"r{s}", "dann", 0, s, [(10, 0.6, 5.0), (20, 0.9, 1.0), (30, 0.7, 2.0)]) for s in (0, 1)]
    selection = selection_frame(records)
    im = selection[selection.rule == "val: im"]
    oracle = selection[selection.rule == ORACLE]
    assert set(im["step"]) == {10} and np.allclose(im["accuracy"], 0.6)
    assert set(oracle["step"]) == {20} and np.allclose(oracle["accuracy"], 0.9)
    table = selection_table(select_hyperparameters(selection))
    assert list(table.columns) == ["last", "val: im", ORACLE]
    assert (
        table.loc["dann", "val: im"] == 60.0 and table.loc["dann", ORACLE] == 90.0 and table.loc["dann", "last"] == 70.0
    )


def test_hyperparameter_draw_is_picked_by_the_validator_and_oracle_apart():
    records = []
    for seed in (0, 1):
        records.append(_record(f"a{seed}", "dan", 0, seed, [(10, 0.9, 1.0)]))  # better accuracy, worse score
        records.append(_record(f"b{seed}", "dan", 1, seed, [(10, 0.5, 3.0)]))
    chosen = select_hyperparameters(selection_frame(records)).set_index("rule")
    assert chosen.loc["val: im", "draw"] == 1 and chosen.loc["val: im", "accuracy"] == 50.0
    assert chosen.loc[ORACLE, "draw"] == 0 and chosen.loc[ORACLE, "accuracy"] == 90.0


SEARCH_SUITE = """
name = "tiny-search"
seeds = 2
eval_every = 20
validators = ["source_accuracy", "im", "bnm", "devn"]
select_by = "im"
source_holdout = 0.1
search_draws = 2

[train]
steps = 40
batch_size = 32
lr = 0.05
log_every = 20

[backbones.mlp]
kind = "mlp"
hidden = [16]

[[tasks]]
benchmark = "moons"
source = "source"
target = "rotated"
backbone = "mlp"

[methods.source_only]

[methods.dan]

[search.dan]
trade_off = ["log_uniform", 0.1, 10.0]
"""


def test_offline_sweep_records_and_reports_selection(tmp_path):
    path = tmp_path / "tiny-search.toml"
    path.write_text(SEARCH_SUITE)
    suite = load_suite(str(path))
    counts = run_sweep(suite, tmp_path / "out", verbose=False)
    assert counts["ok"] == 2 * 2 + 2  # dan: 2 draws x 2 seeds; source_only: 1 draw x 2 seeds
    report = write_report(tmp_path / "out")
    from adapt.bench import read_records

    for record in read_records(tmp_path / "out"):
        assert record["selected"]["validator"] == "im" and record["selected"]["step"] in (20, 40)
        assert {"val_im", "val_bnm", "val_devn", "val_source_accuracy", "target_accuracy"} <= set(record["curve"][0])
    # the headline keeps one draw per method (picked by select_by), so n counts seeds, not draws
    assert (report.summary["n"] == 2).all() and "picked by validator 'im'" in report.caption
    last = report.selection.query("rule == 'last'").set_index("method")["accuracy"]
    assert np.allclose(report.summary.set_index("method")["mean"].loc[last.index], last)
    table = report.selection_table
    assert list(table.columns) == ["last", *[c for c in table.columns if c.startswith("val: ")], ORACLE]
    assert (table[ORACLE].values[:, None] >= table.drop(columns=ORACLE).values - 1e-9).all()
    assert (tmp_path / "out" / "report" / "validators.png").exists()
    assert set(report.quality.index) == {"source_accuracy", "im", "bnm", "devn"}
    draws = {
        r["config"]["hparams"].get("trade_off")
        for r in read_records(tmp_path / "out")
        if r["config"]["method"] == "dan"
    }
    assert len(draws) == 2


@pytest.mark.parametrize("mutation, message", [
    (lambda s: s.replace('"im", "bnm"', '"imm", "bnm"'), r"validators\[1\]: unknown validator 'imm'; allowed:"),
    (lambda s: s.replace('select_by = "im"', 'select_by = "snd"'), r"select_by: 'snd' is not in validators"),
    (lambda s: s.replace("source_holdout = 0.1", ""), r"source_holdout: validator\(s\) source_accuracy, devn need a held-out source split"),
    (lambda s: s.replace('["log_uniform", 0.1, 10.0]', '["log_uniform", 0, 10.0]'), r"search.dan.trade_off: must be"),
    (lambda s: s.replace("[search.dan]\ntrade_off", "[search.dan]\ntradeoff"), r"search.dan.tradeoff: unknown key"),
])  # fmt: skip
@pytest.mark.bad_input
def test_bad_validator_and_search_settings(tmp_path, mutation, message):
    path = tmp_path / "bad.toml"
    path.write_text(mutation(SEARCH_SUITE))
    with pytest.raises(SuiteError, match=message):
        load_suite(str(path))


def test_snd_in_blocks_is_snd_at_once(monkeypatch):
    logits = torch.randn(37, 5) * 2
    exact = snd_score(logits)
    monkeypatch.setattr(scores, "SND_BLOCK", 37 * 8)  # 8 rows a block, the last one short
    assert math.isclose(snd_score(logits), exact, rel_tol=1e-6)


def test_snd_beyond_max_rows_averages_a_uniform_sample_of_rows():
    """O(rows x n) instead of O(n^2): the same Eq. 4 over sampled rows, each against all n examples."""
    logits = torch.randn(400, 6) * 3
    exact = snd_score(logits, max_rows=None)
    normed = torch.nn.functional.normalize(torch.softmax(logits, 1), dim=1)
    sim = normed @ normed.t()
    sim.fill_diagonal_(-float("inf"))
    per_row = -(torch.softmax(sim / 0.05, 1) * torch.log_softmax(sim / 0.05, 1)).nan_to_num().sum(1)
    assert math.isclose(float(per_row.mean()), exact, rel_tol=1e-5)
    rows = np.sort(np.random.default_rng(3).choice(400, 50, replace=False))
    assert math.isclose(snd_score(logits, max_rows=50, seed=3), float(per_row[rows].mean()), rel_tol=1e-5)
    estimates = [snd_score(logits, max_rows=50, seed=s) for s in range(200)]
    assert abs(np.mean(estimates) - exact) < 3 * np.std(estimates) / math.sqrt(200)  # unbiased
    assert snd_score(logits, max_rows=50, seed=0) != snd_score(logits, max_rows=50, seed=1)
