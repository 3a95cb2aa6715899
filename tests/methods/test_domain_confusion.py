"""Domain confusion: its loss and its two training stages."""

import math

import pytest
import torch
from helpers import _built

from adapt import losses


def test_domain_confusion_is_log_two_at_a_uniform_classifier():
    assert float(losses.domain_confusion_loss(torch.zeros(5))) == pytest.approx(math.log(2))
    assert float(losses.domain_confusion_loss(torch.full((5,), 4.0))) > math.log(2)


def test_domain_confusion_trains_the_discriminator_then_confuses_it():
    model, batch = _built("domain_confusion", discriminator_hidden=(16,))
    from adapt.train.engine import Stepper, TrainConfig, make_optimizer

    stepper = Stepper(make_optimizer(model.param_groups(), TrainConfig(lr=0.1)), torch.device("cpu"), None, None)
    terms = model.update(batch, 0.5, stepper)
    assert {"classification", "confusion", "domain"} <= set(terms)


def test_domain_confusion_reads_b_by_1_logits_as_binary():
    z = torch.randn(6)
    torch.testing.assert_close(losses.domain_confusion_loss(z[:, None]), losses.domain_confusion_loss(z))
