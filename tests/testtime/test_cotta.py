"""CoTTA against a transcription of the reference benchmark's code, its teacher and its stochastic restore."""

import copy

import pytest
import torch
from test_augment import get_tta_transforms
from torch import nn
from tta_models import cnn_stream

from adapt.testtime import CoTTA


def ema_update_model(model_to_update, model_to_merge, momentum, device, update_all=False):
    """Transcription of mariodoebler/test-time-adaptation at 8b2ed63, ``classification/utils/misc.py`` 8-13."""
    if momentum < 1.0:
        for param_to_update, param_to_merge in zip(model_to_update.parameters(), model_to_merge.parameters()):
            if param_to_update.requires_grad or update_all:
                param_to_update.data = momentum * param_to_update.data + (1 - momentum) * param_to_merge.data.to(device)
    return model_to_update


class TheirCoTTA:
    """Transcription of ``CoTTA`` (mariodoebler/test-time-adaptation at 8b2ed63, ``classification/methods/cotta.py``
    lines 18-128 and 131-138, without mixed precision; ``collect_params`` of ``methods/base.py`` lines 147-160;
    ``conf.py``: RST 0.01, AP 0.92, N_AUGMENTATIONS 32; ``cfgs/cifar10_c/cotta.yaml``: Adam, lr 1e-3, teacher
    momentum 0.999). ``transform`` is given (theirs: ``get_tta_transforms``)."""

    def __init__(self, model, transform, imagenet=False):
        self.model, self.device = copy.deepcopy(model), "cpu"
        self.mt, self.rst, self.ap, self.n_augmentations = 0.999, 0.01, 0.92, 32
        self.configure_model()
        params, _ = self.collect_params()
        self.optimizer = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0)
        self.model_ema = copy.deepcopy(self.model)
        for param in self.model_ema.parameters():
            param.detach_()
        self.model_anchor = copy.deepcopy(self.model)
        for param in self.model_anchor.parameters():
            param.detach_()
        self.model_states = [copy.deepcopy(self.model.state_dict())]
        self.softmax_entropy = self.softmax_entropy_imagenet if imagenet else self.softmax_entropy_cifar
        self.transform = transform

    @staticmethod
    def softmax_entropy_cifar(x, x_ema):
        return -(x_ema.softmax(1) * x.log_softmax(1)).sum(1)

    @staticmethod
    def softmax_entropy_imagenet(x, x_ema):
        return -0.5 * (x_ema.softmax(1) * x.log_softmax(1)).sum(1) - 0.5 * (x.softmax(1) * x_ema.log_softmax(1)).sum(1)

    def loss_calculation(self, x):
        imgs_test = x[0]
        outputs = self.model(imgs_test)
        anchor_prob = torch.nn.functional.softmax(self.model_anchor(imgs_test), dim=1).max(1)[0]
        ema_outputs = []
        if anchor_prob.mean(0) < self.ap:
            for _ in range(self.n_augmentations):
                outputs_ = self.model_ema(self.transform(imgs_test)).detach()
                ema_outputs.append(outputs_)
            outputs_ema = torch.stack(ema_outputs).mean(0)
        else:
            outputs_ema = self.model_ema(imgs_test)
        loss = self.softmax_entropy(outputs, outputs_ema).mean(0)
        return outputs_ema, loss

    def forward_and_adapt(self, x):
        outputs_ema, loss = self.loss_calculation(x)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.model_ema = ema_update_model(self.model_ema, self.model, self.mt, self.device, update_all=True)
        with torch.no_grad():
            if self.rst > 0.0:
                for nm, m in self.model.named_modules():
                    for npp, p in m.named_parameters():
                        if npp in ["weight", "bias"] and p.requires_grad:
                            mask = (torch.rand(p.shape) < self.rst).float().to(self.device)
                            p.data = self.model_states[0][f"{nm}.{npp}"] * mask + p * (1.0 - mask)
        return outputs_ema

    def collect_params(self):
        params, names = [], []
        for nm, m in self.model.named_modules():
            for np_, p in m.named_parameters():
                if np_ in ["weight", "bias"] and p.requires_grad:
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
            else:
                m.requires_grad_(True)


def darken(x: torch.Tensor) -> torch.Tensor:
    """A stand-in for their random augmentations, random through torch's generator as theirs."""
    return 0.9 * x + 0.1 * torch.randn_like(x)


@pytest.mark.parametrize("augmented, imagenet", [(False, False), (True, False), (True, True)])
def test_cotta_matches_the_reference_benchmarks_forward_and_adapt(cnn_model, augmented, imagenet):
    # the confidence threshold decides the augmented path: above every batch's mean confidence, or below it
    ours = CoTTA(cnn_model, augment=darken, augment_threshold=1.01 if augmented else 0.0, symmetric=imagenet)
    theirs = TheirCoTTA(cnn_model, transform=darken, imagenet=imagenet)
    theirs.ap = 1.01 if augmented else 0.0
    for i, batch in enumerate(cnn_stream().split(64)):
        torch.manual_seed(i)
        mine = ours.predict_logits(batch)
        torch.manual_seed(i)
        torch.testing.assert_close(mine, theirs.forward_and_adapt((batch,)).detach())
    for (name, p), q in zip(ours.model.named_parameters(), theirs.model.parameters()):
        torch.testing.assert_close(p, q, msg=name)
    for p, q in zip(ours.teacher.parameters(), theirs.model_ema.parameters()):
        torch.testing.assert_close(p, q)


def test_cotta_with_the_authors_augmentation_matches_theirs(cnn_model):
    """Their teacher's views: ``get_tta_transforms(img_size)`` (``methods/cotta.py`` line 41), on images in
    [0, 1], below the confidence threshold."""
    ours = CoTTA(cnn_model, augment_threshold=1.01, augmentations=4)
    theirs = TheirCoTTA(cnn_model, transform=get_tta_transforms((7, 7)))
    theirs.ap, theirs.n_augmentations = 1.01, 4
    for i, batch in enumerate(torch.sigmoid(cnn_stream()).split(64)):
        torch.manual_seed(i)
        mine = ours.predict_logits(batch)
        torch.manual_seed(i)
        torch.testing.assert_close(mine, theirs.forward_and_adapt((batch,)).detach())
    for p, q in zip(ours.teacher.parameters(), theirs.model_ema.parameters()):
        torch.testing.assert_close(p, q)


def test_the_stochastic_restore_puts_a_share_of_the_weights_back():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 64), nn.LayerNorm(64), nn.ReLU(), nn.Linear(64, 3)).eval()
    x = torch.randn(32, 4)
    never, always = (CoTTA(model, restore_probability=r, lr=0.1, augment=None) for r in (0.0, 1.0))
    never.predict(x), always.predict(x)
    assert all(torch.equal(p, q) for p, q in zip(always.model.parameters(), model.parameters()))
    moved = [not torch.equal(p, q) for p, q in zip(never.model.parameters(), model.parameters())]
    assert all(moved)  # every weight and bias adapts, LayerNorm's and the linear layers' alike
    assert not torch.equal(never.teacher[0].weight, model[0].weight)  # the teacher follows the student
