"""MIC against the authors' masking, teacher and loss.

lhoyer/MIC at 2f932a98b5dd9f598aaeb32411863ceea0809314, ``cls``: ``dalib/modules/masking.py`` lines 92-125
(``Masking``; its colour augmentation, off by default and not in the library, is left out of the
transcription, which then follows lines 111-125) and ``dalib/modules/teacher.py`` lines 9-70 (``EMATeacher``,
transcribed with its ``timm`` DropPath check written as a class-name check), and the masking loss of
``examples/cdan_mcc_sdat_masking.py`` lines 233-249 (``pseudo_label_weight='prob'``, the ViT experiments' setting
in ``cls/experiments.py``). Their model returns ``(logits, features)``: a wrapper gives the library's network
that signature.
"""

from copy import deepcopy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.dropout import _DropoutNd

from adapt.batch import Batch
from adapt.methods import create
from adapt.methods.mic import BLOCK_FRACTION, MASK_RATIO, TEACHER_MOMENTUM, block_mask, masked_consistency
from adapt.models import ConvNet


def resize(input, size=None, scale_factor=None, mode="nearest", align_corners=None, warning=True):
    return F.interpolate(input, size, scale_factor, mode, align_corners)


class Masking(nn.Module):
    def __init__(self, block_size, ratio, color_jitter_s, color_jitter_p, blur, mean, std):
        super(Masking, self).__init__()  # noqa: UP008
        self.block_size = block_size
        self.ratio = ratio
        self.augmentation_params = None

    @torch.no_grad()
    def forward(self, img):
        img = img.clone()
        B, _, H, W = img.shape
        mshape = B, 1, round(H / self.block_size), round(W / self.block_size)
        input_mask = torch.rand(mshape, device=img.device)
        input_mask = (input_mask > self.ratio).float()
        input_mask = resize(input_mask, size=(H, W))
        masked_img = img * input_mask
        return masked_img


class EMATeacher(nn.Module):
    def __init__(self, model, alpha, pseudo_label_weight):
        super(EMATeacher, self).__init__()  # noqa: UP008
        self.ema_model = deepcopy(model)
        self.alpha = alpha
        self.pseudo_label_weight = pseudo_label_weight
        if self.pseudo_label_weight == "None":
            self.pseudo_label_weight = None

    def _init_ema_weights(self, model):
        for param in self.ema_model.parameters():
            param.detach_()
        mp = list(model.parameters())
        mcp = list(self.ema_model.parameters())
        for i in range(0, len(mp)):
            if not mcp[i].data.shape:  # scalar tensor
                mcp[i].data = mp[i].data.clone()
            else:
                mcp[i].data[:] = mp[i].data[:].clone()

    def _update_ema(self, model, iter):
        alpha_teacher = min(1 - 1 / (iter + 1), self.alpha)
        for ema_param, param in zip(self.ema_model.parameters(), model.parameters()):
            if not param.data.shape:  # scalar tensor
                ema_param.data = alpha_teacher * ema_param.data + (1 - alpha_teacher) * param.data
            else:
                ema_param.data[:] = alpha_teacher * ema_param[:].data[:] + (1 - alpha_teacher) * param[:].data[:]

    def update_weights(self, model, iter):
        if iter == 0:
            self._init_ema_weights(model)
        if iter > 0:
            self._update_ema(model, iter)

    @torch.no_grad()
    def forward(self, target_img):
        for m in self.ema_model.modules():
            if isinstance(m, _DropoutNd):
                m.training = False
            if type(m).__name__ == "DropPath":
                m.training = False
        logits, _ = self.ema_model(target_img)
        ema_softmax = torch.softmax(logits.detach(), dim=1)
        pseudo_prob, pseudo_label = torch.max(ema_softmax, dim=1)
        if self.pseudo_label_weight is None:
            pseudo_weight = torch.tensor(1.0, device=logits.device)
        elif self.pseudo_label_weight == "prob":
            pseudo_weight = pseudo_prob
        else:
            raise NotImplementedError(self.pseudo_label_weight)
        return pseudo_label, pseudo_weight


