"""What every test-time method shares: a private copy of the model, predictions on a batch, reset."""

from __future__ import annotations

import contextlib
import copy
import inspect
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import pandas as pd
import torch
from torch import nn

from ..errors import InputError
from ..models.batchnorm import batch_norm_layers
from ..registry import Registry
from ..train.data import _to_tensor, check_inputs

#: Every test-time method by name (``TEST_TIME_METHODS.get("tent")(model)``).
TEST_TIME_METHODS: Registry[type[TestTimeAdapter]] = Registry("test-time method")


def _as_batch(x: Any) -> torch.Tensor:
    return check_inputs(_to_tensor(x, "a test-time batch"), "test-time batch")


@contextlib.contextmanager
def model_takes(shape: torch.Size) -> Iterator[None]:
    """A model that cannot take inputs of this shape fails with an InputError naming the shape."""
    try:
        yield
    except RuntimeError as exc:
        if "shape" not in str(exc) and "size" not in str(exc):
            raise
        raise InputError(f"the model cannot take inputs of shape {tuple(shape)}: {str(exc).splitlines()[0]}") from exc


class TestTimeAdapter:
    """Base class: holds a copy of ``model`` and the state to go back to (:meth:`reset`).

    Subclasses implement :meth:`adapt_and_predict`, which sees one batch, may update the copy, and
    returns the logits it predicts for that batch.

    Parameters
    ----------
    model : a trained classifier, ``model(x) -> logits (B, C)``. It is deep-copied; the original is not
        changed. Its device is kept.
    """

    __test__ = False  # not a pytest class, whatever its name says
    name = ""
    paper = ""
    #: Named settings reproducing the authors' code (``create(name, model, preset=...)``).
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Moves when the method's code changes its results in a way its settings do not show (a benchmark
    #: run's identity includes it).
    revision: ClassVar[int] = 1

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = copy.deepcopy(model)
        self.device = next(iter(self.model.parameters()), torch.empty(0)).device
        self.batches_seen = 0

    @classmethod
    def hyperparameter_defaults(cls) -> dict[str, Any]:
        """Keyword-only constructor settings with plain defaults (numbers, strings, booleans), this
        class's and its bases': what a suite file may set."""
        params: dict[str, Any] = {}
        for klass in cls.__mro__:
            if "__init__" not in vars(klass) or klass is object:
                continue
            for p in inspect.signature(klass.__init__).parameters.values():
                if p.kind is p.KEYWORD_ONLY and isinstance(p.default, (int, float, str, bool)):
                    params.setdefault(p.name, p.default)
        return params

    def _snapshot(self) -> None:
        """Remember the state :meth:`reset` returns to (call at the end of a subclass's ``__init__``)."""
        self._initial = copy.deepcopy(self.state_dict())

    #: The optimizer of a method that learns (its state is saved and reset with the model's).
    optimizer: torch.optim.Optimizer | None = None

    def state_dict(self) -> dict[str, Any]:
        state = {"model": self.model.state_dict(), "batches_seen": self.batches_seen}
        return state if self.optimizer is None else {**state, "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.batches_seen = int(state["batches_seen"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])

    def reset(self) -> None:
        """Forget every batch seen: back to the wrapped model as it was given."""
        self.load_state_dict(copy.deepcopy(self._initial))

    def require_batch_norm(self, kind: str = "all") -> list[nn.modules.batchnorm._BatchNorm]:
        """The model's BatchNorm layers: all of them, or (``kind="2d"``) the ``nn.BatchNorm2d`` ones."""
        if kind not in ("all", "2d"):
            raise ValueError(f"batch_norm must be 'all' or '2d', got {kind!r}")
        layers = batch_norm_layers(self.model)
        if not layers:
            raise InputError(
                f"{type(self).__name__} adapts BatchNorm layers, and the model has none; give the network "
                f"BatchNorm (for our methods: bottleneck_dim=...) or use a method that adapts other parameters"
            )
        if kind == "2d":
            layers = [m for m in layers if isinstance(m, nn.BatchNorm2d)]
            if not layers:
                name = type(self).__name__
                raise InputError(f"{name}(batch_norm='2d') adapts nn.BatchNorm2d layers, and the model has none; "
                                 "use batch_norm='all' to adapt its other BatchNorm layers")  # fmt: skip
        return layers

    def norm_layers(self, batch_norm: str = "all") -> list[nn.Module]:
        """The normalization layers a method that works on any normalization adapts: the BatchNorm layers
        ``batch_norm`` names (as :meth:`require_batch_norm`; none is fine) and every LayerNorm and
        GroupNorm (transformers, GroupNorm ResNets). An InputError when the model has none of them."""
        others = [m for m in self.model.modules() if isinstance(m, (nn.LayerNorm, nn.GroupNorm))]
        if not batch_norm_layers(self.model):
            if not others:
                raise InputError(f"{type(self).__name__} adapts normalization layers (BatchNorm, LayerNorm, "
                                 "GroupNorm), and the model has none")  # fmt: skip
            return others
        return [*self.require_batch_norm(batch_norm), *others]

    def adapt_norm_layers(self, batch_norm: str = "all", skip_top_layers: bool = False) -> list[nn.Parameter]:
        """Set the copy up for methods that learn normalization affine parameters on any normalization (SAR,
        DeYO, ROID): eval mode, every weight frozen but the affine parameters of :meth:`norm_layers` (less the
        layers :func:`skipped_by_the_authors` names, with ``skip_top_layers``), BatchNorm by batch statistics.
        Returns the parameters to optimize."""
        layers = self.norm_layers(batch_norm)
        names = {id(m): name for name, m in self.model.named_modules()}
        params = _params([m for m in layers if not (skip_top_layers and skipped_by_the_authors(names[id(m)]))])
        if not params:
            raise ValueError("no normalization layer with affine parameters is left to adapt (skip_top_layers=False "
                             "adapts the layers the authors skip by name)")  # fmt: skip
        self.model.eval().requires_grad_(False)
        use_batch_statistics(layers)
        for p in params:
            p.requires_grad_(True)
        return params

    @property
    def predicting_model(self) -> nn.Module:
        """The network whose outputs the method predicts with (a mean teacher's methods: the teacher), which
        :func:`evaluate_batches` scores after the stream."""
        return self.model

    def adapt_and_predict(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def predict_logits(self, x: Any) -> torch.Tensor:
        """Logits for the batch ``x`` (B, C), on the CPU; the method adapts on the batch as it predicts."""
        batch = _as_batch(x).to(self.device)
        with model_takes(batch.shape):
            logits = self.adapt_and_predict(batch)
        if logits.ndim != 2 or logits.shape[0] != batch.shape[0]:
            raise InputError(f"the model must return (batch, classes) logits, got shape {tuple(logits.shape)}")
        self.batches_seen += 1
        return logits.detach().float().cpu()

    def predict(self, x: Any) -> torch.Tensor:
        """Class predictions for the batch ``x``; the method adapts on the batch as it predicts."""
        return self.predict_logits(x).argmax(dim=1)

    @torch.no_grad()
    def predict_unadapted(self, x: Any) -> torch.Tensor:
        """Class predictions for ``x`` by :attr:`predicting_model` as it stands, adapting on nothing: what a
        method busy adapting answers under a compute-charged stream (``StreamConfig.charge_compute``)."""
        batch = _as_batch(x).to(self.device)
        with model_takes(batch.shape):
            return self.predicting_model(batch).argmax(dim=1).cpu()


def resolve_hyperparameters(name: str, hparams: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every setting ``create(name, model, **hparams)`` builds a test-time method with: its defaults, the
    preset ``hparams["preset"]`` names (if any), then ``hparams`` (what a benchmark run's identity hashes)."""
    hparams = dict(hparams or {})
    preset = hparams.pop("preset", None)
    cls = TEST_TIME_METHODS.get(name)
    defaults = cls.hyperparameter_defaults()
    if preset is not None and preset not in cls.presets:
        valid = ", ".join(sorted(cls.presets)) or "none"
        raise ValueError(f"test-time method {name!r} has no preset {preset!r}; its presets: {valid}")
    return {**defaults, **(cls.presets[preset] if preset is not None else {}), **hparams}


def create(name: str, model: nn.Module, preset: str | None = None, **hparams: Any) -> TestTimeAdapter:
    """A registered test-time method wrapping ``model``: ``create("tent", model, preset="official")``."""
    settings = {**(TEST_TIME_METHODS.get(name).presets.get(preset, {}) if preset else {}), **hparams}
    if preset is not None:
        resolve_hyperparameters(name, {"preset": preset})  # an unknown preset names the valid ones
    return TEST_TIME_METHODS.get(name)(model, **settings)


def evaluate_stream(
    adapter: TestTimeAdapter, x: Any, y: Any, batch_size: int = 64, after_batch_size: int = 256
) -> pd.Series:
    """Stream ``x`` once, in order, through ``adapter``; score with the labels ``y``.

    Returns ``online_accuracy`` (each batch predicted before the method adapted on it, the test-time
    protocol of Wang et al., ICLR 2021) and ``after_accuracy`` (the adapted model on the whole of ``x``
    afterwards, in eval mode, without adapting further), plus ``batches``.
    """
    x, y = _as_batch(x), torch.as_tensor(y)
    if y.shape[0] != x.shape[0]:
        raise InputError(f"the stream has {x.shape[0]} inputs but {y.shape[0]} labels")
    batches = list(zip(x.split(batch_size), y.split(batch_size)))
    return evaluate_batches(adapter, adapter.model, batches, after_batch_size)


def evaluate_batches(
    adapter: TestTimeAdapter | None,
    model: nn.Module,
    batches: Iterable[Any],
    after_batch_size: int = 256,
    relative_speed: int = 1,
) -> pd.Series:
    """:func:`evaluate_stream` on labeled ``(x, y, ...)`` batches (a list, or a DataLoader streaming a
    Dataset, read twice: once adapting, once to score the adapted model). ``adapter`` None scores
    ``model`` as it is, the unadapted baseline; otherwise ``adapter.predicting_model`` is scored afterwards.
    Batches ``(x, y, domain)`` (a stream of several domains) add ``online_accuracy_per_domain``:
    domain id -> online accuracy on its examples, in the order the domains first arrive. ``relative_speed``
    :math:`k > 1` charges the method for its compute: it adapts on batches 0, k, 2k, ... only, and predicts
    the others with :meth:`TestTimeAdapter.predict_unadapted`."""
    if isinstance(relative_speed, bool) or int(relative_speed) != relative_speed or relative_speed < 1:
        raise ValueError(f"relative_speed must be a positive integer, got {relative_speed!r}")
    correct = total = 0
    per_domain: dict[int, list[int]] = {}
    device = next(iter(model.parameters()), torch.empty(0)).device
    for index, batch in enumerate(batches):
        if isinstance(batch, torch.Tensor) or len(batch) < 2:
            raise InputError("evaluate_batches scores labeled (x, y) batches; for an unlabeled stream call "
                             "adapter.predict(x) on each batch")  # fmt: skip
        x, y = batch[0], torch.as_tensor(batch[1])
        if adapter is None:
            predicted = _static_predictions(model, _as_batch(x), after_batch_size, device)
        elif index % relative_speed:
            predicted = adapter.predict_unadapted(x)
        else:
            predicted = adapter.predict(x)
        hits = predicted == y
        correct += int(hits.sum())
        total += len(y)
        if len(batch) > 2:
            _count_per_domain(per_domain, torch.as_tensor(batch[2]), hits)
    if total == 0:
        raise InputError("the stream is empty: no batches to adapt on")
    if adapter is None:  # nothing adapted: the second pass would repeat the first
        after = correct
    else:
        after = sum(int((_static_predictions(adapter.predicting_model, _as_batch(x), after_batch_size, device)
                         == torch.as_tensor(y)).sum()) for x, y, *_ in batches)  # fmt: skip
    domains = {"online_accuracy_per_domain": {d: hit / n for d, (hit, n) in per_domain.items()}} if per_domain else {}
    return pd.Series({
        "online_accuracy": correct / total,
        "after_accuracy": after / total,
        "batches": adapter.batches_seen if adapter is not None else 0,
        **domains,
    })  # fmt: skip


def _count_per_domain(counts: dict[int, list[int]], domains: torch.Tensor, hits: torch.Tensor) -> None:
    for d in dict.fromkeys(domains.tolist()):  # in the order they arrive
        mask = domains == d
        counts.setdefault(int(d), [0, 0])
        counts[int(d)][0] += int(hits[mask].sum())
        counts[int(d)][1] += int(mask.sum())


@torch.no_grad()
def _static_predictions(model: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(chunk.to(device)).argmax(1).cpu() for chunk in x.split(batch_size)])
    finally:
        model.train(was_training)


#: The reference benchmark's ImageNet-C optimizer (mariodoebler/test-time-adaptation at 8b2ed63,
#: ``cfgs/imagenet_c/{tent,eata,deyo,roid}.yaml`` with ``conf.py``'s SGD defaults: momentum 0.9, Nesterov).
IMAGENET_SGD: dict[str, Any] = {"optimizer": "sgd", "lr": 2.5e-4, "momentum": 0.9, "nesterov": True}


def make_optimizer(
    params: list[nn.Parameter], optimizer: str, lr: float, momentum: float = 0.9, nesterov: bool = False
) -> torch.optim.Optimizer:
    """A test-time method's optimizer, as the reference benchmark's ``setup_optimizer``: ``"adam"`` (betas
    ``(momentum, 0.999)``) or ``"sgd"`` (``momentum``, ``nesterov``); no weight decay."""
    if optimizer == "adam":
        if nesterov:
            raise ValueError("nesterov applies to optimizer = 'sgd' only")
        return torch.optim.Adam(params, lr=lr, betas=(momentum, 0.999))
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")


def _params(modules: Iterable[nn.Module]) -> list[nn.Parameter]:
    return [p for m in modules for p in m.parameters(recurse=False)]


def use_batch_statistics(layers: Iterable[nn.Module]) -> None:
    """BatchNorm layers among ``layers`` normalize by each test batch's own statistics, in training and
    eval mode alike, never by the source's running estimates (dropped); other layers are left alone."""
    for layer in layers:
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.track_running_stats = False
            layer.running_mean, layer.running_var = None, None


def skipped_by_the_authors(name: str) -> bool:
    """The normalization layers SAR's and DeYO's authors leave alone by module name: a ResNet's last stage
    (``layer4``), a ViT-B's last three blocks and its final norm (their ``collect_params``)."""
    return "layer4" in name or any(f"blocks.{i}" in name for i in (9, 10, 11)) or "norm." in name or name == "norm"
