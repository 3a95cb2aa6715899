"""A new method in one file: its modules and its loss for a batch; the engine does the rest."""

import torch
import torch.nn as nn

from adapt import methods
from adapt.batch import Batch
from adapt.data import moons_shift
from adapt.methods import Adapter


class MeanMatching(Adapter):
    """Source-only cross-entropy plus the squared distance between the two domains' mean features."""

    family = "discrepancy"
    paper = "(an example)"
    adaptation_term = "squared distance of the feature means"

    def __init__(self, backbone: nn.Module, num_classes: int, *, trade_off: float = 1.0, **kwargs) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.trade_off = trade_off

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        out = self.forward_domains(batch)  # one pass over source and target
        gap = (out.source_features.mean(0) - out.target_features.mean(0)).pow(2).sum()
        return {
            "classification": self.classification_loss(out.source_logits, batch.source_y),
            "mean_gap": self.trade_off * gap,
        }


if "mean_matching" not in methods.METHODS:
    methods.register_method("mean_matching")(MeanMatching)
xs, ys, xt, yt = moons_shift()
model = methods.create("mean_matching", nn.Sequential(nn.Linear(2, 32), nn.ReLU()), num_classes=2, trade_off=0.5)
history = model.fit((xs, ys), xt, steps=200, lr=0.05, seed=0, device="cpu", verbose=False)
print(
    f"mean gap {history['mean_gap'].iloc[0]:.4f} -> {history['mean_gap'].iloc[-1]:.4f}, "
    f"target accuracy {model.score(xt, yt):.3f}"
)
