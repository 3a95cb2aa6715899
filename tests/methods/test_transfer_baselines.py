"""The TargetOnly and FineTune baselines."""

import pytest
import torch
from helpers import FAST, _dann, nearest_source_centroid

from adapt import FineTune, InputError, SourceOnly, TargetOnly
from adapt.models import MLP
from adapt.testing import default_backbone


def test_target_only_learns_from_the_labeled_target_alone(toy, swapped):
    torch.manual_seed(0)
    model = TargetOnly(default_backbone(), 3)
    history = model.fit(target_labeled=toy["labeled"], steps=60, lr=0.05, **FAST)
    assert list(history.columns) == ["step", "progress", "lr", "seconds", "target_classification", "total"]
    torch.manual_seed(0)
    model = TargetOnly(default_backbone(), 3)
    model.fit(target_labeled=swapped["labeled"], steps=150, lr=0.05, **FAST)
    x, y = swapped["scored"]
    centroid = float((nearest_source_centroid(swapped["xs"], swapped["ys"], x) == y).float().mean())
    assert model.score(x, y) > max(centroid, 1 / 3) + 0.4  # beats the source's centroids and chance
    with pytest.raises(InputError, match="TargetOnly trains on labeled target examples"):
        TargetOnly(default_backbone(), 3).fit(target=toy["xt"], steps=1, **FAST)
    with pytest.raises(InputError, match="TargetOnly does not use source data"):
        TargetOnly(default_backbone(), 3).fit((toy["xs"], toy["ys"]), target_labeled=toy["labeled"], steps=1, **FAST)


def test_finetune_learns_what_the_source_model_got_wrong(swapped):
    torch.manual_seed(0)
    source = SourceOnly(default_backbone(), 3)
    source.fit((swapped["xs"], swapped["ys"]), swapped["xt"], steps=100, lr=0.05, **FAST)
    finetuned = FineTune.from_source(source)
    finetuned.fit(target_labeled=swapped["labeled"], steps=150, lr=0.05, **FAST)
    assert finetuned.score(*swapped["scored"]) > source.score(*swapped["scored"]) + 0.4


@pytest.fixture(scope="module")
def source_model(toy):
    torch.manual_seed(0)
    model = SourceOnly(MLP(6, (16,)), 3, bottleneck_dim=8)
    model.fit((toy["xs"], toy["ys"]), toy["xt"], steps=40, lr=0.05, **FAST)
    return model


@pytest.mark.parametrize("layers, frozen", [("all", ()), ("head", ("backbone", "bottleneck")),
                                            ("bottleneck+head", ("backbone",))])  # fmt: skip
def test_finetune_trains_the_layers_asked_for_and_leaves_the_source_model_alone(toy, source_model, layers, frozen):
    before = {k: v.clone() for k, v in source_model.state_dict().items()}
    model = FineTune.from_source(source_model, train_layers=layers)
    history = model.fit(target_labeled=toy["labeled"], steps=30, lr=0.05, **FAST)
    assert "target_classification" in history
    for key, value in source_model.state_dict().items():
        assert torch.equal(value, before[key]), f"the source model's {key} changed"
    for key, value in model.state_dict().items():
        part = key.split(".")[0]
        changed = not torch.equal(value, before[key])
        if part in frozen:  # weights and BatchNorm statistics stay the source model's
            assert not changed, f"{layers}: frozen {key} changed"
        elif (key.endswith("weight") and part != "bottleneck") or part == "classifier":
            assert changed, f"{layers}: {key} did not train"


def test_uda_then_finetune_save_load_and_errors(toy, tmp_path):
    dann = _dann()
    dann.fit((toy["xs"], toy["ys"]), toy["xt"], steps=20, **FAST)
    model = FineTune.from_source(dann, train_layers="head")
    model.fit(toy["xt"], target_labeled=toy["labeled"], steps=10, **FAST)
    model.save(tmp_path / "ft.pt")
    loaded = FineTune.load(tmp_path / "ft.pt", backbone=default_backbone())
    assert loaded.train_layers == "head"
    assert torch.equal(loaded.predict_logits(toy["xt"]), model.predict_logits(toy["xt"]))
    with pytest.raises(InputError, match="FineTune trains on labeled target examples"):
        FineTune.from_source(dann).fit(toy["xt"], steps=1, **FAST)
    with pytest.raises(ValueError, match="train_layers must be one of all, head, bottleneck\\+head"):
        FineTune.from_source(dann, train_layers="last")


def test_target_only_and_finetune_are_deterministic(toy, source_model):
    def logits(make):
        model = make()
        model.fit(target_labeled=toy["labeled"], steps=10, seed=4, **FAST)
        return model.predict_logits(toy["xt"])

    def target_only():
        torch.manual_seed(0)
        return TargetOnly(default_backbone(), 3)

    assert torch.equal(logits(target_only), logits(target_only))
    finetune = lambda: FineTune.from_source(source_model)  # noqa: E731
    assert torch.equal(logits(finetune), logits(finetune))
