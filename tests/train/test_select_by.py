"""Label-free checkpoint selection in ``fit`` (``select_by``)."""

import pandas as pd
import pytest
import torch
from helpers import _moons
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from adapt import DANN, SourceOnly


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


@pytest.mark.bad_input
def test_fit_select_by_rejects_validators_that_need_source_labels_or_do_not_exist():
    xs, ys, xt, _ = _moons()
    model = SourceOnly(nn.Linear(2, 4), 2)
    with pytest.raises(ValueError, match="source validation data"):
        model.fit((xs, ys), xt, steps=5, select_by="source_accuracy", verbose=False)
    with pytest.raises(ValueError, match="unknown validator 'nope'"):
        model.fit((xs, ys), xt, steps=5, select_by="nope", verbose=False)
