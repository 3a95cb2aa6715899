"""adapt: unsupervised domain adaptation in PyTorch.

>>> from adapt import DANN
>>> from adapt.data import moons_shift
>>> from adapt.models import MLP
>>> xs, ys, xt, yt = moons_shift(seed=0)   # labeled source, unlabeled target (yt only to score)
>>> model = DANN(MLP(2, (15,)), num_classes=2)
>>> history = model.fit(source=(xs, ys), target=xt, steps=50, device="cpu", verbose=False)
>>> model.predict(xt).shape
torch.Size([300])
>>> 0.0 <= model.score(xt, yt) <= 1.0
True
"""

from . import losses, methods, models
from ._version import __version__
from .methods import CDAN, DAN, DANN, MCC, Adapter, DeepCORAL, NotFittedError, SourceOnly
from .train import InputError, NonFiniteLossError, TrainConfig

__all__ = [
    "CDAN",
    "DAN",
    "DANN",
    "MCC",
    "Adapter",
    "DeepCORAL",
    "InputError",
    "NonFiniteLossError",
    "NotFittedError",
    "SourceOnly",
    "TrainConfig",
    "__version__",
    "losses",
    "methods",
    "models",
]
