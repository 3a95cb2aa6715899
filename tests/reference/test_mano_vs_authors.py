"""MaNo against its authors' code (torch only: nothing to skip).

Renchunzi-Xie/MaNo at commit b9c0262 (b9c026261319e4967e090ac9a8c37615b8267273): ``algs/mano.py``
lines 6-54 (``evaluate``, ``scaling_method``, ``uniform_cross_entropy``), transcribed below as
``AuthorsMaNo`` with the data loader and model handed in instead of ``Base_alg``'s checkpoint loading;
``main.py`` lines 113-117 is how they are called: ``delta`` (the criterion) once, from the first test
set, before ``evaluate``; ``bash/mano.sh`` sets ``--norm_type 4`` and ``--batch_size 128`` everywhere.

Where the library departs (each shown by a test below):
- its score is over the whole target matrix; theirs is the mean of per-batch scores;
- its criterion is over every target example; theirs is the cross-entropy of the *last* of the first five
  batches (``losses = torch.Tensor(loss)`` keeps the last ``loss``, not the list);
- the library scores logits from the model in eval mode; ``evaluate`` and ``uniform_cross_entropy`` run the
  model in train mode (``evaluate`` calls ``train()``), so BatchNorm uses each batch's statistics. The
  models here have no BatchNorm, where the two coincide.

Their ``torch.Tensor(...)`` calls round the criterion and the scores to float32: comparisons are to 1e-6.
"""

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from adapt.validators import ModelOutputs, create_validator
from adapt.validators.accuracy import mano_normalize, mano_score, uniform_cross_entropy


class AuthorsMaNo:
    """algs/mano.py lines 6-54; ``self.args`` holds ``norm_type``, ``delta`` and ``num_classes``."""

    def __init__(self, base_model, val_loader, args, device="cpu"):
        self.base_model, self.val_loader, self.args, self.device = base_model, val_loader, args, device

    def evaluate(self):
        self.base_model.train()
        score_list = []

        for batch_idx, batch_data in enumerate(self.val_loader):  # noqa: B007 (as the authors wrote it)
            inputs, labels = batch_data[0], batch_data[1]
            inputs, labels = inputs.to(self.device), labels.to(self.device)

            with torch.no_grad():
                outputs = self.base_model(inputs)
                outputs = self.scaling_method(outputs)
                score = torch.norm(outputs, p=self.args["norm_type"]) / (
                    (outputs.shape[0] * outputs.shape[1]) ** (1 / self.args["norm_type"])
                )
            # final score
            score_list.append(score)

        scores = torch.Tensor(score_list).numpy()
        return scores.mean()

    def scaling_method(self, logits):
        loss = self.args["delta"]
        if loss > 5:
            outputs = torch.softmax(logits, dim=1)
        else:
            outputs = logits + 1 + logits**2 / 2
            min_value = torch.min(outputs, 1, keepdim=True)[0].expand_as(outputs)

            # Remove min values to ensure all entries are positive. This is especially
            # needed when the approximation order is higher than 2.
            outputs = nn.functional.normalize(outputs - min_value, dim=1, p=1)
        return outputs

    def uniform_cross_entropy(self):
        losses = []
        for batch_idx, batch_data in enumerate(self.val_loader):
            if batch_idx < 5:
                inputs, labels = batch_data[0], batch_data[1]
                inputs, labels = inputs.to(self.device), labels.to(self.device)
                with torch.no_grad():
                    logits = self.base_model(inputs)
                    targets = torch.ones((logits.shape[0], self.args["num_classes"])).to(self.device) * (
                        1 / self.args["num_classes"]
                    )
                    loss = nn.functional.cross_entropy(logits, targets)
                    losses.append(loss)
            else:
                break
        losses = torch.Tensor(loss)
        return torch.mean(losses)


K = 5


def model_and_data(seed, n, scale):
    """A linear 5-class model (no BatchNorm: train and eval mode agree) and n inputs; ``scale`` sets how
    confident it is (large: the criterion exceeds 5 and MaNo uses softmax; small: the Taylor softmax)."""
    torch.manual_seed(seed)
    model = nn.Linear(8, K).double()
    nn.init.normal_(model.weight, std=scale)
    x = torch.randn(n, 8, dtype=torch.float64)
    return model, x, torch.randint(0, K, (n,))


def authors_score(model, x, y, batch_size):
    """main.py lines 115-117: the criterion once, then the score."""
    args = {"norm_type": 4, "delta": 0, "num_classes": K}
    authors = AuthorsMaNo(model, DataLoader(TensorDataset(x, y), batch_size=batch_size), args)
    args["delta"] = authors.uniform_cross_entropy()
    return float(authors.evaluate()), float(args["delta"])


def library_score(model, x):
    with torch.no_grad():
        logits = model(x).numpy()
    return mano_score(mano_normalize(logits)), uniform_cross_entropy(logits)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("scale", "branch"), [(0.3, "taylor"), (8.0, "softmax")])
def test_in_one_batch_the_score_and_criterion_are_the_authors(seed, scale, branch):
    model, x, y = model_and_data(seed, 100, scale)
    theirs, their_criterion = authors_score(model, x, y, batch_size=100)
    ours, criterion = library_score(model, x)
    assert criterion == pytest.approx(their_criterion, rel=1e-6)
    assert (criterion > 5) == (branch == "softmax")
    assert ours == pytest.approx(theirs, rel=1e-6)
    assert 1 / K < ours < K ** (-1 / 4)  # strictly between uniform and one-hot rows


def test_over_batches_the_authors_average_batch_scores_the_library_does_not():
    model, x, y = model_and_data(0, 1000, 0.3)
    theirs, _ = authors_score(model, x, y, batch_size=128)  # bash/mano.sh's batch size
    ours, _ = library_score(model, x)
    per_batch = np.mean([library_score(model, chunk)[0] for chunk in x.split(128)])
    assert theirs == pytest.approx(per_batch, rel=1e-6)  # their score is the mean of batch scores
    assert ours != pytest.approx(theirs, rel=1e-5)
    assert ours == pytest.approx(theirs, abs=0.02)  # the departure is small on an i.i.d. set


def test_the_authors_criterion_is_the_last_of_five_batches():
    model, x, y = model_and_data(0, 1000, 0.3)
    _, their_criterion = authors_score(model, x, y, batch_size=128)
    fifth_batch = library_score(model, x[4 * 128 : 5 * 128])[1]
    assert their_criterion == pytest.approx(fifth_batch, rel=1e-6)
    assert library_score(model, x)[1] != pytest.approx(their_criterion, rel=1e-5)


def test_the_calibrated_estimator_uses_the_target_criterion_for_both_sets():
    """On the source itself ``mano`` gives the source accuracy; its normalization is chosen on the target."""
    model, x, _ = model_and_data(0, 300, 0.3)
    with torch.no_grad():
        logits = model(x)
    labels = logits.argmax(1)
    labels[:60] = (labels[:60] + 1) % K  # 80% right
    same = ModelOutputs(logits, torch.zeros(300, 1), logits, None, labels)
    assert create_validator("mano").score(same) == pytest.approx(0.8)
