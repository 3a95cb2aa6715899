"""Adapt a classifier from labeled source points to unlabeled, rotated target points."""

import torch.nn as nn

import adapt
from adapt import DAN, DANN, SourceOnly
from adapt.data import moons_shift

xs, ys, xt, yt = moons_shift()  # 300 labeled source points, 300 unlabeled target points (rotated 35 degrees)
for method in (SourceOnly, DAN, DANN):  # 3000 steps: DANN's reversal warms up over the first thousand
    adapt.seed_everything(0)
    model = method(backbone=nn.Sequential(nn.Linear(2, 64), nn.Tanh()), num_classes=2)
    model.fit(source=(xs, ys), target=xt, steps=3000, lr=0.05, seed=0, device="cpu", verbose=False)
    print(f"{method.__name__}: target accuracy {model.score(xt, yt):.3f}")  # target labels: for scoring only
