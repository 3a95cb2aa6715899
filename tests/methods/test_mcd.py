"""MCD: the classifier discrepancy and its training stages."""

import math

import pytest
import torch
from helpers import _built

from adapt import losses


def test_classifier_discrepancy_closed_form():
    a = torch.tensor([[0.0, 0.0]])  # softmax (0.5, 0.5)
    b = torch.tensor([[math.log(3.0), 0.0]])  # softmax (0.75, 0.25)
    assert float(losses.classifier_discrepancy(a, b)) == pytest.approx(0.25)
    assert float(losses.classifier_discrepancy(b, b)) == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        losses.classifier_discrepancy(torch.zeros(2, 3), torch.zeros(2, 4))


def test_mcd_stages_train_their_modules():
    model, batch = _built("mcd", generator_steps=2)
    from adapt.train.engine import Stepper, TrainConfig, make_optimizer

    stepper = Stepper(make_optimizer(model.param_groups(), TrainConfig(lr=0.1)), torch.device("cpu"), None, None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    terms = model.update(batch, 0.5, stepper)
    after = model.state_dict()
    assert {"classification", "discrepancy", "generator_discrepancy"} <= set(terms)
    for key in ("classifier.weight", "second_classifier.weight", "backbone.0.weight"):
        assert not torch.equal(before[key], after[key]), key
    # predictions average the two classifiers
    x = batch.target_x
    features = model.embed(x)
    torch.testing.assert_close(model(x), (model.classifier(features) + model.second_classifier(features)) / 2)


def test_mcd_discrepancy_stage_raises_the_discrepancy_and_the_generator_stage_lowers_it():
    model, batch = _built("mcd")
    from adapt.train.engine import Stepper, TrainConfig, make_optimizer

    stepper = Stepper(
        make_optimizer(model.param_groups(), TrainConfig(lr=0.05, momentum=0.0)), torch.device("cpu"), None, None
    )

    def discrepancy():
        with torch.no_grad():
            return float(model._discrepancy(model.embed(batch.target_x)))

    start = discrepancy()
    for _ in range(5):  # stage B alone
        stepper.step(sum(model.loss(batch, 0.5).values()), only=[model.classifier, model.second_classifier])
    raised = discrepancy()
    for _ in range(5):  # stage C alone
        stepper.step(model._discrepancy(model.embed(batch.target_x)), only=[model.backbone, model.bottleneck])
    assert raised > start and discrepancy() < raised
