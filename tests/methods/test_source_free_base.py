"""What every source-free method shares: no source data, from_source, the evaluation view, memories."""

import inspect

import pytest
import torch
import torch.nn.functional as F
from helpers import shifted_blobs
from torch import nn

from adapt import DANN, FineTune
from adapt.errors import InputError
from adapt.models import MLP
from adapt.sourcefree import NRC, SHOT, SHOTIM, SOURCE_FREE_METHODS, AaD, split_classifier


def test_no_source_data_reaches_a_source_free_method(source_model, monkeypatch):
    assert "source" not in inspect.signature(SHOT.fit).parameters
    with pytest.raises(TypeError):
        SHOT.from_source(source_model).fit(target=torch.zeros(8, 5), source=torch.zeros(8, 5))
    seen = []
    original = SHOT.loss

    def spy(self, batch, progress):
        seen.append((batch.source_x.numel(), batch.source_y.numel(), batch.target_x.shape[0]))
        return original(self, batch, progress)

    monkeypatch.setattr(SHOT, "loss", spy)
    SHOT.from_source(source_model).fit(shifted_blobs(0)[2], steps=5, batch_size=16, verbose=False)
    assert seen == [(0, 0, 16)] * 5


def test_from_source_takes_plain_modules_and_says_what_it_needs():
    sequential = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 4))
    _, bottleneck, head = split_classifier(sequential)
    assert isinstance(head, nn.Linear) and head.out_features == 4 and isinstance(bottleneck, nn.Identity)
    assert head is not sequential[-1]  # copies

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.fc = nn.Linear(5, 8), nn.Linear(8, 4)

        def forward(self, x):
            return self.fc(torch.relu(self.body(x)))

    shot = SHOT.from_source(Net(), head="fc")
    assert shot.num_classes == 4 and shot(torch.zeros(2, 5)).shape == (2, 4)
    with pytest.raises(InputError, match="name it"):
        SHOT.from_source(Net())
    with pytest.raises(InputError, match="no module 'head'"):
        SHOT.from_source(Net(), head="head")
    with pytest.raises(InputError, match=r"must be an nn\.Linear"):
        SHOT.from_source(nn.Sequential(nn.Linear(5, 4), nn.ReLU()))
    with pytest.raises(RuntimeError, match="from_source"):
        SHOT(nn.Linear(5, 8), 4).fit(torch.zeros(8, 5), steps=1)
    assert SOURCE_FREE_METHODS.get("shot") is SHOT and SOURCE_FREE_METHODS.get("shot_im") is SHOTIM


def test_every_fit_takes_an_evaluation_view_for_its_validators(source_model):
    """``target_eval`` reaches the selection validator (and the methods) in every fit: a UDA method's,
    a source-free method's and FineTune's."""
    xs, ys, xt, yt = shifted_blobs(0)
    labeled = (xt[:16], yt[:16])
    views = []

    class Spy:
        every = 1

        def __call__(self, step, model):
            views.append(model.target_eval_)

    DANN(MLP(5, (8,)), 4).fit((xs, ys), xt[:50], target_eval=xt, steps=1, callbacks=[Spy()], verbose=False)
    SHOT.from_source(source_model).fit(xt[:50], target_eval=xt, steps=1, callbacks=[Spy()], verbose=False)
    FineTune.from_source(source_model).fit(target_labeled=labeled, target_eval=xt, steps=1, callbacks=[Spy()],
                                           verbose=False, select_by="entropy")  # fmt: skip
    assert len(views) == 3 and all(v is xt for v in views)
    with pytest.warns(DeprecationWarning, match="select_data.*target_eval"):
        DANN(MLP(5, (8,)), 4).fit((xs, ys), xt, select_data=xt, steps=1, verbose=False)


def test_nrc_and_aad_fill_their_memory_from_the_target_before_the_first_step(source_model, monkeypatch):
    xt = shifted_blobs(0)[2]
    for cls in (NRC, AaD):
        adapted = cls.from_source(source_model)
        adapted.prepare_target(len(xt))
        adapted.target_data_ = xt
        adapted.fill_memory(adapted.memory)
        expected = F.normalize(source_model.features(xt), dim=1)
        torch.testing.assert_close(adapted.memory.features, expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(adapted.memory.predictions, source_model.predict_proba(xt), rtol=1e-4, atol=1e-5)
        calls: list[int] = []
        monkeypatch.setattr(cls, "fill_memory", lambda self, memory, calls=calls: calls.append(len(memory)))
        cls.from_source(source_model).fit(xt, steps=3, batch_size=32, seed=0, verbose=False)
        assert calls == [len(xt)], cls.__name__  # once, before the first step
