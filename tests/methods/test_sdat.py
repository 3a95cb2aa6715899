"""SDAT (``fit(sam_rho=...)``) against the authors' training step.

val-iisc/SDAT at 33d7429d37522972edda608cb802a686e4b9e794: ``common/utils/sam.py`` lines 5-59 (``SAM``,
transcribed below as written, from davda54/sam) and ``examples/cdan_sdat.py`` lines 97-101 (the optimizers:
SAM over the classifier's parameters with a Nesterov SGD base, a separate Nesterov SGD for the domain
discriminator) and lines 213-256 (one training step: the classification loss alone, backward,
``first_step``; at the perturbed weights the classification and adversarial losses, backward, the
discriminator's step, ``second_step``), followed below with the library's CDAN (``"tllib"`` preset, TLlib's
``ConditionalDomainAdversarialLoss``, of which their ``dalib`` is a copy) as the model and its losses.
Their learning-rate schedulers are left out: both sides run a constant rate here.
"""

import copy

import pytest
import torch
import torch.nn.functional as F

from adapt.batch import Batch
from adapt.methods import create
from adapt.testing import default_backbone, toy_problem
from adapt.train.engine import Stepper, TrainConfig, make_optimizer


# fmt: off
class SAM(torch.optim.Optimizer):
    def __init__(self, params, base_optimizer, rho=0.05, adaptive=False, **kwargs):
        assert rho >= 0.0, f"Invalid rho, should be non-negative: {rho}"

        defaults = dict(rho=rho, adaptive=adaptive, **kwargs)
        super(SAM, self).__init__(params, defaults)  # noqa: UP008

        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups

    @torch.no_grad()
    def first_step(self, zero_grad=False):
        grad_norm = self._grad_norm()
        for group in self.param_groups:
            scale = group["rho"] / (grad_norm + 1e-12)

            for p in group["params"]:
                if p.grad is None: continue  # noqa: E701
                e_w = (torch.pow(p, 2) if group["adaptive"] else 1.0) * p.grad * scale.to(p)
                p.add_(e_w)  # climb to the local maximum "w + e(w)"
                self.state[p]["e_w"] = e_w

        if zero_grad: self.zero_grad()  # noqa: E701

    @torch.no_grad()
    def second_step(self, zero_grad=False):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None: continue  # noqa: E701
                p.sub_(self.state[p]["e_w"])  # get back to "w" from "w + e(w)"

        self.base_optimizer.step()  # do the actual "sharpness-aware" update

        if zero_grad: self.zero_grad()  # noqa: E701

    def _grad_norm(self):
        shared_device = self.param_groups[0]["params"][0].device
        norm = torch.norm(
                    torch.stack([
                        ((torch.abs(p) if group["adaptive"] else 1.0) * p.grad).norm(p=2).to(shared_device)
                        for group in self.param_groups for p in group["params"]
                        if p.grad is not None
                    ]),
                    p=2
               )
        return norm
# fmt: on

LR, MOMENTUM, WD, RHO = 0.05, 0.9, 1e-3, 0.05


def _model():
    torch.manual_seed(0)
    model = create("cdan", default_backbone(), 3, preset="tllib", discriminator_hidden=(16,), bottleneck_dim=8)
    model.build(toy_problem()["xs"][:2])
    model.prepare_target(32)
    return model.train()


def _batches(steps):
    data = toy_problem()
    g = torch.Generator().manual_seed(1)
    for step in range(steps):
        i, j = torch.randperm(32, generator=g)[:16], torch.randperm(32, generator=g)[:16]
        yield Batch(data["xs"][i], data["ys"][i], data["xt"][j], step=1000 + step, target_index=j)


def their_steps(model, steps):
    """cdan_sdat.py lines 97-101 and 213-256, with the library's CDAN as ``model`` and ``domain_adv``."""
    classifier_params = [p for m in (model.backbone, model.bottleneck, model.classifier) for p in m.parameters()]
    base_optimizer = torch.optim.SGD
    ad_optimizer = torch.optim.SGD(model.discriminator.parameters(), LR, momentum=MOMENTUM, weight_decay=WD,
                                   nesterov=True)  # fmt: skip
    optimizer = SAM(classifier_params, base_optimizer, rho=RHO, adaptive=False, lr=LR, momentum=MOMENTUM,
                    weight_decay=WD, nesterov=True)  # fmt: skip
    for batch in _batches(steps):
        optimizer.zero_grad()
        ad_optimizer.zero_grad()
        x = torch.cat((batch.source_x, batch.target_x), dim=0)
        y = model(x)  # the classifier alone: the discriminator does not run in the first pass
        y_s, _ = y.chunk(2, dim=0)
        cls_loss = F.cross_entropy(y_s, batch.source_y)
        loss = cls_loss
        loss.backward()
        optimizer.first_step(zero_grad=True)
        terms = model.loss_terms(batch, 0.5)  # cls_loss + transfer_loss * trade_off (1), at the perturbed weights
        loss = terms["classification"] + terms["domain"]
        loss.backward()
        ad_optimizer.step()
        optimizer.second_step(zero_grad=True)
    return model


def our_steps(model, steps, rho=RHO):
    config = TrainConfig(steps=steps, lr=LR, momentum=MOMENTUM, nesterov=True, weight_decay=WD, sam_rho=rho)
    stepper = Stepper(make_optimizer(model.param_groups(), config), torch.device("cpu"), None, None, sam_rho=rho)
    for batch in _batches(steps):
        model.update(batch, 0.5, stepper)
    return model


def test_sdat_step_is_the_authors_step():
    model = _model()
    theirs, ours = their_steps(copy.deepcopy(model), 4), our_steps(copy.deepcopy(model), 4)
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    plain = our_steps(copy.deepcopy(model), 4, rho=0.0)  # and it is not the plain step
    assert not torch.allclose(plain.classifier.weight, ours.classifier.weight, atol=1e-5)


def test_sdat_is_a_fit_option_and_refused_where_it_cannot_apply():
    data = toy_problem()
    model = _model()
    history = model.fit((data["xs"], data["ys"]), data["xt"], steps=4, batch_size=16, sam_rho=0.05, verbose=False)
    assert history["total"].notna().all()
    with pytest.raises(ValueError, match="sam_rho must be a finite number >= 0"):
        TrainConfig(sam_rho=-0.1)
    with pytest.raises(ValueError, match="several stages per batch"):
        create("mcd", default_backbone(), 3).fit((data["xs"], data["ys"]), data["xt"], steps=2, sam_rho=0.05,
                                                 verbose=False)  # fmt: skip
