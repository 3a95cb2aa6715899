"""adapt: unsupervised domain adaptation in PyTorch.

>>> from adapt import DANN
>>> model = DANN(backbone, num_classes=10)                    # doctest: +SKIP
>>> model.fit(source=(xs, ys), target=xt, steps=2000)         # doctest: +SKIP
>>> model.predict(xt)                                         # doctest: +SKIP
"""

__version__ = "0.1.0"

from . import losses, methods, models
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
