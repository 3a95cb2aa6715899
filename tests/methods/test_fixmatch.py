"""FixMatch-style self-training: the views, pseudo-labels and the unlabeled loss."""

import pytest
import torch
import torch.nn.functional as F
from helpers import _built


@pytest.mark.parametrize("shape", [(16, 5), (16, 3, 12, 12)])
def test_views_are_seeded_per_example_and_strong_is_farther(shape):
    from adapt.methods.augment import strong_view, weak_view

    x = torch.randn(shape)
    torch.manual_seed(0)
    weak = weak_view(x)
    torch.manual_seed(0)
    assert torch.equal(weak, weak_view(x))  # the global generator: a seeded fit sees the same views
    strong = strong_view(x)
    assert weak.shape == strong.shape == x.shape
    assert 0 < (weak - x).norm() < (strong - x).norm()
    per_example = (weak - x).flatten(1).norm(dim=1)
    assert per_example.std() > 0  # each example gets its own draw


def test_fixmatch_pseudo_labels_only_confident_examples():
    model, batch = _built("fixmatch", threshold=1.0)
    assert model.loss(batch, 0.5)["pseudo_label"].item() == 0.0  # nothing is 100% sure
    model, batch = _built("fixmatch", threshold=0.0)
    torch.manual_seed(0)
    term = model.loss(batch, 0.5)["pseudo_label"]
    assert term.item() > 0


def test_fixmatch_term_is_the_papers_unlabeled_loss_on_fixed_views(monkeypatch):
    """Sohn et al. 2020: mean over the batch of 1[max q >= tau] * CE(argmax q, p_strong), q from the weak view."""
    import adapt.methods.fixmatch as fixmatch

    model, batch = _built("fixmatch", trade_off=0.7)
    monkeypatch.setattr(fixmatch, "weak_view", lambda x: x)
    monkeypatch.setattr(fixmatch, "strong_view", lambda x: x * 0.5)
    model.eval()  # the same logits in both passes below (no BatchNorm here, but no dropout surprises either)
    with torch.no_grad():
        n = len(batch.source_x)
        logits = model.classifier(model.embed(torch.cat([batch.source_x, batch.target_x, batch.target_x * 0.5])))
        weak, strong = logits[n : 2 * n], logits[2 * n :]
    q = weak.softmax(1)
    model.threshold = float(q.max(1).values.median())  # half of the examples pass
    term = model.loss(batch, 0.5)["pseudo_label"]
    mask = (q.max(1).values >= model.threshold).float()
    expected = 0.7 * (mask * F.cross_entropy(strong, q.argmax(1), reduction="none")).mean()
    assert 0 < mask.mean() < 1  # some examples pass the threshold, some do not
    torch.testing.assert_close(term.detach(), expected)
