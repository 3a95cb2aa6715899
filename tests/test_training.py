"""Every method trained end to end on the DANN paper's rotated moons (300 source, 300 target points)."""

import numpy as np
import pytest
import torch
from torch import nn

from adapt import losses, methods
from adapt.data import moons_shift
from adapt.models import MLP

SEEDS = (0, 1, 2)
HPARAMS = {
    "coral": {"trade_off": 50.0},  # 2-D moons: covariances are tiny, so CORAL needs a large weight
    # The paper's moons experiment ramps the reversal over the run; the library default (a warm start
    # over 1000 steps, chosen for robustness) only reaches 0.46 in this 1000-step run and gains less.
    "dann": {"discriminator_hidden": (64,), "grl_schedule": "dann"},
    "cdan": {"discriminator_hidden": (64,)},
}
# The discrepancy each method minimizes, measured on its final features/logits.
OWN_DISCREPANCY = {
    "dan": lambda fs, ft, lt: losses.mmd(fs, ft),
    "coral": lambda fs, ft, lt: losses.coral_loss(fs, ft),
    "mcc": lambda fs, ft, lt: losses.mcc_loss(lt),
    "dann": lambda fs, ft, lt: losses.mmd(fs, ft),  # adversarial alignment also lowers MMD
}


@pytest.fixture(scope="module")
def moons_results():
    results = {}
    for name in methods.available():
        for seed in SEEDS:
            xs, ys, xt, yt = moons_shift(n_per_moon=150, angle=35.0, seed=seed)
            torch.manual_seed(seed)
            model = methods.create(name, MLP(2, (64,), nn.Tanh), 2, **HPARAMS.get(name, {}))
            history = model.fit(
                (xs, ys), xt, steps=1000, batch_size=64, lr=0.05, seed=seed, device="cpu", verbose=False, log_every=100
            )
            fs, ft, lt = model.features(xs), model.features(xt), model.predict_logits(xt)
            results[name, seed] = {
                "accuracy": model.score(xt, yt),
                "source_accuracy": model.score(xs, ys),
                "history": history,
                "discrepancy": {k: float(f(fs, ft, lt)) for k, f in OWN_DISCREPANCY.items()},
            }
    return results


def _mean_accuracy(results, name):
    return float(np.mean([results[name, s]["accuracy"] for s in SEEDS]))


@pytest.mark.slow
@pytest.mark.parametrize("name", methods.available())
def test_every_method_beats_chance_on_target(moons_results, name):
    assert _mean_accuracy(moons_results, name) > 0.6
    assert np.mean([moons_results[name, s]["source_accuracy"] for s in SEEDS]) > 0.95


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dann", "dan", "coral"])
def test_alignment_methods_beat_source_only(moons_results, name):
    assert _mean_accuracy(moons_results, name) > _mean_accuracy(moons_results, "source_only") + 0.02


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dann", "dan", "coral", "mcc", "cdan"])
def test_adaptation_term_falls_during_training(moons_results, name):
    for seed in SEEDS:
        history = moons_results[name, seed]["history"]
        term = [c for c in history.columns if c not in ("step", "progress", "lr", "seconds", "total", "classification")]
        assert len(term) == 1
        assert history[term[0]].iloc[-1] < 0.9 * history[term[0]].iloc[0], (seed, history[term[0]].tolist())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(OWN_DISCREPANCY))
def test_method_lowers_its_discrepancy_below_source_only(moons_results, name):
    for seed in SEEDS:
        ours = moons_results[name, seed]["discrepancy"][name]
        baseline = moons_results["source_only", seed]["discrepancy"][name]
        assert ours < baseline, (seed, ours, baseline)
