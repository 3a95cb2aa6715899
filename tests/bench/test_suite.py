"""Suite files: validation of keys and values, defaults, and the shipped suites."""

import pytest
from helpers import cli, write_suite

from adapt.bench import load_suite
from adapt.bench.runner import expand
from adapt.bench.suite import SuiteError


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


@pytest.mark.parametrize("mutation, message", [
    (lambda s: "bogus = 1\n" + s, r"tiny.toml: bogus: unknown key; allowed: backbones, budgets, checkpoints, data_root, defaults_tuned, description"),
    (lambda s: s.replace("[methods.dann]", "[methods.danny]"), r"methods.danny: unknown key; allowed: adabn, .*, dann, "),
    (lambda s: s.replace('benchmark = "moons"', 'benchmark = "moon"'), r"tasks\[0\].benchmark: unknown benchmark 'moon'; allowed: blobs-conditional"),
    (lambda s: s.replace('target = "rotated"', 'target = "upside"'), r"tasks\[0\].target: unknown moons domain 'upside'; allowed: rotated, source"),
    (lambda s: s.replace("steps = 40", 'steps = "many"'), r"train.steps: must be a number, got str 'many'"),
    (lambda s: s.replace("seeds = 2", "seeds = 2.5"), r"seeds: must be a positive integer, got float"),
    (lambda s: s.replace("discriminator_hidden = [16]", "discriminator_width = 16"), r"methods.dann.discriminator_width: unknown key; allowed: .*discriminator_hidden"),
    (lambda s: s.replace("lr = 0.05", "learning_rate = 0.05"), r"train.learning_rate: unknown key; allowed: .*lr"),
])  # fmt: skip
@pytest.mark.bad_input
def test_bad_suite_files_name_file_key_and_allowed_values(tmp_path, finished_sweep, mutation, message):
    import shutil

    good = write_suite(tmp_path)
    out = tmp_path / "out"
    shutil.copytree(finished_sweep, out)
    before = {p.name: p.read_bytes() for p in (out / "runs").glob("*.json")}
    good.write_text(mutation(good.read_text()))
    result = cli("run", "--suite", good, "--out", out, "--quiet")
    assert result.returncode == 2
    assert str(good) in result.stderr
    import re

    assert re.search(message, result.stderr), result.stderr
    assert {p.name: p.read_bytes() for p in (out / "runs").glob("*.json")} == before


def test_shipped_suites_are_valid():
    from adapt.bench import available_suites

    suites = available_suites()
    assert {"quick", "digits", "office31", "officehome", "visda", "domainnet"} <= set(suites)
    for name in suites:
        suite = load_suite(name)
        assert suite.tasks and suite.methods
    quick = load_suite("quick")
    assert len(quick.methods) == 6 and quick.seeds == 3
    assert load_suite("office31").tasks[0].backbone == {"kind": "resnet50", "weights": "IMAGENET1K_V1"}
    with pytest.raises(SuiteError, match="unknown suite"):
        load_suite("nope")


@pytest.mark.parametrize("line, message", [
    ('description = 3', r"description: must be a string, got int 3"),
    ('split = "final"', r"split: unknown split 'final'; allowed: confirmation, tuning"),
    ('metric = "f1"', r"metric: unknown metric 'f1'; allowed: accuracy, mean_class_accuracy"),
    ("source_holdout = 1.5", r"source_holdout: must be a fraction in \[0, 1\), got 1.5"),
    ("checkpoints = -1", r"checkpoints: must be a non-negative integer, got -1"),
    ("defaults_tuned = 1", r"defaults_tuned: must be a boolean, got int 1"),
    ('data_root = ["a"]', r"data_root: must be a string, got list"),
    ('protocol = "offline"', r"protocol: unknown protocol 'offline'; allowed: online, source-free, uda"),
])  # fmt: skip
@pytest.mark.bad_input
def test_scalar_suite_keys_are_checked_against_the_suite_fields(tmp_path, line, message):
    """Each scalar key is checked by its ``Suite`` field's type (``description`` had no check before)."""
    path = write_suite(tmp_path)
    path.write_text(line + "\n" + path.read_text())
    with pytest.raises(SuiteError, match=message):
        load_suite(str(path))


def test_a_suite_field_left_out_takes_the_dataclass_default_and_floats_stay_floats(tmp_path):
    from adapt.bench.suite import Suite

    path = write_suite(tmp_path)
    path.write_text("source_holdout = 0\n" + path.read_text().replace("seeds = 2\n", ""))
    suite = load_suite(str(path))
    assert suite.seeds == Suite.__dataclass_fields__["seeds"].default == 3
    # an integer 0 for a float field is 0.0: the run ids of "0" and "0.0" are one setting's
    assert isinstance(suite.source_holdout, float)


VARIANTS = """
[methods."dann (lr 0.01)"]
method = "dann"
train = { lr = 0.01 }
discriminator_hidden = [16]
"""


def test_a_variant_runs_its_method_under_its_label_with_its_own_training_options(tmp_path):
    path = write_suite(tmp_path)
    path.write_text(path.read_text() + VARIANTS)
    suite = load_suite(path)
    assert suite.variants == {"dann (lr 0.01)": {"method": "dann", "train": {"lr": 0.01}}}
    runs = expand(suite)
    plain = [r for r in runs if r.method == "dann" and r.variant is None]
    variant = [r for r in runs if r.variant == "dann (lr 0.01)"]
    assert len(plain) == len(variant) == suite.seeds
    assert {r.method for r in variant} == {"dann"}
    assert {r.train["lr"] for r in variant} == {0.01} and {r.train["lr"] for r in plain} == {0.05}
    assert variant[0].hparams == plain[0].hparams == {"discriminator_hidden": [16]}
    assert variant[0].config()["variant"] == "dann (lr 0.01)" and "variant" not in plain[0].config()
    assert variant[0].resolved()["train"]["lr"] == 0.01
    assert len({r.run_id for r in runs}) == len(runs)
    assert "dann (lr 0.01) |" in variant[0].label
    # the suite's other methods keep the ids they had before variants existed
    (tmp_path / "plain").mkdir()
    before = expand(load_suite(write_suite(tmp_path / "plain")))
    assert {r.run_id for r in before} <= {r.run_id for r in runs}


@pytest.mark.parametrize("table, message", [
    ('[methods."x"]\nmethod = "danny"', r"methods.x.method: unknown method 'danny'; allowed: .*dann"),
    ('[methods.coral]\nmethod = "dann"', r"methods.coral.method: 'coral' is itself a method's name"),
    ('[methods."x"]\nmethod = 3', r"methods.x.method: must be a method's name, got int"),
    ('[methods."x"]\nmethod = "dann"\ntrain = { learning_rate = 1 }', r"methods.x.train.learning_rate: unknown key"),
    ('[methods."x"]\nmethod = "dann"\ntradeoff = 1', r"methods.x.tradeoff: unknown key; allowed: .*discriminator_hidden"),
])  # fmt: skip
@pytest.mark.bad_input
def test_bad_variants_name_the_label_and_the_problem(tmp_path, table, message):
    path = write_suite(tmp_path)
    path.write_text(path.read_text() + "\n" + table + "\n")
    with pytest.raises(SuiteError, match=message):
        load_suite(path)