def their_masking_loss(model, teacher, masking, x_t, iteration):
    """cdan_mcc_sdat_masking.py lines 225, 233-247: mask, update the teacher, pseudo-label, weighted CE."""
    x_t_masked = masking(x_t)
    teacher.update_weights(model, iteration)
    pseudo_label_t, pseudo_prob_t = teacher(x_t)
    y_t_masked, _ = model(x_t_masked)
    ce = F.cross_entropy(y_t_masked, pseudo_label_t, reduction="none")
    return torch.mean(pseudo_prob_t * ce)


# --- end of the transcription


class WithFeatures(nn.Module):
    """Their ``ImageClassifier`` signature, ``(logits, features)``, around the library's network."""

    def __init__(self, backbone, bottleneck, classifier):
        super().__init__()
        self.backbone, self.bottleneck, self.head = backbone, bottleneck, classifier

    def forward(self, x):
        f = self.bottleneck(self.backbone(x))
        return self.head(f), f


def test_block_masks_are_the_authors():
    images = torch.rand(4, 3, 32, 32)
    torch.manual_seed(3)
    theirs = Masking(block_size=8, ratio=0.7, color_jitter_s=0, color_jitter_p=0, blur=False, mean=0, std=1)(images)
    torch.manual_seed(3)
    torch.testing.assert_close(block_mask(images, 8, 0.7), theirs, rtol=0, atol=0)
    dropped = (theirs == 0).float().mean()
    assert 0.4 < float(dropped) < 0.95  # blocks dropped at about the ratio


def _model():
    torch.manual_seed(0)
    model = create("mic", ConvNet(3, channels=(8, 8), out_features=16), 3, bottleneck_dim=8)
    model.build(torch.zeros(2, 3, 16, 16))
    return model.train()


def test_mic_term_teacher_and_pseudo_labels_are_the_authors():
    """Over three steps (the student moving between them), the library's term equals theirs: the teacher's EMA
    schedule, its pseudo-labels and probability weights, the masks, and the student's masked forward."""
    ours, theirs_model = _model(), _model()
    their_net = WithFeatures(theirs_model.backbone, theirs_model.bottleneck, theirs_model.classifier)
    teacher = EMATeacher(their_net, alpha=TEACHER_MOMENTUM, pseudo_label_weight="prob")
    block = round(BLOCK_FRACTION * 16)
    masking = Masking(block, MASK_RATIO, 0, 0, False, 0, 1)
    g = torch.Generator().manual_seed(1)
    for step in range(3):
        x_t = torch.rand(8, 3, 16, 16, generator=g)
        batch = Batch(torch.rand(8, 3, 16, 16), torch.arange(8) % 3, x_t, step=step)
        torch.manual_seed(10 + step)
        theirs = their_masking_loss(their_net, teacher, masking, x_t, step)
        torch.manual_seed(10 + step)
        mine = masked_consistency(ours, batch)
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
        for a, b in zip(
            ours.__dict__["_mic_teacher"].network.parameters(), teacher.ema_model.parameters(), strict=True
        ):
            torch.testing.assert_close(a, b)
        with torch.no_grad():  # the students move apart from their teachers, identically
            for model in (ours, theirs_model):
                for p in model.parameters():
                    p.add_(0.05 * torch.sin(torch.arange(p.numel(), dtype=torch.float32).view_as(p) + step))
    assert torch.equal(masked_consistency(ours, batch), masked_consistency(ours, batch))  # one step, cached masks


@pytest.mark.parametrize("name", ["cdan+mcc+mic", "mic"])
def test_mic_composes_and_learns_with_sdat(name):
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(64, 3, 16, 16, generator=g)
    ys = torch.arange(64) % 3
    xs[torch.arange(64), ys] += 1.0
    xt = 0.8 * xs + 0.3 * torch.randn(64, 3, 16, 16, generator=g)
    torch.manual_seed(0)
    model = create(name, ConvNet(3), 3)
    history = model.fit((xs, ys), xt, steps=30, batch_size=16, sam_rho=0.02, verbose=False)
    term = "reg_mic" if "+" in name else "mic"
    assert history[term].gt(0).all()
    assert float((model.predict(xt) == ys).float().mean()) > 0.8  # chance: 1/3
