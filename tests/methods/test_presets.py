"""Presets are what they say: each one against a transcription of the formula or code it cites."""

import pytest
import torch
from helpers import warm_start
from torch import nn

from adapt import methods


def test_paper_defaults():
    assert methods.hyperparameters("bsp")["trade_off"] == 1e-4  # Chen et al. 2019
    assert methods.hyperparameters("afn")["trade_off"] == 0.05  # Xu et al. 2019
    assert methods.hyperparameters("mdd")["margin"] == 4.0  # Zhang et al. 2019, Office-31
    assert methods.hyperparameters("mcd")["generator_steps"] == 4  # Saito et al. 2018, digits


@pytest.mark.parametrize(("preset", "alpha", "max_iters"), [("tllib", 1.0, 1000), ("official", 10.0, 10000)])
def test_warm_start_presets_follow_the_cited_schedule(preset, alpha, max_iters):
    """TLlib's DANN and CDAN losses: alpha 1, max_iters 1000 (thuml/Transfer-Learning-Library at c4aa59e,
    ``tllib/alignment/dann.py`` line 62, ``tllib/alignment/cdan.py`` line 86); the CDAN authors'
    ``AdversarialNetwork``: alpha 10, max_iter 10000 (thuml/CDAN at c904cd3, ``pytorch/network.py`` lines 377-386)."""
    name = "dann" if preset == "tllib" else "cdan"
    model = methods.create(name, nn.Linear(4, 4), num_classes=2, preset=preset)
    for step in (0, 1, 500, 1000, 3000, 20000):
        # progress is irrelevant for a warm start: the same step at any run length gives one value
        for progress in (0.1, 0.9):
            assert model.grl_coefficient(progress, step) == pytest.approx(warm_start(step, alpha, max_iters))
    if preset == "tllib":
        tllib_cdan = methods.create("cdan", nn.Linear(4, 4), num_classes=2, preset="tllib")
        assert tllib_cdan.grl_coefficient(0.5, 1234) == pytest.approx(warm_start(1234, 1.0, 1000))


def test_presets_build_the_cited_discriminators():
    """The CDAN authors' ``AdversarialNetwork`` (thuml/CDAN at commit c904cd3, ``pytorch/network.py`` lines
    365-397; width 1024, ``pytorch/train_image.py`` line 118; its Sigmoid is in the loss here) and TLlib's
    ``DomainDiscriminator`` with BatchNorm (thuml/Transfer-Learning-Library at commit c4aa59e,
    ``tllib/modules/domain_discriminator.py`` lines 37-46; width 1024, ``examples/.../dann.py`` line 76)."""
    official = methods.create("cdan", nn.Linear(4, 4), num_classes=2, preset="official")
    official.build(torch.randn(2, 4))
    layers = [type(m).__name__ for m in official.discriminator.net]
    assert layers == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert [m.out_features for m in official.discriminator.net if isinstance(m, nn.Linear)] == [1024, 1024, 1]
    tllib = methods.create("dann", nn.Linear(4, 4), num_classes=2, preset="tllib")
    tllib.build(torch.randn(2, 4))
    assert [type(m).__name__ for m in tllib.discriminator.net][:3] == ["Linear", "BatchNorm1d", "ReLU"]


@pytest.mark.bad_input
def test_unknown_preset_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"has no preset 'paper'.*tllib"):
        methods.create("dan", nn.Linear(2, 2), num_classes=2, preset="paper")
    with pytest.raises(ValueError, match="presets: none"):
        methods.create("mcc", nn.Linear(2, 2), num_classes=2, preset="tllib")


