"""adapt: unsupervised domain adaptation in PyTorch.

>>> from adapt import DANN
>>> from adapt.data import moons_shift
>>> from adapt.models import MLP
>>> xs, ys, xt, yt = moons_shift(seed=0)   # labeled source, unlabeled target (yt only to score)
>>> model = DANN(MLP(2, (15,)), num_classes=2)
>>> history = model.fit(source=(xs, ys), target=xt, steps=50, device="cpu", verbose=False)
>>> model.predict(xt).shape
(300,)
>>> 0.0 <= model.score(xt, yt) <= 1.0
True

Every name is imported on first use (PEP 562), so ``import adapt`` -- and ``adapt-bench --help`` --
does not pay for importing torch until something needs it. The methods exported here are the
registered ones (:data:`adapt.methods.METHODS` and :data:`adapt.methods.TRANSFER_BASELINES`, each under
its class name): registering a method is what exports it, no list here names it.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__ as __version__

#: public name -> the module that defines it, beside the registered methods
_LAZY = {
    "AccuracyEstimate": "adapt.estimate",
    "Adapter": "adapt.methods",
    "GuardDecision": "adapt.estimate",
    "estimate_accuracy": "adapt.estimate",
    "guard": "adapt.estimate",
    "NotFittedError": "adapt.methods",
    "InputError": "adapt.train",
    "NonFiniteLossError": "adapt.train",
    "TrainConfig": "adapt.train",
    "seed_everything": "adapt.train",
}
_SUBMODULES = ("bench", "data", "estimate", "losses", "methods", "models", "train", "validators")


def _method_exports() -> dict[str, type]:
    """Class name -> class of every registered unsupervised method and transfer baseline."""
    from .methods import METHODS, TRANSFER_BASELINES

    return {cls.__name__: cls for registry in (METHODS, TRANSFER_BASELINES) for cls in registry.values()}


def _public_names() -> list[str]:
    return sorted([*_method_exports(), *_LAZY, "__version__", "losses", "methods", "models"])


def __getattr__(name: str) -> Any:
    if name == "__all__":
        value: Any = _public_names()
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name[:1].isupper() and name in _method_exports():
        value = _method_exports()[name]
    else:
        try:  # any submodule, as after an eager import: adapt.losses, adapt.batch, adapt.registry ...
            value = importlib.import_module(f"adapt.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"adapt.{name}":  # a dependency of a real submodule is missing: say so
                raise
            raise AttributeError(f"module 'adapt' has no attribute {name!r}") from exc
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_public_names(), *_SUBMODULES})
