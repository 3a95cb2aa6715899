"""The engine's labeled target stream: resume, weight and errors."""

from __future__ import annotations

import pytest
import torch
from helpers import FAST, _dann

from adapt import InputError


class Stop(Exception):
    pass


class StopAt:
    def __init__(self, step: int) -> None:
        self.every = step

    def __call__(self, step, model):
        raise Stop


@pytest.mark.parametrize("as_dataset", [False, True])
def test_a_run_with_labeled_target_examples_resumes_to_the_same_weights(tmp_path, toy, as_dataset):
    labeled = toy["labeled"]
    if as_dataset:  # through adapt's DataLoader and its resumable sampler
        labeled = torch.utils.data.Subset(torch.utils.data.TensorDataset(*toy["labeled"]), range(9))
    fit = lambda m, **kw: m.fit((toy["xs"], toy["ys"]), toy["xt"], target_labeled=labeled, steps=40,  # noqa: E731
                                seed=2, **FAST, **kw)  # fmt: skip
    plain = _dann()
    history = fit(plain)
    path = tmp_path / "run.pt"
    with pytest.raises(Stop):
        fit(_dann(), checkpoint_path=path, checkpoint_every=15, callbacks=[StopAt(25)])
    resumed = _dann()
    resumed_history = fit(resumed, checkpoint_path=path, checkpoint_every=15)
    assert resumed_history.attrs["resumed_from_step"] == 15
    for (name, a), (_, b) in zip(plain.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    columns = [c for c in history.columns if c != "seconds"]
    assert history[columns].equals(resumed_history[columns])


def test_the_labeled_target_weight_scales_its_term(toy):
    terms = []
    for weight in (1.0, 0.25):
        history = _dann().fit((toy["xs"], toy["ys"]), toy["xt"], target_labeled=toy["labeled"], steps=1,
                              labeled_target_weight=weight, **FAST)  # fmt: skip
        terms.append(history["target_classification"].iloc[0])
    assert terms[1] == pytest.approx(0.25 * terms[0], rel=1e-6)


@pytest.mark.bad_input
def test_bad_labeled_target_examples_get_errors_that_name_them(toy):
    source, target = (toy["xs"], toy["ys"]), toy["xt"]
    with pytest.raises(InputError, match=r"labeled target labels must lie in \[0, 3\)"):
        _dann().fit(source, target, target_labeled=(toy["xt"][:4], torch.tensor([0, 1, 2, 5])), steps=1, **FAST)
    with pytest.raises(InputError, match=r"target samples have shape \(6,\) but .* \(5,\)|shape \(5,\)"):
        _dann().fit(source, target, target_labeled=(toy["xt"][:4, :5], torch.tensor([0, 1, 2, 1])), steps=1, **FAST)
    with pytest.raises(InputError, match="labeled target x has 4 rows but y has 3"):
        _dann().fit(source, target, target_labeled=(toy["xt"][:4], torch.tensor([0, 1, 2])), steps=1, **FAST)
    with pytest.raises(InputError, match="labeled target must be labeled"):
        _dann().fit(source, target, target_labeled=toy["xt"][:4], steps=1, **FAST)
    with pytest.raises(ValueError, match="labeled_target_weight must be a finite number >= 0"):
        _dann().fit(source, target, target_labeled=toy["labeled"], steps=1, labeled_target_weight=-1.0, **FAST)
