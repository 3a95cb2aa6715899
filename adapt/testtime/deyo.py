"""DeYO: entropy minimization on samples whose prediction rests on shape (Lee et al., ICLR 2024)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torchvision.transforms.functional as TF
from torch import nn

from ..losses import entropy
from .base import IMAGENET_SGD, TEST_TIME_METHODS, TestTimeAdapter, make_optimizer

AUGMENTATIONS = ("patch", "pixel")


def patch_shuffle(x: torch.Tensor, patch_len: int) -> torch.Tensor:
    """The images ``x`` (B, C, H, H) cut into ``patch_len`` x ``patch_len`` patches shuffled per image (their
    shapes destroyed, their textures kept), resized to a multiple of ``patch_len`` and back, as the authors'
    ``aug_type == "patch"``; the shuffle draws from torch's global generator."""
    size = x.shape[-1]
    side = (size // patch_len) * patch_len
    x = TF.resize(x, [side, side])
    b, c, cell = x.shape[0], x.shape[1], side // patch_len
    patches = x.reshape(b, c, patch_len, cell, patch_len, cell).permute(0, 2, 4, 1, 3, 5).reshape(b, -1, c, cell, cell)
    order = torch.argsort(torch.rand(b, patches.shape[1]), dim=-1)
    patches = patches[torch.arange(b).unsqueeze(-1), order]
    x = patches.reshape(b, patch_len, patch_len, c, cell, cell).permute(0, 3, 1, 4, 2, 5).reshape(b, c, side, side)
    return TF.resize(x, [size, size])


def pixel_shuffle(x: torch.Tensor) -> torch.Tensor:
    """The pixels of every image permuted by one random permutation (``aug_type == "pixel"``)."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h * w)[:, :, torch.randperm(h * w)].reshape(b, c, h, w)


@TEST_TIME_METHODS.register("deyo")
class DeYO(TestTimeAdapter):
    """Entropy minimization on the confident samples whose prediction drops when their shape is destroyed.

    Lee, Jung, Lee, Park, Shin, Park & Shin, "Entropy is not Enough for Test-Time Adaptation: From the
    Perspective of Disentangled Factors", ICLR 2024. On each batch: the samples with entropy below
    ``entropy_margin`` x ln C are kept; each is shuffled in patches (or pixels), which keeps texture and
    destroys shape; the pseudo-label probability difference (PLPD) :math:`p(\\hat y|x) - p(\\hat y|x')` must
    exceed ``plpd_threshold``. The loss is the mean over the kept samples of
    :math:`H(p)\\,\\big(e^{-(H - E_0)} + e^{\\mathrm{PLPD}}\\big)` (:math:`E_0` = ``reweight_margin`` x ln C);
    no sample kept, no update. The batch's predictions are those before the step.

    Follows the reference benchmark's transcription of the authors' code (mariodoebler/test-time-adaptation
    at 8b2ed63, ``classification/methods/deyo.py`` lines 18-171, built on Jhyun17/DeYO; ``conf.py`` lines
    234-244): the adapted parameters are SAR's (any normalization; the layers the authors skip by name
    stay), their CIFAR optimizer (Adam, lr 1e-3, ``cfgs/cifar10_c/deyo.yaml``) is the default. The
    occlusion augmentation (a 112-pixel window at (56, 56), sized for ImageNet) is not offered.

    Parameters
    ----------
    model : a trained classifier with normalization layers (deep-copied).
    entropy_margin : the first filter, a fraction of ln C (0.5).
    reweight_margin : :math:`E_0` of the entropy weight, a fraction of ln C (0.4, EATA's).
    plpd_threshold : the second filter (0.2).
    reweight_entropy, reweight_plpd : the two terms of the weight (both on).
    augmentation : 'patch' (the default) or 'pixel'.
    patch_len : patches per side (4).
    lr, optimizer, momentum, nesterov : the step (:func:`adapt.testtime.base.make_optimizer`): Adam, lr 1e-3,
        betas (0.9, 0.999), the reference benchmark's CIFAR setting; ``"imagenet"`` preset: its ImageNet-C SGD.
    batch_norm, skip_top_layers : as :class:`~adapt.testtime.SAR`.
    """

    name = "deyo"
    paper = "Lee et al., ICLR 2024"
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "imagenet": {**IMAGENET_SGD},  # the reference benchmark's cfgs/imagenet_c/deyo.yaml
    }

    def __init__(
        self,
        model: nn.Module,
        *,
        entropy_margin: float = 0.5,
        reweight_margin: float = 0.4,
        plpd_threshold: float = 0.2,
        reweight_entropy: bool = True,
        reweight_plpd: bool = True,
        augmentation: str = "patch",
        patch_len: int = 4,
        lr: float = 1e-3,
        optimizer: str = "adam",
        momentum: float = 0.9,
        nesterov: bool = False,
        batch_norm: str = "all",
        skip_top_layers: bool = True,
    ) -> None:
        super().__init__(model)
        if augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {', '.join(AUGMENTATIONS)}, got {augmentation!r}")
        if isinstance(patch_len, bool) or int(patch_len) != patch_len or patch_len < 1:
            raise ValueError(f"patch_len must be a positive integer, got {patch_len!r}")
        params = self.adapt_norm_layers(batch_norm, skip_top_layers)
        self.entropy_margin, self.reweight_margin, self.plpd_threshold = entropy_margin, reweight_margin, plpd_threshold
        self.reweight_entropy, self.reweight_plpd = reweight_entropy, reweight_plpd
        self.augmentation, self.patch_len = augmentation, int(patch_len)
        self.optimizer = make_optimizer(params, optimizer, lr, momentum, nesterov)
        self._snapshot()

    def adapt_and_predict(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        loss = self._loss(x, logits)
        if loss is not None:
            loss.backward()
            self.optimizer.step()
        self.optimizer.zero_grad()
        return logits.detach()

    def _loss(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor | None:
        log_classes = math.log(logits.shape[1])
        entropies = entropy(logits, reduction="none")
        confident = entropies < self.entropy_margin * log_classes
        if not confident.any():
            return None
        shuffled = x[confident].detach()
        shuffled = patch_shuffle(shuffled, self.patch_len) if self.augmentation == "patch" else pixel_shuffle(shuffled)
        with torch.no_grad():
            shuffled_probabilities = self.model(shuffled).softmax(1)
        probabilities = logits[confident].softmax(1)
        labels = probabilities.argmax(dim=1, keepdim=True)
        plpd = (probabilities.gather(1, labels) - shuffled_probabilities.gather(1, labels)).reshape(-1)
        shape_based = plpd > self.plpd_threshold
        if not shape_based.any():
            return None
        kept, plpd = entropies[confident][shape_based], plpd[shape_based].detach()
        weight = float(self.reweight_entropy) * torch.exp(-(kept.detach() - self.reweight_margin * log_classes))
        weight = weight + float(self.reweight_plpd) * torch.exp(plpd)
        return (kept * weight).mean() if self.reweight_entropy or self.reweight_plpd else kept.mean()
