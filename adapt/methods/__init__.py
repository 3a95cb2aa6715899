"""Adaptation methods and their registry.

Adding a method is one file: an :class:`~adapt.methods.base.Adapter` subclass decorated with
:func:`register_method` (or registered in :data:`SOURCE_FREE_METHODS` / :data:`TRANSFER_BASELINES`).
Every module of this package is imported below, and every registered class is exported here under
its class name, exported lazily by ``adapt`` (unsupervised methods and transfer baselines), listed by
``adapt-bench list``, given a documentation page and run through the registry-wide contract tests.
The how-to is ``docs/extending.md``.
"""

from ..registry import import_submodules
from .base import Adapter, NotFittedError, Outputs
from .registry import (
    METHODS,
    PYTORCH_ADAPT_METHODS,
    SOURCE_FREE_METHODS,
    TRANSFER_BASELINES,
    aliases,
    available,
    create,
    fit_options,
    get,
    hyperparameters,
    preset_fit_options,
    preset_hyperparameters,
    register_method,
    resolve_hyperparameters,
)
from .regularizers import REGULARIZERS
from .source_free import SourceFreeAdapter

import_submodules(__name__, __path__)

#: class name -> class, for every method this library implements (pytorch-adapt's ``pa:`` wrappers
#: are reached by name through :func:`create`, not exported)
REGISTERED_CLASSES = {
    cls.__name__: cls for registry in (METHODS, SOURCE_FREE_METHODS, TRANSFER_BASELINES) for cls in registry.values()
}
globals().update(REGISTERED_CLASSES)

__all__ = [
    "METHODS",
    "PYTORCH_ADAPT_METHODS",
    "REGISTERED_CLASSES",
    "REGULARIZERS",
    "SOURCE_FREE_METHODS",
    "TRANSFER_BASELINES",
    "Adapter",
    "NotFittedError",
    "Outputs",
    "SourceFreeAdapter",
    "aliases",
    "available",
    "create",
    "fit_options",
    "get",
    "hyperparameters",
    "preset_fit_options",
    "preset_hyperparameters",
    "register_method",
    "resolve_hyperparameters",
]
__all__ += sorted(REGISTERED_CLASSES)
