"""The shared training engine, input handling and schedules."""

from ..batch import Batch
from .data import InputError
from .engine import Callback, Logger, NonFiniteLossError, Stepper, TrainConfig, seed_everything, train
from .schedules import grl_coefficient, lr_factor

__all__ = [
    "Batch",
    "Callback",
    "InputError",
    "Logger",
    "NonFiniteLossError",
    "Stepper",
    "TrainConfig",
    "grl_coefficient",
    "lr_factor",
    "seed_everything",
    "train",
]