# Transcribed from TLlib's scripts (thuml/Transfer-Learning-Library at commit c4aa59e, under
# examples/domain_adaptation/image_classification/): the dann.py and cdan.py defaults (bottleneck 256, batch 32,
# lr 0.01, lr-gamma 0.001, lr-decay 0.75, momentum 0.9, weight decay 1e-3, 20 epochs x 1000 iterations: dann.py
# lines 228-253, cdan.py lines 239-268; Nesterov SGD and the inverse schedule: dann.py lines 79-81, cdan.py
# lines 85-86; the backbone at 0.1x: tllib/modules/classifier.py line 93) and the dann.sh / cdan.sh command
# lines (Office-31, lines 3-8: --epochs 20; Office-Home, lines 11-22, and VisDA-2017, lines 25-26: --epochs 30;
# DomainNet, dann.sh lines 29-40 and cdan.sh lines 30-41: --bottleneck-dim 1024 --epochs 30 -i 2500, and cdan.sh
# adds -r -rd 51200): (epochs x iterations per epoch, bottleneck width, CDAN options). DAN and the other methods
# share these settings; TLlib's dan.py / dan.sh and mdd.py / mdd.sh use others (see the suites' headers).
TLLIB_SCRIPTS = {
    "office31": (20 * 1000, 256, {}),
    "officehome": (30 * 1000, 256, {}),
    "visda": (30 * 1000, 256, {}),
    "domainnet": (30 * 2500, 1024, {"randomized": True, "randomized_dim": 51200}),
}


@pytest.mark.parametrize("name", sorted(TLLIB_SCRIPTS))
def test_suites_citing_tllib_use_its_script_settings_and_presets(name):
    from adapt.bench import load_suite

    steps, bottleneck, cdan_options = TLLIB_SCRIPTS[name]
    suite = load_suite(name)
    assert suite.train == {**suite.train, "steps": steps, "batch_size": 32, "lr": 0.01, "nesterov": True,
                           "weight_decay": 0.001, "backbone_lr_mult": 0.1, "lr_schedule": "inverse"}  # fmt: skip
    assert suite.train.get("momentum", 0.9) == 0.9 and suite.train.get("optimizer", "sgd") == "sgd"
    assert all(t.model == {"bottleneck_dim": bottleneck} for t in suite.tasks)
    for method in ("dann", "dan"):
        assert suite.methods[method] == {"preset": "tllib"}
    assert suite.methods["cdan"] == {"preset": "tllib", **cdan_options}


# The source-free suites adapt with each method's authors' script for the dataset (see the methods'
# docstrings for the repository, commit and lines): (method -> lr, weight decay, lr schedule, K).
SOURCE_FREE_SCRIPTS = {
    "office31-source-free": {"shot": (1e-2, 1e-3, "dann", None), "nrc": (1e-3, 1e-3, "dann", 2),
                             "aad": (1e-3, 5e-4, "constant", 3)},
    "officehome-source-free": {"shot": (1e-2, 1e-3, "dann", None), "nrc": (1e-3, 5e-4, "constant", 3),
                               "aad": (1e-3, 5e-4, "constant", 3)},
    "source-free": {"shot": (1e-2, 1e-3, "dann", None), "nrc": (1e-3, 1e-3, "dann", 5),
                    "aad": (1e-3, 1e-3, "dann", 5)},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SOURCE_FREE_SCRIPTS))
def test_source_free_suites_adapt_with_the_authors_optimizers(name):
    from adapt.bench import load_suite
    from adapt.bench.runner import expand

    runs = {r.method: r.resolved() for r in expand(load_suite(name)) if r.seed == 0}
    for method, (lr, decay, schedule, k) in SOURCE_FREE_SCRIPTS[name].items():
        train = runs[method]["train"]
        assert (train["lr"], train["weight_decay"], train["lr_schedule"]) == (lr, decay, schedule), method
        assert (train["backbone_lr_mult"], train["momentum"], train["nesterov"]) == (0.1, 0.9, True), method
        assert runs[method]["hparams"].get("k") == k, method
    source = runs["shot"]["source_train"]["train"]  # SHOT's image_source.py: weight decay 1e-3, Nesterov
    if name != "source-free":
        assert (source["weight_decay"], source["nesterov"], source["backbone_lr_mult"]) == (1e-3, True, 0.1)


def test_every_shipped_suite_says_whether_defaults_were_tuned_on_it():
    from adapt.bench.suite import available_suites, load_suite

    for name, path in available_suites().items():
        assert "defaults_tuned" in path.read_text(), name
        suite = load_suite(name)
        assert suite.defaults_tuned == (name in {"quick", "quick-search", "catalogue", "backends", "zoo-tune"}), name
    assert load_suite("zoo-confirm").split == "confirmation" and not load_suite("zoo-confirm").defaults_tuned
