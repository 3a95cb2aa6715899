"""Adaptation methods and their registry.

Adding a method: write one file with an :class:`~adapt.methods.base.Adapter` subclass decorated
with :func:`register_method`, import it below, and the contract tests pick it up.
"""

from .aad import AaD
from .adabn import AdaBN
from .adda import ADDA
from .afn import AFN
from .atdoc import ATDOC
from .base import Adapter, NotFittedError, Outputs
from .bnm import BNM
from .bsp import BSP
from .cdan import CDAN
from .coral import DeepCORAL
from .dan import DAN
from .dann import DANN
from .dirt_t import DIRTT
from .domain_confusion import DomainConfusion
from .finetune import FineTune, TargetOnly
from .fixmatch import FixMatch
from .gvb import GVB
from .im import IM
from .jan import JAN
from .mcc import MCC
from .mcd import MCD
from .mdd import MDD
from .minent import MinEnt
from .mme import MME
from .nrc import NRC
from .registry import (
    METHODS,
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
from .rtn import RTN
from .shot import SHOT, SHOTIM
from .source_free import SourceFreeAdapter
from .source_only import SourceOnly
from .symnets import SymNets
from .vada import VADA

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
    "METHODS",
    "MME",
    "NRC",
    "REGULARIZERS",
    "RTN",
    "SHOT",
    "SHOTIM",
    "SOURCE_FREE_METHODS",
    "TRANSFER_BASELINES",
    "VADA",
    "AaD",
    "AdaBN",
    "Adapter",
    "DeepCORAL",
    "DomainConfusion",
    "FineTune",
    "FixMatch",
    "MinEnt",
    "NotFittedError",
    "Outputs",
    "SourceFreeAdapter",
    "SourceOnly",
    "SymNets",
    "TargetOnly",
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
