"""DeYO against a transcription of the reference benchmark's code, and its shape-destroying augmentations."""

import copy
import math

import pytest
import torch
import torchvision
from einops import rearrange
from torch import nn
from tta_models import cnn_stream

from adapt.testtime import DeYO
from adapt.testtime.deyo import patch_shuffle, pixel_shuffle


class TheirDeYO:
    """Transcription of ``DeYO`` (mariodoebler/test-time-adaptation at 8b2ed63, ``classification/methods/deyo.py``:
    ``loss_calculation`` lines 38-99, ``forward_and_adapt`` 101-119 without mixed precision, ``collect_params``
    121-150, ``configure_model`` 152-171; ``conf.py`` lines 234-244 and ``EATA.MARGIN_E0`` 0.4; the optimizer of
    ``methods/base.py`` lines 162-167 with ``cfgs/cifar10_c/deyo.yaml``: Adam, lr 1e-3)."""

    def __init__(self, model, num_classes, aug_type="patch", patch_len=4):
        self.model = copy.deepcopy(model)
        self.reweight_ent, self.reweight_plpd = True, True
        self.plpd_threshold = 0.2
        self.deyo_margin = 0.5 * math.log(num_classes)
        self.margin_e0 = 0.4 * math.log(num_classes)
        self.aug_type, self.patch_len = aug_type, patch_len
        self.configure_model()
        params, _ = self.collect_params()
        self.optimizer = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0)

    def ent(self, logits):
        return -(logits.softmax(1) * logits.log_softmax(1)).sum(1)

    def loss_calculation(self, x):
        imgs_test = x[0]
        outputs = self.model(imgs_test)
        entropys = self.ent(outputs)
        filter_ids_1 = torch.where(entropys < self.deyo_margin)
        entropys = entropys[filter_ids_1]
        if len(entropys) == 0:
            return outputs, None
        x_prime = imgs_test[filter_ids_1]
        x_prime = x_prime.detach()
        if self.aug_type == "patch":
            side = (imgs_test.shape[-1] // self.patch_len) * self.patch_len
            resize_t = torchvision.transforms.Resize((side, side))
            resize_o = torchvision.transforms.Resize((imgs_test.shape[-1], imgs_test.shape[-1]))
            x_prime = resize_t(x_prime)
            x_prime = rearrange(
                x_prime, "b c (ps1 h) (ps2 w) -> b (ps1 ps2) c h w", ps1=self.patch_len, ps2=self.patch_len
            )
            perm_idx = torch.argsort(torch.rand(x_prime.shape[0], x_prime.shape[1]), dim=-1)
            x_prime = x_prime[torch.arange(x_prime.shape[0]).unsqueeze(-1), perm_idx]
            x_prime = rearrange(
                x_prime, "b (ps1 ps2) c h w -> b c (ps1 h) (ps2 w)", ps1=self.patch_len, ps2=self.patch_len
            )
            x_prime = resize_o(x_prime)
        elif self.aug_type == "pixel":
            x_prime = rearrange(x_prime, "b c h w -> b c (h w)")
            x_prime = x_prime[:, :, torch.randperm(x_prime.shape[-1])]
            x_prime = rearrange(
                x_prime, "b c (ps1 ps2) -> b c ps1 ps2", ps1=imgs_test.shape[-1], ps2=imgs_test.shape[-1]
            )
        with torch.no_grad():
            outputs_prime = self.model(x_prime)
        prob_outputs = outputs[filter_ids_1].softmax(1)
        prob_outputs_prime = outputs_prime.softmax(1)
        cls1 = prob_outputs.argmax(dim=1)
        plpd = torch.gather(prob_outputs, dim=1, index=cls1.reshape(-1, 1)) - torch.gather(
            prob_outputs_prime, dim=1, index=cls1.reshape(-1, 1)
        )
        plpd = plpd.reshape(-1)
        filter_ids_2 = torch.where(plpd > self.plpd_threshold)
        entropys = entropys[filter_ids_2]
        if len(entropys) == 0:
            return outputs, None
        plpd = plpd[filter_ids_2]
        if self.reweight_ent or self.reweight_plpd:
            coeff = (float(self.reweight_ent) * (1. / (torch.exp(((entropys.clone().detach()) - self.margin_e0)))) +  # noqa: UP034
                     float(self.reweight_plpd) * (1. / (torch.exp(-1. * plpd.clone().detach())))
                     )  # fmt: skip
            entropys = entropys.mul(coeff)
        loss = entropys.mean(0)
        return outputs, loss

    def forward_and_adapt(self, x):
        outputs, loss = self.loss_calculation(x)
        if loss is not None:
            loss.backward()
            self.optimizer.step()
        self.optimizer.zero_grad()
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


@pytest.mark.parametrize("augmentation, size", [("patch", 8), ("patch", 10), ("pixel", 8)])
def test_deyo_matches_the_reference_benchmarks_forward_and_adapt(augmentation, size):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                          nn.Flatten(), nn.Linear(16, 3)).eval()  # fmt: skip
    stream = torch.nn.functional.interpolate(cnn_stream(), size=size)
    with torch.no_grad():  # make the model confident enough that both filters keep some samples
        model[-1].weight.mul_(20)  # about half the samples confident, half of those shape-based
    ours, theirs = DeYO(model, augmentation=augmentation), TheirDeYO(model, num_classes=3, aug_type=augmentation)
    for i, batch in enumerate(stream.split(64)):
        torch.manual_seed(100 + i)
        mine = ours.predict_logits(batch)
        torch.manual_seed(100 + i)
        torch.testing.assert_close(mine, theirs.forward_and_adapt((batch,)).detach())
    for (name, p), q in zip(ours.model.named_parameters(), theirs.model.parameters()):
        torch.testing.assert_close(p, q, msg=name)
    assert not torch.equal(ours.model[1].weight, model[1].weight)  # it adapted


def test_patch_shuffle_keeps_the_patches_and_moves_them():
    torch.manual_seed(0)
    x = torch.arange(2 * 16 * 16, dtype=torch.float32).reshape(2, 1, 16, 16)
    shuffled = patch_shuffle(x, 4)
    assert torch.equal(shuffled.flatten(1).sort().values, x.flatten(1).sort().values)
    assert not torch.equal(shuffled, x)
    patch = shuffled[0, 0, :4, :4]  # a 4x4 patch of the original, whole
    assert any(torch.equal(patch, x[0, 0, r : r + 4, c : c + 4]) for r in range(0, 16, 4) for c in range(0, 16, 4))
    assert torch.equal(pixel_shuffle(x).flatten(1).sort().values, x.flatten(1).sort().values)


@pytest.mark.bad_input
def test_deyo_names_its_augmentations():
    with pytest.raises(ValueError, match="augmentation must be one of patch, pixel"):
        DeYO(nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Linear(4, 3)), augmentation="occ")
