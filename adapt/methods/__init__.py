"""Adaptation methods and their registry.

Adding a method: write one file with an :class:`~adapt.methods.base.Adapter` subclass decorated
with :func:`register_method`, import it below, and the contract tests pick it up.
"""

from .base import Adapter, NotFittedError, Outputs
from .cdan import CDAN
from .coral import DeepCORAL
from .dan import DAN
from .dann import DANN
from .mcc import MCC
from .registry import METHODS, aliases, available, create, get, hyperparameters, preset_hyperparameters, register_method
from .source_only import SourceOnly

__all__ = [
    "CDAN",
    "DAN",
    "DANN",
    "MCC",
    "METHODS",
    "Adapter",
    "DeepCORAL",
    "NotFittedError",
    "Outputs",
    "SourceOnly",
    "aliases",
    "available",
    "create",
    "get",
    "hyperparameters",
    "preset_hyperparameters",
    "register_method",
]
