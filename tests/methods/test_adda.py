"""ADDA: source pre-training, the adapted copy and its confusion loss."""

import torch
import torch.nn.functional as F
from helpers import _built

from adapt import methods
from adapt.batch import Batch
from adapt.testing import default_backbone, toy_problem


def test_adda_pretrains_on_the_source_then_adapts_a_copy():
    d = toy_problem()
    torch.manual_seed(0)
    model = methods.ADDA(default_backbone(), 3, discriminator_hidden=(8,))
    model.fit((d["xs"], d["ys"]), d["xt"], steps=4, batch_size=8, device="cpu", verbose=False, log_every=1)
    assert bool(model.adapting)
    classifier = model.classifier.weight.detach().clone()
    source_encoder = {k: v.clone() for k, v in model.source_encoder.state_dict().items()}
    from adapt.train.engine import Stepper, TrainConfig, make_optimizer

    stepper = Stepper(make_optimizer(model.param_groups(), TrainConfig(lr=0.1)), torch.device("cpu"), None, None)
    model.train()
    before = model.backbone[0].weight.detach().clone()
    terms = model.update(Batch(d["xs"], d["ys"], d["xt"], step=10), 0.9, stepper)
    assert {"classification", "confusion", "domain"} <= set(terms)
    assert torch.equal(model.classifier.weight, classifier)  # the classifier stays as pre-trained
    assert all(torch.equal(v, source_encoder[k]) for k, v in model.source_encoder.state_dict().items())
    assert not torch.equal(model.backbone[0].weight, before)  # the target encoder moves


def test_adda_confusion_is_the_inverted_label_gan_loss():
    model, batch = _built("adda", discriminator_hidden=(8,))
    terms = model.loss(batch, 0.9)
    logits = model.discriminator(model.embed(batch.target_x))
    expected = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))  # target called source
    torch.testing.assert_close(terms["confusion"], expected)


def test_adda_history_shows_the_adaptation_terms_after_pretraining():
    d = toy_problem()
    model = methods.ADDA(default_backbone(), 3, discriminator_hidden=(8,))
    history = model.fit((d["xs"], d["ys"]), d["xt"], steps=8, batch_size=8, device="cpu", verbose=False, log_every=2)
    assert history["confusion"].iloc[:2].isna().all() and history["confusion"].iloc[2:].notna().all()
