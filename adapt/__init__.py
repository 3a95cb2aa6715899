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

The names below are imported on first use (PEP 562), so ``import adapt`` -- and ``adapt-bench
--help`` -- does not pay for importing torch until something needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

#: public name -> the module that defines it
_LAZY = {
    "CDAN": "adapt.methods",
    "DAN": "adapt.methods",
    "DANN": "adapt.methods",
    "DIRTT": "adapt.methods",
    "MCC": "adapt.methods",
    "ADDA": "adapt.methods",
    "ATDOC": "adapt.methods",
    "GVB": "adapt.methods",
    "RTN": "adapt.methods",
    "SymNets": "adapt.methods",
    "VADA": "adapt.methods",
    "AFN": "adapt.methods",
    "AdaBN": "adapt.methods",
    "BNM": "adapt.methods",
    "BSP": "adapt.methods",
    "DomainConfusion": "adapt.methods",
    "FixMatch": "adapt.methods",
    "IM": "adapt.methods",
    "JAN": "adapt.methods",
    "MCD": "adapt.methods",
    "MDD": "adapt.methods",
    "MinEnt": "adapt.methods",
    "MME": "adapt.methods",
    "TargetOnly": "adapt.methods",
    "FineTune": "adapt.methods",
    "Adapter": "adapt.methods",
    "DeepCORAL": "adapt.methods",
    "NotFittedError": "adapt.methods",
    "SourceOnly": "adapt.methods",
    "InputError": "adapt.train",
    "NonFiniteLossError": "adapt.train",
    "TrainConfig": "adapt.train",
    "seed_everything": "adapt.train",
}
_SUBMODULES = ("bench", "data", "losses", "methods", "models", "train", "validators")

if TYPE_CHECKING:  # what static tools and IDEs see
    from . import losses, methods, models
    from .methods import (
        ADDA,
        AFN,
        ATDOC,
        BNM,
        BSP,
        CDAN,
        DAN,
        DANN,
        DIRTT,
        GVB,
        IM,
        JAN,
        MCC,
        MCD,
        MDD,
        MME,
        RTN,
        VADA,
        AdaBN,
        Adapter,
        DeepCORAL,
        DomainConfusion,
        FineTune,
        FixMatch,
        MinEnt,
        NotFittedError,
        SourceOnly,
        SymNets,
        TargetOnly,
    )
    from .train import InputError, NonFiniteLossError, TrainConfig, seed_everything


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
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
    return sorted([*globals(), *_LAZY, *_SUBMODULES])


__all__ = [
    "ADDA",
    "AFN",
    "ATDOC",
    "BNM",
    "BSP",
    "CDAN",
    "DAN",
    "DANN",
    "DIRTT",
    "GVB",
    "IM",
    "JAN",
    "MCC",
    "MCD",
    "MDD",
    "MME",
    "RTN",
    "VADA",
    "AdaBN",
    "Adapter",
    "DeepCORAL",
    "DomainConfusion",
    "FineTune",
    "FixMatch",
    "InputError",
    "MinEnt",
    "NonFiniteLossError",
    "NotFittedError",
    "SourceOnly",
    "SymNets",
    "TargetOnly",
    "TrainConfig",
    "__version__",
    "losses",
    "methods",
    "models",
    "seed_everything",
]
