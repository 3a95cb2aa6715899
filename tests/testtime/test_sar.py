"""SAR against a transcription of the reference benchmark's code, its model recovery, and SAM."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn
from tta_models import cnn_stream, target_stream

from adapt.errors import InputError
from adapt.testtime import SAR, evaluate_stream
from adapt.train.sam import SAM


class TheirSAM(torch.optim.Optimizer):
    """Transcription of ``SAM`` (mariodoebler/test-time-adaptation at 8b2ed63, ``classification/methods/sar.py``
    lines 143-189, from davda54/sam; the same as mr-eggplant/SAR at 20f6e24, ``sam.py`` lines 8-67)."""

    def __init__(self, params, base_optimizer, rho=0.05, adaptive=False, **kwargs):
        assert rho >= 0.0, f"Invalid rho, should be non-negative: {rho}"
        defaults = dict(rho=rho, adaptive=adaptive, **kwargs)
        super().__init__(params, defaults)
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    @torch.no_grad()
    def first_step(self, zero_grad=False):
        grad_norm = self._grad_norm()
        for group in self.param_groups:
            scale = group["rho"] / (grad_norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.state[p]["old_p"] = p.data.clone()
                e_w = (torch.pow(p, 2) if group["adaptive"] else 1.0) * p.grad * scale.to(p)
                p.add_(e_w)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad=False):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.data = self.state[p]["old_p"]
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    def _grad_norm(self):
        shared_device = self.param_groups[0]["params"][0].device
        return torch.norm(torch.stack([((torch.abs(p) if group["adaptive"] else 1.0) * p.grad).norm(p=2).to(shared_device)
                                       for group in self.param_groups for p in group["params"] if p.grad is not None]),
                          p=2)  # fmt: skip


class TheirSAR:
    """Transcription of the reference benchmark's ``SAR`` (mariodoebler/test-time-adaptation at 8b2ed63,
    ``classification/methods/sar.py``: ``forward_and_adapt`` lines 41-74, ``collect_params`` 82-111,
    ``configure_model`` 113-132, ``setup_optimizer`` 134-140 with ``OPTIM.MOMENTUM`` 0.9; the margin is
    ``EATA.MARGIN_E0 * log(num_classes)`` (line 34) and ``reset`` loads the model and the SAM state)."""

    def __init__(self, model, num_classes, lr, margin_e0=0.4, reset_constant_em=0.2):
        self.model = copy.deepcopy(model)
        self.configure_model()
        self.params, _ = self.collect_params()
        self.optimizer = TheirSAM(self.params, torch.optim.SGD, lr=lr, momentum=0.9)
        self.margin_e0 = margin_e0 * math.log(num_classes)
        self.reset_constant_em, self.ema = reset_constant_em, None
        self.model_states = copy.deepcopy(self.model.state_dict())
        self.optimizer_state = copy.deepcopy(self.optimizer.state_dict())

    @staticmethod
    def softmax_entropy(x):
        return -(x.softmax(1) * x.log_softmax(1)).sum(1)

    def forward_and_adapt(self, imgs_test):
        self.optimizer.zero_grad()
        outputs = self.model(imgs_test)
        entropys = self.softmax_entropy(outputs)
        filter_ids_1 = torch.where(entropys < self.margin_e0)
        entropys = entropys[filter_ids_1]
        loss = entropys.mean(0)
        loss.backward()
        self.optimizer.first_step(zero_grad=True)
        entropys2 = self.softmax_entropy(self.model(imgs_test))
        entropys2 = entropys2[filter_ids_1]
        filter_ids_2 = torch.where(entropys2 < self.margin_e0)
        loss_second = entropys2[filter_ids_2].mean(0)
        if not np.isnan(loss_second.item()):
            self.ema = loss_second.item() if self.ema is None else 0.9 * self.ema + (1 - 0.9) * loss_second.item()
        loss_second.backward()
        self.optimizer.second_step(zero_grad=True)
        if self.ema is not None and self.ema < self.reset_constant_em:
            self.model.load_state_dict(self.model_states, strict=True)
            self.optimizer.load_state_dict(self.optimizer_state)
            self.ema = None
        return outputs

    def collect_params(self):
        params, names = [], []
        for nm, m in self.model.named_modules():
            if "layer4" in nm or "blocks.9" in nm or "blocks.10" in nm or "blocks.11" in nm or "norm." in nm:
                continue
            if nm in ["norm"]:
                continue
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)):
                for np_, p in m.named_parameters():
                    if np_ in ["weight", "bias"]:
                        params.append(p)
                        names.append(f"{nm}.{np_}")
        return params, names

    def configure_model(self):
        self.model.eval()
        self.model.requires_grad_(False)
        for m in self.model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.requires_grad_(True)
                m.track_running_stats = False
                m.running_mean = None
                m.running_var = None
            elif isinstance(m, nn.BatchNorm1d):
                m.train()
                m.requires_grad_(True)
            elif isinstance(m, (nn.LayerNorm, nn.GroupNorm)):
                m.requires_grad_(True)


@pytest.mark.parametrize("reset", [0.2, 0.0])
def test_sar_matches_the_reference_benchmarks_forward_and_adapt(cnn_model, reset):
    # lr 0.05: large enough that a missing SAM step, filter or momentum shows in the weights after 4 batches.
    # This CNN is confident (mean entropy ~0.01 nats): with the authors' e_m = 0.2 it recovers after every batch
    ours = SAR(cnn_model, lr=0.05, reset_threshold=reset)
    theirs = TheirSAR(cnn_model, num_classes=3, lr=0.05, reset_constant_em=reset)
    for batch in cnn_stream().split(64):
        torch.testing.assert_close(ours.predict_logits(batch), theirs.forward_and_adapt(batch).detach())
    assert ours.ema == pytest.approx(theirs.ema)
    for (name, p), q in zip(ours.model.named_parameters(), theirs.model.parameters()):
        torch.testing.assert_close(p, q, msg=name)
    changed = [n for n, p in ours.model.named_parameters() if not torch.equal(p, dict(cnn_model.named_parameters())[n])]
    if reset:
        assert ours.recoveries == 4 and ours.ema is None and not changed
    else:
        assert ours.recoveries == 0 and ours.ema is not None
        assert {n.rsplit(".", 1)[0] for n in changed} == {"1", "4", "8"}  # the three BatchNorm layers, nothing else


def test_sar_without_the_sharpness_aware_step_is_another_update(cnn_model):
    sam, plain = SAR(cnn_model, lr=0.05, reset_threshold=0.0), SAR(cnn_model, lr=0.05, rho=0.0, reset_threshold=0.0)
    for batch in cnn_stream().split(64):
        sam.predict(batch), plain.predict(batch)
    assert not torch.allclose(sam.model[1].weight, plain.model[1].weight)


def test_sar_recovers_the_model_when_the_entropy_collapses(cnn_model):
    sar = SAR(cnn_model, lr=0.05)  # this confident CNN's entropy (~0.01 nats) is below e_m = 0.2
    sar.predict(cnn_stream()[:64])
    assert sar.recoveries == 1 and sar.ema is None and sar.batches_seen == 1
    for p, q in zip(sar.model.parameters(), cnn_model.parameters()):
        torch.testing.assert_close(p, q)
    never = SAR(cnn_model, lr=0.05, reset_threshold=0.0)
    never.predict(cnn_stream()[:64])
    assert never.recoveries == 0 and not torch.equal(never.model[1].weight, cnn_model[1].weight)


def test_sar_adapts_layer_norm_models_and_skips_the_authors_top_layers():
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("stem", nn.Linear(2, 8))
    model.add_module("ln", nn.LayerNorm(8))
    model.add_module("layer4", nn.Sequential(nn.Linear(8, 8), nn.GroupNorm(2, 8)))
    model.add_module("head", nn.Linear(8, 3))
    x = torch.randn(64, 2) * 3
    sar = SAR(model.eval(), lr=0.5, entropy_margin=1.0)
    for _ in range(3):
        sar.predict(x)
    assert not torch.equal(sar.model.ln.weight, model.ln.weight)
    assert torch.equal(sar.model.layer4[1].weight, model.layer4[1].weight)  # 'layer4' is skipped, as theirs
    assert torch.equal(sar.model.head.weight, model.head.weight)
    everything = SAR(model, lr=0.5, entropy_margin=1.0, skip_top_layers=False)
    everything.predict(x)
    assert not torch.equal(everything.model.layer4[1].weight, model.layer4[1].weight)


def test_sam_state_holds_the_base_optimizers_momentum():
    w = nn.Parameter(torch.ones(3))
    sam = SAM([w], torch.optim.SGD, lr=0.1, momentum=0.9)
    saved = copy.deepcopy(sam.state_dict())
    for _ in range(2):
        (w**2).sum().backward()
        sam.first_step(zero_grad=True)
        (w**2).sum().backward()
        sam.second_step(zero_grad=True)
    assert sam.base_optimizer.state[w]["momentum_buffer"].abs().sum() > 0
    sam.load_state_dict(saved)
    assert "momentum_buffer" not in sam.base_optimizer.state[w]  # theirs would keep it
    with pytest.raises(ValueError, match="closure"):
        sam.step()


def test_sar_undoes_a_covariate_shift(source_model):
    x, y = target_stream()
    unadapted = (source_model(x).argmax(1) == y).float().mean().item()
    assert evaluate_stream(SAR(source_model, lr=0.01), x, y)["online_accuracy"] > unadapted + 0.2


@pytest.mark.bad_input
def test_sar_refuses_a_model_without_normalization_layers():
    with pytest.raises(InputError, match="SAR adapts normalization layers"):
        SAR(nn.Sequential(nn.Linear(2, 3)))
    only_a_final_norm = nn.Sequential()
    only_a_final_norm.add_module("stem", nn.Linear(2, 8))
    only_a_final_norm.add_module("norm", nn.LayerNorm(8))  # a ViT's final norm: the authors skip it
    with pytest.raises(ValueError, match="no normalization layer with affine parameters is left"):
        SAR(only_a_final_norm)
