"""How strongly each adaptation term pulls at its default weight, across feature widths and scales.

Issue 31, item 1: a default weight that works at one feature width or scale may do nothing at
another. For each term at the library's default weight this prints the norm of its gradient with
respect to the features, divided by the norm of the source cross-entropy's gradient on the same
features: the term's pull relative to the classification loss (what SGD sees; Adam rescales the
sum, not the ratio).

Features are real: a ``ConvNet`` at initialization (seeded) with ``out_features`` = width, fed the
offline ``optdigits`` shift (UCI digits -> the MNIST-M recipe), batch 64 + 64. The classifier is a
fresh ``nn.Linear(width, 10)`` as in every method. "Scale" multiplies the features by s and divides
the classifier's weights by s: the same predictions and cross-entropy from features expressed at
another scale (another backbone, normalization or stage of training). A ratio that moves by orders
of magnitude along a row is a default that cannot hold at every width or scale.

    python benchmarks/study_term_scale.py [--widths 16,64,256,1024,2048] [--scales 0.1,1,10] [--seeds 3]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from adapt import losses
from adapt.data.synthetic import optdigits_shift
from adapt.methods import METHODS
from adapt.models import ConvNet

BATCH = 64


def default(method: str, argument: str = "trade_off") -> float:
    """A method's default weight, read from its constructor (so the study follows the library)."""
    import inspect

    return float(inspect.signature(METHODS.get(method).__init__).parameters[argument].default)


# term name -> (method whose default weight it uses, the term of (source features, target features, classifier))
Term = Callable[[torch.Tensor, torch.Tensor, nn.Module], torch.Tensor]
TERMS: dict[str, tuple[str, Term]] = {
    "coral (Sun & Saenko, Eq. 1)": ("coral", lambda fs, ft, head: losses.coral_loss(fs, ft)),
    "coral (scale-free)": ("coral", lambda fs, ft, head: losses.scale_free_coral_loss(fs, ft)),
    "mmd (dan)": ("dan", lambda fs, ft, head: losses.mmd(fs, ft)),
    "jmmd (jan)": ("jan", lambda fs, ft, head: losses.jmmd([fs, head(fs).softmax(1)], [ft, head(ft).softmax(1)])),
    "mcc": ("mcc", lambda fs, ft, head: losses.mcc_loss(head(ft))),
    "bnm": ("bnm", lambda fs, ft, head: losses.bnm_loss(head(ft))),
    "afn": ("afn", lambda fs, ft, head: losses.adaptive_feature_norm_loss(torch.cat([fs, ft]))),
    "entropy (minent)": ("minent", lambda fs, ft, head: losses.entropy(head(ft))),
}


def features(width: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    xs, ys, xt, _ = optdigits_shift(seed)
    g = torch.Generator().manual_seed(seed)
    i, j = torch.randperm(len(xs), generator=g)[:BATCH], torch.randperm(len(xt), generator=g)[:BATCH]
    torch.manual_seed(seed)
    net = ConvNet(3, out_features=width).train()
    with torch.no_grad():
        return net(torch.from_numpy(xs[i])), net(torch.from_numpy(xt[j])), torch.from_numpy(ys[i])


def pull(width: int, scale: float, seed: int) -> dict[str, float]:
    """Gradient-norm ratio term / cross-entropy for every term, at one width, scale and seed."""
    fs0, ft0, ys = features(width, seed)
    torch.manual_seed(seed)
    head = nn.Linear(width, 10)
    with torch.no_grad():
        head.weight /= scale  # the same logits from the rescaled features
    fs = (fs0 * scale).requires_grad_()
    (ce_grad,) = torch.autograd.grad(F.cross_entropy(head(fs), ys), fs)
    ce = ce_grad.norm()
    row = {}
    for name, (method, term) in TERMS.items():
        fs, ft = (fs0 * scale).requires_grad_(), (ft0 * scale).requires_grad_()
        value = default(method) * term(fs, ft, head)
        gs, gt = torch.autograd.grad(value, [fs, ft], allow_unused=True)
        norm = sum(float(g.norm() ** 2) for g in (gs, gt) if g is not None) ** 0.5
        row[name] = norm / float(ce)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", default="16,64,256,1024,2048")
    parser.add_argument("--scales", default="0.1,1,10")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for scale in map(float, args.scales.split(",")):
        for width in map(int, args.widths.split(",")):
            for seed in range(args.seeds):
                ratios = pull(width, scale, seed)
                rows += [{"scale": scale, "width": width, "term": t, "ratio": r} for t, r in ratios.items()]
    table = pd.DataFrame(rows).groupby(["term", "scale", "width"])["ratio"].median().unstack("width")
    weights = ", ".join(f"{m} {default(m):g}" for m, _ in TERMS.values())
    print(f"|grad term| / |grad cross-entropy| w.r.t. the features, default weights ({weights});")
    print(f"ConvNet at init on optdigits -> optdigits-m, batch {BATCH}+{BATCH}, median of {args.seeds} seeds\n")
    print(table.to_string(float_format=lambda v: f"{v:.2e}"))
    spread = table.max(axis=1) / table.min(axis=1)
    print("\nspread over widths (max / min ratio in a row):")
    print(spread.unstack("scale").to_string(float_format=lambda v: f"{v:.1f}"))


if __name__ == "__main__":
    main()
