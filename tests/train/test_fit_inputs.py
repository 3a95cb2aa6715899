"""Bad input gets a clear error naming the problem."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from adapt import DAN, DANN, DeepCORAL, InputError, NonFiniteLossError, NotFittedError, SourceOnly, methods
from adapt.testing import default_backbone

FIT = dict(steps=3, batch_size=8, device="cpu", verbose=False)


def data(n=16, dim=6):
    return torch.randn(n, dim), torch.arange(n) % 3, torch.randn(n, dim)


def test_shapes_disagree():
    xs, ys, _ = data()
    with pytest.raises(InputError, match=r"source samples have shape \(6,\) but target samples have \(5,\)"):
        SourceOnly(default_backbone(), 3).fit((xs, ys), torch.randn(16, 5), **FIT)


def test_channels_disagree():
    conv = nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(InputError, match=r"channels differ \(1 vs 3\)"):
        SourceOnly(conv, 3).fit((torch.randn(8, 1, 8, 8), torch.arange(8) % 3), torch.randn(8, 3, 8, 8), **FIT)


@pytest.mark.bad_input
def test_backbone_rejects_input_channels():
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(InputError, match=r"backbone failed on inputs of shape \(2, 1, 8, 8\)"):
        SourceOnly(conv, 3).fit((torch.randn(8, 1, 8, 8), torch.arange(8) % 3), torch.randn(8, 1, 8, 8), **FIT)


@pytest.mark.parametrize(
    "labels, message",
    [
        (torch.tensor([0, 1, 2, 3] * 4), r"must lie in \[0, 3\).*from 0 to 3"),
        (torch.tensor([-1, 0, 1, 2] * 4), r"must lie in \[0, 3\).*from -1 to 2"),
        (torch.zeros(16), "class labels must be integers"),
        (torch.zeros(16, 2, dtype=torch.long), "must be 1-D"),
        (torch.zeros(15, dtype=torch.long), "16 rows but y has 15"),
    ],
)
@pytest.mark.bad_input
def test_bad_labels(labels, message):
    xs, _, xt = data()
    with pytest.raises(InputError, match=message):
        SourceOnly(default_backbone(), 3).fit((xs, labels), xt, **FIT)


class ItemDataset(torch.utils.data.Dataset):
    """A generic map-style dataset (no in-memory fast path)."""

    def __init__(self, *tensors):
        self.tensors = tensors

    def __len__(self):
        return len(self.tensors[0])

    def __getitem__(self, i):
        return tuple(t[i] for t in self.tensors)


@pytest.mark.bad_input
def test_bad_labels_from_a_dataset_are_caught_per_batch():
    xs, _, xt = data()
    with pytest.raises(InputError, match=r"source batch 1 labels must lie in \[0, 3\)"):
        SourceOnly(default_backbone(), 3).fit(ItemDataset(xs, torch.full((16,), 7)), xt, **FIT)
    with pytest.raises(InputError, match=r"source labels must lie in \[0, 3\)"):
        SourceOnly(default_backbone(), 3).fit(TensorDataset(xs, torch.full((16,), 7)), xt, **FIT)


@pytest.mark.bad_input
def test_empty_domains():
    xs, ys, xt = data()
    with pytest.raises(InputError, match="source x is empty"):
        SourceOnly(default_backbone(), 3).fit((xs[:0], ys[:0]), xt, **FIT)
    with pytest.raises(InputError, match="target x is empty"):
        SourceOnly(default_backbone(), 3).fit((xs, ys), xt[:0], **FIT)
    with pytest.raises(InputError, match="target dataset is empty"):
        SourceOnly(default_backbone(), 3).fit((xs, ys), ItemDataset(xt[:0]), **FIT)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_inputs(bad):
    xs, ys, xt = data()
    xt[5, 2] = bad
    kind = "NaN" if bad != bad else "inf"
    with pytest.raises(InputError, match=f"target x contains {kind} values \\(first at row 5\\)"):
        SourceOnly(default_backbone(), 3).fit((xs, ys), xt, **FIT)


def test_non_finite_batch_from_a_dataset():
    xs, ys, xt = data()
    xs[10] = float("nan")
    with pytest.raises(InputError, match=r"source batch \d+ x contains NaN values \(first at row \d\)"):
        SourceOnly(default_backbone(), 3).fit(ItemDataset(xs, ys), xt, **FIT)


def test_non_float_inputs():
    xs, ys, xt = data()
    with pytest.raises(InputError, match=r"dtype torch.uint8.*x.float\(\) / 255"):
        SourceOnly(default_backbone(), 3).fit((xs.to(torch.uint8), ys), xt, **FIT)


def test_non_finite_loss_names_step_and_term():
    class Explodes(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(6, 4)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            out = self.lin(x)
            if self.training and self.calls > 3:
                out = out * float("inf")
            return out

    xs, ys, xt = data()
    with pytest.raises(
        NonFiniteLossError, match=r"loss term '(classification|mmd)' became non-finite \(nan\) at step 2 of 20"
    ):
        DAN(Explodes(), 3).fit((xs, ys), xt, steps=20, batch_size=8, device="cpu", verbose=False, log_every=10)


def test_batch_too_small_for_pairwise_methods():
    xs, ys, xt = data()
    for cls in (DAN, DeepCORAL):
        with pytest.raises(
            InputError, match=f"{cls.__name__} needs at least 2 target examples per batch, but batches have 1"
        ):
            cls(default_backbone(), 3).fit((xs, ys), xt[:1], **FIT)
    with pytest.raises(InputError, match="needs at least 2 source examples"):
        DAN(default_backbone(), 3).fit(DataLoader(TensorDataset(xs, ys), batch_size=1), xt, **FIT)


@pytest.mark.bad_input
def test_unknown_method_and_bad_num_classes():
    with pytest.raises(ValueError, match=r"unknown method 'foo'; available: adabn, .*, dann, .*, source_only"):
        methods.create("foo", default_backbone(), 3)
    for bad in (1, 0, 2.5, True):
        with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
            DANN(default_backbone(), bad)
    with pytest.raises(TypeError, match=r"backbone must be a torch\.nn\.Module"):
        DANN(lambda x: x, 3)


def test_backbone_must_return_2d_features():
    conv = nn.Conv2d(1, 2, 3)
    with pytest.raises(InputError, match=r"2-D \(batch, features\) tensor, got \(2, 2, 6, 6\)"):
        SourceOnly(conv, 3).fit((torch.randn(8, 1, 8, 8), torch.arange(8) % 3), torch.randn(8, 1, 8, 8), **FIT)


@pytest.mark.bad_input
def test_wrong_feature_dim():
    xs, ys, xt = data()
    with pytest.raises(InputError, match="feature_dim=5 but the backbone returns 8"):
        SourceOnly(default_backbone(), 3, feature_dim=5).fit((xs, ys), xt, **FIT)


@pytest.mark.bad_input
def test_predict_before_fit_and_bad_paths(tmp_path):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        DANN(default_backbone(), 3).predict(torch.randn(2, 6))
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        DANN.load(tmp_path / "missing.pt", backbone=default_backbone())


def test_load_checks_method_class(tmp_path):
    xs, ys, xt = data()
    model = SourceOnly(default_backbone(), 3)
    model.fit((xs, ys), xt, **FIT)
    model.save(tmp_path / "m.pt")
    with pytest.raises(ValueError, match="holds a SourceOnly model, not DANN"):
        DANN.load(tmp_path / "m.pt", backbone=default_backbone())
    from adapt import Adapter

    assert isinstance(Adapter.load(tmp_path / "m.pt", backbone=default_backbone()), SourceOnly)


@pytest.mark.bad_input
def test_unknown_fit_option_and_bad_config():
    xs, ys, xt = data()
    with pytest.raises(TypeError, match=r"unknown fit option\(s\) learning_rate; valid:.*lr"):
        SourceOnly(default_backbone(), 3).fit((xs, ys), xt, learning_rate=0.1, **FIT)
    with pytest.raises(ValueError, match="unknown lr_schedule 'warm'"):
        SourceOnly(default_backbone(), 3).fit((xs, ys), xt, lr_schedule="warm", **FIT)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        SourceOnly(default_backbone(), 3).fit((xs, ys), xt, steps=0, device="cpu")


@pytest.mark.bad_input
def test_unlabeled_source_and_wrong_types():
    xs, _, xt = data()
    with pytest.raises(InputError, match="source must be labeled"):
        SourceOnly(default_backbone(), 3).fit(xs, xt, **FIT)
    with pytest.raises(InputError, match="unsupported target type str"):
        SourceOnly(default_backbone(), 3).fit((xs, torch.arange(16) % 3), "images/", **FIT)
    with pytest.raises(InputError, match="dtype object"):
        SourceOnly(default_backbone(), 3).fit((np.array([None] * 4), np.zeros(4, int)), xt, **FIT)


def test_predict_names_inputs_that_do_not_match_what_the_model_was_fitted_on(tmp_path):
    xs, ys, xt = data()
    model = SourceOnly(default_backbone(), 3)
    model.fit((xs, ys), xt, **FIT)
    with pytest.raises(
        InputError, match=r"inputs of shape \(N, 5\) but SourceOnly was fitted on inputs of shape \(N, 6\)"
    ):
        model.predict(torch.randn(4, 5))
    model.save(tmp_path / "m.pt")
    loaded = SourceOnly.load(tmp_path / "m.pt", backbone=default_backbone())
    with pytest.raises(InputError, match=r"inputs of shape \(N, 2, 3\) but SourceOnly was fitted"):
        loaded.predict(torch.randn(4, 2, 3))
    assert torch.equal(loaded.predict(xt), model.predict(xt))
    conv = nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    images = SourceOnly(conv, 3)
    images.fit((torch.randn(8, 1, 8, 8), torch.arange(8) % 3), torch.randn(8, 1, 8, 8), **FIT)
    assert images.predict(torch.randn(2, 1, 12, 12)).shape == (2,)  # another image size is fine
    with pytest.raises(
        InputError, match=r"inputs of shape \(N, 3, 8, 8\) but SourceOnly was fitted on inputs of shape \(N, 1, 8, 8\)"
    ):
        images.predict(torch.randn(2, 3, 8, 8))


@pytest.mark.parametrize("method", [DeepCORAL, DAN])
def test_a_dataloader_ending_in_a_batch_of_one_is_fine_for_pairwise_losses(method):
    x, y = torch.randn(33, 3), torch.randint(0, 2, (33,))
    source = DataLoader(TensorDataset(x, y), batch_size=16)  # epochs end with a batch of 1
    target = DataLoader(TensorDataset(x + 1), batch_size=16)
    model = method(nn.Linear(3, 4), 2)
    history = model.fit(source, target, steps=10, verbose=False)  # 10 steps cross several epoch ends
    assert len(history) and np.isfinite(history["total"]).all()


@pytest.mark.bad_input
def test_a_dataloader_with_only_batches_of_one_is_a_clear_error():
    x, y = torch.randn(5, 3), torch.randint(0, 2, (5,))
    with pytest.raises(InputError, match="needs at least 2 source examples per batch"):
        DeepCORAL(nn.Linear(3, 4), 2).fit(DataLoader(TensorDataset(x, y), batch_size=1), x, steps=3, verbose=False)


@pytest.mark.bad_input
def test_source_only_with_batchnorm_and_batch_size_one_is_a_clear_error():
    x, y = torch.randn(10, 3), torch.randint(0, 2, (10,))
    model = SourceOnly(nn.Linear(3, 4), 2, bottleneck_dim=8)
    with pytest.raises(InputError, match=r"at least 2 source examples.*BatchNorm.*'bottleneck.1'"):
        model.fit((x, y), x, batch_size=1, steps=3, verbose=False)
    DANN(nn.Linear(3, 4), 2, bottleneck_dim=8).fit((x, y), x, batch_size=1, steps=3, verbose=False)  # 1 + 1 is fine
