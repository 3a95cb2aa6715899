"""ATDOC: neighbourhood-aggregation pseudo-labels, its loss and its memory of target examples."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from adapt import methods
from adapt.losses.neighbors import (
    confidence_weighted_cross_entropy,
    neighborhood_predictions,
    sharpened_predictions,
)
from adapt.models.memory import TargetMemory
from adapt.testing import default_backbone, toy_problem
from adapt.train.data import InputError


class Inputs(Dataset):
    """A plain Dataset (not a TensorDataset): batches come through adapt's own DataLoader."""

    def __init__(self, x, y=None) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return (self.x[i], self.y[i]) if self.y is not None else self.x[i]


def test_neighborhood_aggregation_and_memory_update_match_pytorch_adapt():
    from pytorch_adapt.layers import NeighborhoodAggregation

    torch.manual_seed(0)
    n, d, c = 40, 6, 4
    reference = NeighborhoodAggregation(n, d, c, k=5, T=0.5)
    reference.pred_memory = torch.rand(n, c).softmax(dim=1)  # not the uniform start: neighbours must matter
    memory = TargetMemory(d, c)
    memory.resize(n)
    memory.features, memory.predictions = reference.feat_memory.clone(), reference.pred_memory.clone()
    features, logits = torch.randn(8, d), torch.randn(8, c)
    index = torch.tensor([3, 0, 17, 39, 8, 21, 5, 30])

    pseudo_labels, reference_predictions = reference(features, logits, update=True, idx=index)
    ours = neighborhood_predictions(features, memory.features, memory.predictions, 5, exclude=index)
    memory.update(index, features, sharpened_predictions(logits, 0.5))

    torch.testing.assert_close(ours, reference_predictions)
    assert torch.equal(ours.argmax(dim=1), pseudo_labels)
    torch.testing.assert_close(memory.features, reference.feat_memory)
    torch.testing.assert_close(memory.predictions, reference.pred_memory)


def test_an_example_is_never_its_own_neighbour():
    memory_features = F.normalize(torch.eye(3), dim=1)
    memory_predictions = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    # the query is stored example 0 itself: with k=1 its neighbour must be another row
    q = neighborhood_predictions(
        torch.tensor([[1.0, 0.1, 0.0]]), memory_features, memory_predictions, 1, torch.tensor([0])
    )
    assert torch.equal(q, torch.tensor([[0.0, 1.0]]))
    q_self = neighborhood_predictions(torch.tensor([[1.0, 0.1, 0.0]]), memory_features, memory_predictions, 1)
    assert torch.equal(q_self, torch.tensor([[1.0, 0.0]]))


def test_confidence_weighted_cross_entropy_is_the_formula():
    logits = torch.tensor([[2.0, 0.0], [0.5, 1.0], [0.0, 0.0]])
    neighbours = torch.tensor([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]])
    ce = [-F.log_softmax(logits[0], 0)[0], -F.log_softmax(logits[1], 0)[1], -F.log_softmax(logits[2], 0)[0]]
    expected = (0.7 * ce[0] + 0.8 * ce[1] + 0.6 * ce[2]) / (0.7 + 0.8 + 0.6)
    torch.testing.assert_close(confidence_weighted_cross_entropy(logits, neighbours), expected)


def test_sharpened_predictions_square_and_normalize_each_class_over_the_batch():
    logits = torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1]]))
    expected = torch.tensor([[0.25 / 1.06, 0.25 / 0.26], [0.81 / 1.06, 0.01 / 0.26]])
    torch.testing.assert_close(sharpened_predictions(logits, 0.5), expected)


@pytest.mark.parametrize("kind", ["tensors", "tensor_dataset", "dataset"])
def test_memory_rows_are_the_drawn_target_examples(kind):
    """With a negligible lr the weights do not move, so each stored row must be the features of the example at
    that dataset position: the engine's indices are right on every data path."""
    data = toy_problem(n=32)
    xt = data["xt"]
    target = {"tensors": xt, "tensor_dataset": TensorDataset(xt), "dataset": Inputs(xt)}[kind]
    torch.manual_seed(0)
    model = methods.create("atdoc", default_backbone(), 3)
    model.fit((data["xs"], data["ys"]), target, steps=1, batch_size=8, lr=1e-12, seed=0, verbose=False)
    visited = (model.memory.predictions != 1.0 / 3).any(dim=1).nonzero().flatten()
    assert len(visited) == 8
    model.eval()
    with torch.no_grad():
        expected = F.normalize(model.embed(xt[visited]), dim=1)
    torch.testing.assert_close(model.memory.features[visited], expected)


def test_atdoc_says_a_users_dataloader_hides_the_positions():
    data = toy_problem()
    model = methods.create("atdoc", default_backbone(), 3)
    loader = DataLoader(TensorDataset(data["xt"]), batch_size=8)
    with pytest.raises(InputError, match="DataLoader of your own"):
        model.fit((data["xs"], data["ys"]), loader, steps=2, batch_size=8, verbose=False)
    with pytest.raises(InputError, match="needs more than 5 target examples"):
        methods.create("atdoc", default_backbone(), 3).fit((data["xs"], data["ys"]), data["xt"][:5], steps=1)


def test_atdoc_term_ramps_with_progress_and_loads_back(tmp_path):
    data = toy_problem()
    torch.manual_seed(0)
    model = methods.create("atdoc", default_backbone(), 3)
    history = model.fit((data["xs"], data["ys"]), data["xt"], steps=40, batch_size=8, seed=0, verbose=False,
                        log_every=10)  # fmt: skip
    assert history["pseudo_label"].iloc[0] < history["pseudo_label"].iloc[-1]  # the weight grows from 0
    model.save(tmp_path / "atdoc.pt")
    loaded = methods.Adapter.load(tmp_path / "atdoc.pt", backbone=default_backbone())
    assert len(loaded.memory) == len(data["xt"])
    torch.testing.assert_close(loaded.memory.predictions, model.memory.predictions)
