"""Method registry: the CLI, the docs table and the contract tests iterate over it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..registry import Registry
from .regularizers import REGULARIZERS

if TYPE_CHECKING:
    from torch import nn

    from .base import Adapter

#: Every offline source-free method by name (``SOURCE_FREE_METHODS.get("shot").from_source(model)``); apart
#: from :data:`METHODS`, since they adapt a trained model with the target alone (see adapt.sourcefree).
SOURCE_FREE_METHODS: Registry[type[Adapter]] = Registry("source-free method")

#: The baselines trained on labeled target examples (``fit(target_labeled=...)``): TargetOnly and FineTune.
TRANSFER_BASELINES: Registry[type[Adapter]] = Registry("transfer baseline")

#: Every method by name; ``register_method`` fills it.
METHODS: Registry[type[Adapter]] = Registry("method")

#: pytorch-adapt's implementations, ``pa:<name>`` (:mod:`adapt.methods.pa_backend` fills it).
PYTORCH_ADAPT_METHODS: Registry[type[Adapter]] = Registry("pytorch-adapt method")

#: Other libraries' implementations by name prefix; a backend module registers its classes in its entry.
OTHER_BACKENDS: dict[str, Registry[type[Adapter]]] = {"pa:": PYTORCH_ADAPT_METHODS}

A = TypeVar("A", bound="type[Adapter]")


def register_method(name: str, *aliases: str) -> Callable[[A], A]:
    """Class decorator that registers a method under ``name`` (and optional aliases)."""

    def decorate(cls: A) -> A:
        METHODS.add(name, cls, *aliases)
        cls.name = name
        return cls

    return decorate


def _other_backend(name: str) -> Registry[type[Adapter]] | None:
    """The registry of another library's implementations a prefixed name lives in (``pa:dann``:
    pytorch-adapt's, see :mod:`adapt.methods.pa_backend`), or None for this library's methods."""
    prefix = name.strip().lower()
    return next((registry for key, registry in OTHER_BACKENDS.items() if prefix.startswith(key)), None)


def split_composed(name: str) -> tuple[str, list[str]]:
    """``"cdan+bsp+mcc"`` -> ``("cdan", ["bsp", "mcc"])``: a method name, then regularizer names."""
    base, *extras = [part.strip() for part in name.split("+")]
    backend = _other_backend(base)
    if backend is not None:
        if extras:
            raise ValueError(f"{name!r}: another library's implementation takes no added regularizers")
        return backend.canonical(base), []
    METHODS.canonical(base)  # unknown method: a ValueError listing the available ones
    for extra in extras:
        REGULARIZERS.canonical(extra)
    return base, [REGULARIZERS.canonical(extra) for extra in extras]


def canonical_name(name: str) -> str:
    """The registered spelling of a method or composed name: ``"MMD+Entropy"`` -> ``"dan+minent"``."""
    base, extras = split_composed(name)
    return "+".join([base if _other_backend(base) else METHODS.canonical(base), *extras])


def default_regularizers(name: str) -> dict[str, float]:
    """The regularizers a composed name adds, each at its stand-alone method's default ``trade_off``."""
    _, extras = split_composed(name)
    return {extra: float(METHODS.get(extra).hyperparameter_defaults()["trade_off"]) for extra in extras}


def available() -> list[str]:
    """Canonical names of the registered methods, sorted."""
    return METHODS.names()


def aliases() -> dict[str, str]:
    """Alias -> canonical name."""
    return METHODS.aliases()


def get(name: str) -> type[Adapter]:
    """The method class registered under ``name`` or one of its aliases (for a composed name such as
    ``"cdan+bsp"``, the first part's)."""
    base = split_composed(name)[0]
    return (_other_backend(base) or METHODS).get(base)


def hyperparameters(name: str) -> dict[str, Any]:
    """The method-specific hyperparameters of ``name`` and their defaults."""
    return get(name).hyperparameter_defaults()


def _json_like(value: Any) -> Any:
    """Tuples become lists (and so on inside mappings): what a suite file or a checkpoint holds."""
    if isinstance(value, (tuple, list)):
        return [_json_like(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_like(v) for k, v in value.items()}
    return value


def preset_hyperparameters(name: str, preset_name: str) -> dict[str, Any]:
    """The hyperparameters of a method's named preset, e.g. ``preset_hyperparameters("dan", "tllib")``
    (without its training options, see :func:`preset_fit_options`)."""
    return get(name).preset(preset_name)[0]


def preset_fit_options(name: str, preset_name: str | None) -> dict[str, Any]:
    """The :class:`~adapt.train.engine.TrainConfig` options a preset sets (its ``"fit"`` entry: the
    authors' optimizer and schedule, for instance); ``{}`` without a preset."""
    return get(name).preset(preset_name)[1] if preset_name is not None else {}


def resolve_hyperparameters(name: str, hparams: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every hyperparameter ``create(name, **hparams)`` builds the method with: its defaults, then the
    preset ``hparams["preset"]`` names (if any), then ``hparams``; a composed name's regularizers at their
    default weights. Values are JSON-like (tuples become lists). This is what runs, so it is what a
    benchmark run's identity hashes (:mod:`adapt.bench.runner`).

    Examples
    --------
    >>> resolve_hyperparameters("dann", {"preset": "paper"})["domain_loss"]
    'sum'
    >>> resolve_hyperparameters("cdan+bsp")["regularizers"]
    {'bsp': 0.0001}
    """
    hparams = dict(hparams or {})
    preset = hparams.pop("preset", None)
    cls = get(name)
    composed = default_regularizers(name)
    if composed:
        hparams = {**hparams, "regularizers": {**composed, **(hparams.get("regularizers") or {})}}
    valid = hyperparameters(name)
    unknown = sorted(set(hparams) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown hyperparameter(s) {', '.join(unknown)} for method {cls.name!r}; valid: {', '.join(sorted(valid))}"
        )
    settings = {**valid, **(preset_hyperparameters(name, preset) if preset is not None else {}), **hparams}
    return _json_like(settings)


def fit_options(name: str, preset: str | None = None) -> dict[str, Any]:
    """The training options a method brings to ``fit`` (``fit_defaults``: its authors' optimizer, for the
    source-free methods), then its preset's; ``fit``'s own arguments and a suite's ``[train]`` override them."""
    return {**get(name).fit_defaults, **preset_fit_options(name, preset)}


def create(name: str, backbone: nn.Module, num_classes: int, preset: str | None = None, **hparams: Any) -> Adapter:
    """Build a registered method by name, for example ``create("dann", backbone=net, num_classes=10)``.

    ``preset`` starts from one of the method's named settings (``get(name).presets``, e.g. the
    paper's or TLlib's); ``hparams`` override it. A preset may also set training options (the
    authors' optimizer and schedule): the model's ``fit`` then uses them unless told otherwise.
    A composed name adds regularizers at their default weights: ``create("cdan+bsp", ...)``; a
    ``regularizers`` mapping in ``hparams`` overrides those weights.
    """
    settings = resolve_hyperparameters(name, {**hparams, **({"preset": preset} if preset is not None else {})})
    model = get(name)(backbone, num_classes, **settings)
    model.fit_preset_ = preset_fit_options(name, preset)
    return model
