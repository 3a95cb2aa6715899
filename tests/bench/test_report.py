"""Reports written from sweep records: tables, figures, ranks, gains, negative transfer, units."""

import re

import numpy as np
import pandas as pd
import pytest
from helpers import _tiny_suite, cli, write_suite

from adapt.bench import load_suite, run_sweep, write_report
from adapt.bench.report import paired_gains, transfer_summary
from adapt.bench.report.figures import FAMILY_ORDER
from adapt.bench.suite import SuiteError


def test_report_files_give_accuracy_in_percent_and_na_for_undefined(tmp_path):
    suite = load_suite(str(_tiny_suite(tmp_path)))
    suite.validators, suite.select_by, suite.eval_every = ["entropy", "im"], "entropy", 4
    out = tmp_path / "out"
    run_sweep(suite, out, verbose=False)
    report = write_report(out, figures=False)
    runs = pd.read_csv(out / "report" / "runs.csv")
    summary = pd.read_csv(out / "report" / "summary.csv")
    assert runs["accuracy"].between(1, 100).all()  # percent, like summary.csv
    merged = runs.groupby("method")["accuracy"].mean()
    np.testing.assert_allclose(merged.sort_index(), summary.set_index("method")["mean"].sort_index(), rtol=1e-6)
    transfer = pd.read_csv(out / "report" / "transfer.csv")
    assert "negative_transfer_pct" in transfer.columns
    table = (out / "report" / "validators.md").read_text()
    cells = [c.strip() for line in table.splitlines()[4:] for c in line.strip("|").split("|")[1:]]
    assert any(re.fullmatch(r"-?\d\.\d{3}", c) for c in cells), cells
    assert all(c == "n/a" or re.fullmatch(r"-?\d\.\d{3}", c) for c in cells), cells
    assert "below 0 = prefers the worse checkpoints" in report.quality_caption


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


def test_report_is_regenerated_identically_from_records(tmp_path):
    suite = load_suite(str(write_suite(tmp_path, seeds=2, steps=20)))
    run_sweep(suite, tmp_path / "out", verbose=False)
    first = write_report(tmp_path / "out", tmp_path / "r1")
    second = write_report(tmp_path / "out", tmp_path / "r2")
    for name in ("runs.csv", "summary.csv", "summary.md", "summary.tex"):
        assert (tmp_path / "r1" / name).read_text() == (tmp_path / "r2" / name).read_text()
    assert first.table.equals(second.table)
    summary = first.summary
    assert list(summary.columns[:4]) == ["task", "method", "selection", "metric"] and (summary["n"] == 2).all()


def test_report_compares_with_published_numbers(tmp_path):
    path = write_suite(tmp_path, seeds=1, steps=20)
    path.write_text(path.read_text() + '\n[published]\nsource = "a paper"\n"moons/source->rotated" = { dann = 90.0 }\n'
                    'avg = { source_only = 70.0 }\n')  # fmt: skip
    run_sweep(load_suite(str(path)), tmp_path / "out", verbose=False)
    table, caption = write_report(tmp_path / "out", figures=False).published
    assert "a paper" in caption and "target labels" in caption
    row = table.loc[("moons/source->rotated", "dann")]
    assert row["published"] == 90.0 and row["difference"] == round(row["ours"] - 90.0, 1)
    assert table.loc[("avg", "source_only"), "published"] == 70.0
    assert (tmp_path / "out" / "report" / "published.md").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text(path.read_text().replace("dann = 90.0", "danny = 90.0"))
    with pytest.raises(SuiteError, match=r"published.moons/source->rotated.danny: unknown key; allowed: dann"):
        load_suite(str(bad))


def test_report_without_seaborn_writes_tables_and_says_how_to_get_figures(
    tmp_path, finished_sweep, monkeypatch, capsys
):
    """The core install leaves seaborn out: the report still writes every table and names the extra."""
    import importlib.util
    import shutil

    out = tmp_path / "out"
    shutil.copytree(finished_sweep, out)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "seaborn" else real_find_spec(name, *a)
    )
    report = write_report(out)
    assert report.figures == [] and (out / "report" / "summary.md").exists()
    assert "pip install 'adapt-uda[bench]'" in capsys.readouterr().err
