"""MIC: masked image consistency (Hoyer et al., CVPR 2023), a regularizer any method with one joint pass can take.

``create("cdan+mcc+mic")``, ``regularizers={"mic": 1.0}``, or the stand-alone ``create("mic")`` (source
loss plus MIC). An exponential-moving-average teacher of the classifier network pseudo-labels the target
batch; the student must predict those labels from the same images with random blocks masked out, so it
learns to use the context of what it cannot see.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .base import SearchSpace
from .registry import register_method
from .regularized import RegularizedSourceOnly
from .regularizers import REGULARIZERS

if TYPE_CHECKING:
    from ..batch import Batch
    from .base import Adapter

#: The authors' ViT settings (lhoyer/MIC at 2f932a9, ``cls/experiments.py`` experiment 1): 64-pixel blocks on
#: 224-pixel images, 70% of them masked, teacher momentum 0.9, pseudo-labels weighted by their probability.
BLOCK_FRACTION, MASK_RATIO, TEACHER_MOMENTUM = 64 / 224, 0.7, 0.9


def block_mask(images: torch.Tensor, block_size: int, ratio: float) -> torch.Tensor:
    """``images`` with each ``block_size`` block dropped (zeroed) with probability ``ratio``, independently per
    image: a uniform draw per block on a grid of round(H / block_size) x round(W / block_size), upsampled
    (nearest) to the image (lhoyer/MIC at 2f932a9, ``cls/dalib/modules/masking.py`` lines 111-125). Inputs
    that are not images (B, C, H, W) lose each feature with probability ``ratio``."""
    if images.ndim != 4:  # not images (B, C, H, W): each input feature is a block
        return images * (torch.rand(images.shape, device=images.device) > ratio).float()
    batch, _, height, width = images.shape
    grid = torch.rand(batch, 1, round(height / block_size), round(width / block_size), device=images.device)
    keep = F.interpolate((grid > ratio).float(), size=(height, width))
    return images * keep


def _no_dropout(module: nn.Module) -> None:
    """Dropout and stochastic depth off (the teacher's pseudo-labels are deterministic), BatchNorm as it is."""
    for m in module.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd) or type(m).__name__ == "DropPath":
            m.training = False


@dataclass
class MaskingTeacher:
    """The EMA teacher and what it computed for the current step (reused by SDAT's two passes of one batch)."""

    network: nn.Module
    step: int = -1
    cached: dict[str, torch.Tensor] = field(default_factory=dict)

    def update(self, student: list[nn.Module], step: int, momentum: float) -> None:
        """Their ``EMATeacher.update_weights`` (``cls/dalib/modules/teacher.py`` lines 19-48): a copy at step 0,
        then ``alpha = min(1 - 1 / (step + 1), momentum)`` on the parameters (buffers stay the copy's)."""
        params = [p for m in student for p in m.parameters()]
        with torch.no_grad():
            for ema, param in zip(self.network.parameters(), params, strict=True):
                if step == 0:
                    ema.copy_(param)
                else:
                    alpha = min(1 - 1 / (step + 1), momentum)
                    ema.mul_(alpha).add_(param.detach(), alpha=1 - alpha)


def masked_consistency(model: Adapter, batch: Batch) -> torch.Tensor:
    """The MIC term of ``model`` on ``batch``: cross-entropy of the student's predictions on the masked target
    images against the teacher's pseudo-labels on the whole images, weighted by the pseudo-labels'
    probabilities (their ``pseudo_label_weight='prob'``; ``cls/examples/cdan_mcc_sdat_masking.py`` lines
    225-250). The blocks are 64/224 of the image side, as the authors' on 224-pixel images."""
    student = [model.backbone, model.bottleneck, model.classifier]
    teacher: MaskingTeacher | None = model.__dict__.get("_mic_teacher")
    if teacher is None:  # kept outside the module: not trained, not saved, not in the optimizer
        network = nn.Sequential(*(copy.deepcopy(m) for m in student)).requires_grad_(False)
        teacher = model.__dict__["_mic_teacher"] = MaskingTeacher(network)
    if teacher.step != batch.step:
        teacher.update(student, batch.step, TEACHER_MOMENTUM)
        teacher.network.train(model.training)
        _no_dropout(teacher.network)
        x = batch.target_x
        block = max(1, round(BLOCK_FRACTION * x.shape[-1])) if x.ndim == 4 else 1
        masked = block_mask(x.detach().clone(), block, MASK_RATIO)
        with torch.no_grad():
            probabilities = torch.softmax(teacher.network(x).detach().float(), dim=1)
        confidence, labels = probabilities.max(dim=1)
        teacher.step, teacher.cached = batch.step, {"masked": masked, "labels": labels, "weights": confidence}
    cached = teacher.cached
    logits = model.classifier(model.embed(cached["masked"]))
    return (cached["weights"] * F.cross_entropy(logits.float(), cached["labels"], reduction="none")).mean()


masked_consistency.needs_model = True  # type: ignore[attr-defined]
REGULARIZERS.register("mic")(masked_consistency)


@register_method("mic")
class MIC(RegularizedSourceOnly):
    """The source loss plus masked image consistency on the target (Hoyer et al., "MIC: Masked Image Consistency
    for Context-Enhanced Domain Adaptation", CVPR 2023, Eq. 4-6), the ``"mic"`` regularizer alone.

    The teacher is an exponential moving average of the classifier network (momentum 0.9, from a copy at step
    0); its pseudo-labels on the full target batch, weighted by their probability, supervise the student on
    the same batch with 70% of its blocks (64/224 of the image side) zeroed. Composed (``"cdan+mcc+mic"``),
    it is the authors' CDAN+MCC+MIC; with ``fit(sam_rho=0.02)``, their CDAN+MCC+SDAT+MIC.

    Differences from the authors' code (lhoyer/MIC at 2f932a9, ``cls``), stated: their colour jitter and blur of
    the masked images (kornia) are not applied; under SDAT their second pass uses the unweighted
    cross-entropy (line 265) where the first pass and this library weight it; the teacher is not saved with
    the model, so a run resumed from a mid-run checkpoint starts its teacher again from the student.

    Parameters
    ----------
    trade_off : weight of the MIC term (1, theirs).
    """

    family = "regularizer"
    paper = "Hoyer et al., CVPR 2023"
    adaptation_term = "masked target images vs an EMA teacher's pseudo-labels"

    regularizer = "mic"
    search_space: ClassVar[SearchSpace] = {"trade_off": ("log_uniform", 0.1, 10.0)}

    def __init__(self, backbone: nn.Module, num_classes: int, *, trade_off: float = 1.0, **kwargs: Any) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.trade_off = trade_off
