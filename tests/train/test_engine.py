"""The shared training engine: inputs, schedules, history, callbacks, progress, AMP."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from adapt import DANN, MCC, SourceOnly
from adapt.testing import default_backbone, toy_problem
from adapt.train import grl_coefficient, lr_factor

FIT = dict(steps=4, batch_size=8, device="cpu", verbose=False, log_every=2)


def test_schedules_follow_the_dann_paper():
    assert grl_coefficient(0.0) == 0.0
    assert math.isclose(grl_coefficient(1.0), 2 / (1 + math.exp(-10)) - 1)
    assert math.isclose(grl_coefficient(0.5, max_value=2.0), 2 * (2 / (1 + math.exp(-5)) - 1))
    assert lr_factor("dann", 0.0, 0) == 1.0
    assert math.isclose(lr_factor("dann", 0.3, 0), (1 + 3) ** -0.75)
    assert math.isclose(lr_factor("inverse", 0.9, 1000), 2**-0.75)
    assert math.isclose(lr_factor("cosine", 1.0, 0), 0.0, abs_tol=1e-12)


def test_learning_rate_is_annealed_and_backbone_multiplier_applied():
    d = toy_problem()
    model = SourceOnly(default_backbone(), 3)
    history = model.fit(
        (d["xs"], d["ys"]),
        d["xt"],
        steps=10,
        batch_size=8,
        lr=0.1,
        device="cpu",
        verbose=False,
        log_every=5,
        backbone_lr_mult=0.1,
    )
    # the logged lr is the head's lr at the last step of each interval
    np.testing.assert_allclose(history["lr"], [0.1 * (1 + 10 * 4 / 10) ** -0.75, 0.1 * (1 + 10 * 9 / 10) ** -0.75])


def test_history_is_a_dataframe_with_one_column_per_term():
    d = toy_problem()
    history = DANN(default_backbone(), 3, discriminator_hidden=(8,)).fit((d["xs"], d["ys"]), d["xt"], **FIT)
    assert isinstance(history, pd.DataFrame)
    assert list(history.columns) == ["step", "progress", "lr", "seconds", "classification", "domain", "total"]
    np.testing.assert_allclose(history["total"], history["classification"] + history["domain"], rtol=1e-6)


class PairDataset(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def test_accepts_datasets_loaders_and_numpy():
    d = toy_problem()
    xs, ys, xt, yt = d["xs"], d["ys"], d["xt"], d["yt"]
    for source, target in [
        (PairDataset(xs, ys), PairDataset(xt, yt)),
        (DataLoader(TensorDataset(xs, ys), batch_size=8, shuffle=True), DataLoader(TensorDataset(xt), batch_size=8)),
        ((xs.numpy().astype(np.float64), ys.numpy()), xt.numpy()),
        ((xs, ys), TensorDataset(xt)),
    ]:
        model = MCC(default_backbone(), 3)
        history = model.fit(source, target, **FIT)
        assert len(history) == 2 and np.isfinite(history["total"]).all()
        assert model.predict(target).shape == (32,)


def test_target_labels_are_never_used():
    d = toy_problem()
    results = []
    for labels in (d["yt"], d["yt"][torch.randperm(32)], torch.full((32,), 99)):
        torch.manual_seed(0)
        model = DANN(default_backbone(), 3, discriminator_hidden=(8,))
        model.fit((d["xs"], d["ys"]), PairDataset(d["xt"], labels), **FIT)
        results.append(model.predict_logits(d["xt"]))
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])


def test_callbacks_run_every_k_steps_and_add_columns():
    d = toy_problem()
    calls = []

    class TargetEntropy:
        every = 3

        def __call__(self, step, model):
            calls.append((step, model.training))
            return {"target_entropy": float(model.predict_proba(d["xt"]).clamp_min(1e-12).log().mul(-1).mean())}

    model = SourceOnly(default_backbone(), 3)
    history = model.fit(
        (d["xs"], d["ys"]),
        d["xt"],
        steps=7,
        batch_size=8,
        device="cpu",
        verbose=False,
        log_every=100,
        callbacks=[TargetEntropy()],
    )
    assert [c[0] for c in calls] == [3, 6, 7]
    assert all(training for _, training in calls)  # predict_* restores the mode it found
    assert history["step"].tolist() == [3, 6, 7]
    assert history["target_entropy"].notna().all()


def test_progress_bar_when_verbose(capsys):
    d = toy_problem()
    SourceOnly(default_backbone(), 3).fit(
        (d["xs"], d["ys"]), d["xt"], steps=4, batch_size=8, device="cpu", verbose=True
    )
    err = capsys.readouterr().err
    assert "SourceOnly" in err and "step" in err and "classification" in err


def test_bf16_autocast_on_cpu_trains():
    d = toy_problem()
    model = DANN(default_backbone(), 3, discriminator_hidden=(8,))
    history = model.fit((d["xs"], d["ys"]), d["xt"], amp="bf16", **FIT)
    assert np.isfinite(history["total"]).all()


def test_grad_clip_and_adam():
    d = toy_problem()
    model = MCC(default_backbone(), 3)
    history = model.fit((d["xs"], d["ys"]), d["xt"], optimizer="adam", lr=1e-3, grad_clip=0.1, **FIT)
    assert np.isfinite(history["total"]).all()


def test_refit_rebuilds_heads_and_batch_larger_than_domain():
    d = toy_problem()
    model = SourceOnly(default_backbone(), 3)
    model.fit((d["xs"][:5], d["ys"][:5]), d["xt"][:3], steps=2, batch_size=64, device="cpu", verbose=False)
    first = model.classifier
    model.fit((d["xs"], d["ys"]), d["xt"], **FIT)
    assert model.classifier is not first


@pytest.mark.gpu
def test_cuda_training_with_amp():
    d = toy_problem()
    model = DANN(default_backbone(), 3, discriminator_hidden=(8,))
    history = model.fit((d["xs"], d["ys"]), d["xt"], steps=4, batch_size=8, device="cuda", amp="fp16", verbose=False)
    assert np.isfinite(history["total"]).all()
    assert model.predict(d["xt"]).device.type == "cpu"


@pytest.mark.slow
def test_torch_compile_matches_eager():
    d = toy_problem()
    histories = []
    for compile_backbone in (False, True):
        torch.manual_seed(0)
        model = DANN(default_backbone(), 3, discriminator_hidden=(8,))
        histories.append(model.fit((d["xs"], d["ys"]), d["xt"], compile=compile_backbone, **FIT))
    eager, compiled = (h.drop(columns="seconds") for h in histories)
    pd.testing.assert_frame_equal(eager, compiled, atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------ fast paths against fp32 eager on the CPU
def _small_images(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xs, xt = torch.randn(24, 3, 12, 12, generator=g), torch.randn(24, 3, 12, 12, generator=g) + 0.5
    return {"xs": xs, "ys": torch.arange(24) % 3, "xt": xt}


def _conv_history(**options) -> pd.DataFrame:
    d = _small_images()
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    model = DANN(backbone, 3, discriminator_hidden=(8,))
    options = {"steps": 6, "batch_size": 8, "seed": 0, "lr": 0.05, "log_every": 1, "device": "cpu", **options}
    return model.fit((d["xs"], d["ys"]), d["xt"], verbose=False, **options).drop(columns="seconds")


def test_fused_optimizers_match_the_loop_implementation():
    for optimizer in ("sgd", "adamw"):
        lr = {"lr": 1e-3} if optimizer == "adamw" else {}
        plain = _conv_history(optimizer=optimizer, fused=False, **lr)
        pd.testing.assert_frame_equal(plain, _conv_history(optimizer=optimizer, fused=True, **lr), atol=1e-5, rtol=0)


def test_channels_last_matches_the_default_memory_format():
    pd.testing.assert_frame_equal(_conv_history(), _conv_history(channels_last=True), atol=1e-4, rtol=0)


def test_bf16_autocast_losses_stay_close_to_fp32():
    fp32, bf16 = _conv_history(), _conv_history(amp="bf16")
    # bf16 keeps 8 bits of mantissa: about 2 significant digits per operation
    pd.testing.assert_frame_equal(fp32[["classification", "domain"]], bf16[["classification", "domain"]],
                                  atol=0.05, rtol=0.05)  # fmt: skip
    assert not fp32["classification"].equals(bf16["classification"])  # autocast did run in bf16


@pytest.mark.gpu
def test_cuda_fast_paths_stay_close_to_fp32_eager():
    """bf16 + channels_last + fused SGD + compile on CUDA against fp32 eager on the same GPU."""
    d = _small_images()

    def run(**options):
        torch.manual_seed(0)
        backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten())  # fmt: skip
        model = DANN(backbone, 3, discriminator_hidden=(8,))
        history = model.fit((d["xs"], d["ys"]), d["xt"], steps=6, batch_size=8, seed=0, lr=0.05, log_every=1,
                            device="cuda", verbose=False, **options)  # fmt: skip
        return history[["classification", "domain"]]

    eager = run(fused=False)
    fast = run(amp="bf16", channels_last=True, fused=True, compile=True)
    pd.testing.assert_frame_equal(eager, fast, atol=0.05, rtol=0.05)


def test_loss_log_averages_each_term_over_the_steps_that_returned_it():
    """A method may change its terms mid-run (ADDA after pre-training): each is logged by name."""
    from adapt.train.engine import _LossLog

    log = _LossLog()
    log.add({"classification": torch.tensor(1.0)}, 0)
    log.add({"classification": torch.tensor(3.0), "confusion": torch.tensor(2.0)}, 1)
    row = log.flush(2)
    assert row == {"classification": 2.0, "confusion": 2.0, "total": 4.0}
    log.add({"confusion": torch.tensor(4.0), "classification": torch.tensor(0.5)}, 2)  # another order
    assert log.flush(3) == {"classification": 0.5, "confusion": 4.0, "total": 4.5}
    log.add({"classification": torch.tensor(1.0)}, 3)
    row = log.flush(4)
    assert row["classification"] == 1.0 and math.isnan(row["confusion"]) and row["total"] == 1.0
