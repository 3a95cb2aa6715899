"""Turn what a user passes to ``fit``/``predict`` into checked, infinite batch streams.

Accepted inputs
---------------
* a pair ``(x, y)`` of tensors or numpy arrays (labeled) -- kept in memory and sliced by index,
  which is much faster than a per-item ``DataLoader``;
* a tensor or numpy array ``x`` (unlabeled);
* a ``torch.utils.data.Dataset`` yielding ``(x, y)`` or ``x`` (a ``TensorDataset`` takes the
  in-memory path);
* a ``torch.utils.data.DataLoader`` yielding batches of the same (its own batch size is used);
* decoded images, :class:`~adapt.data.cache.CachedImages`: uint8 batches are sliced by index and
  augmented on the device, a whole batch at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset

from ..errors import InputError
from .distributed import Shard


@runtime_checkable
class BatchedViews(Protocol):
    """A dataset whose batches are made on the device from stored tensors: rows are gathered by
    position (``pixels``) and turned into inputs a whole batch at a time (``apply_view``), as
    :class:`adapt.data.cache.CachedImages` does. The engine needs nothing else of it."""

    targets: np.ndarray | None

    def __len__(self) -> int: ...
    def pixels(self, positions: torch.Tensor) -> torch.Tensor: ...
    def apply_view(
        self, images: torch.Tensor, generator: torch.Generator | None = None, shard: tuple[int, int] | None = None
    ) -> torch.Tensor: ...
    def eval_view(self, images: torch.Tensor) -> torch.Tensor: ...
    def unlabeled(self) -> BatchedViews: ...
    def to(self, device: torch.device | str) -> BatchedViews: ...


def _to_tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise InputError(f"{what} is a numpy array of dtype object; pass a numeric array")
        if value.dtype.kind in "USV":  # strings or bytes: class names, not indices
            raise InputError(f"{what} is a numpy array of strings ({value.dtype}); pass integer class indices "
                             "(for names, np.unique(names, return_inverse=True)[1])")  # fmt: skip
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor):
        raise InputError(f"{what} must be a tensor or numpy array, got {type(value).__name__}")
    return value


def check_inputs(x: torch.Tensor, what: str) -> torch.Tensor:
    """Check floating dtype and finiteness of an input batch or array; float64 becomes float32."""
    if not torch.is_floating_point(x):
        raise InputError(
            f"{what} has dtype {x.dtype}; inputs must be floating point (for uint8 images use x.float() / 255)"
        )
    if x.dtype == torch.float64:
        x = x.float()
    if x.ndim < 1 or x.shape[0] == 0:
        raise InputError(f"{what} is empty (shape {tuple(x.shape)})")
    if x.ndim == 1:
        raise InputError(f"{what} is 1-D (shape {tuple(x.shape)}): pass one row per example, e.g. x[:, None] "
                         "for a single feature")  # fmt: skip
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).flatten(1).any(1).nonzero()[0]) if x.ndim > 1 else 0
        kind = "NaN" if torch.isnan(x).any() else "inf"
        raise InputError(f"{what} contains {kind} values (first at row {bad})")
    return x


def check_labels(y: torch.Tensor, num_classes: int, what: str) -> torch.Tensor:
    """Check that labels are integers in ``[0, num_classes)``; returns them as int64."""
    if torch.is_floating_point(y) or y.dtype == torch.bool or torch.is_complex(y):
        raise InputError(f"{what} have dtype {y.dtype}; class labels must be integers")
    if y.ndim != 1:
        raise InputError(f"{what} must be 1-D class indices, got shape {tuple(y.shape)}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise InputError(
            f"{what} must lie in [0, {num_classes}) for num_classes={num_classes}, "
            f"got values from {int(y.min())} to {int(y.max())}"
        )
    return y.long()


def _first(item: Any) -> Any:
    return item[0] if isinstance(item, (tuple, list)) else item


@dataclass
class Domain:
    """One domain's data, either in memory (``x``, ``y``) or behind a Dataset/DataLoader."""

    role: str
    labeled: bool
    num_classes: int | None
    x: torch.Tensor | None = None
    y: torch.Tensor | None = None
    dataset: Dataset | None = None
    loader: DataLoader | None = None
    cached: BatchedViews | None = None

    def __len__(self) -> int:
        if self.x is not None:
            return self.x.shape[0]
        if self.cached is not None:
            return len(self.cached)
        if self.dataset is not None:
            return len(self.dataset)
        assert self.loader is not None
        return len(self.loader.dataset)

    def example(self, n: int = 2) -> torch.Tensor:
        """The first ``n`` inputs (fewer if the domain is smaller), for shape checks and dry runs."""
        if self.x is not None:
            return self.x[:n]
        if self.cached is not None:
            return self.cached.eval_view(self.cached.pixels(torch.arange(min(n, len(self)))))
        if self.dataset is not None:
            items = [_first(self.dataset[i]) for i in range(min(n, len(self)))]
            return check_inputs(torch.stack([_to_tensor(i, f"{self.role} input") for i in items]), f"{self.role} x")
        assert self.loader is not None
        return check_inputs(_to_tensor(_first(next(iter(self.loader))), f"{self.role} batch"), f"{self.role} batch")[:n]

    def check_batch(self, batch: Any, what: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Validate one batch from a Dataset/DataLoader (in-memory data was checked up front)."""
        if self.labeled:
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                raise InputError(f"{what} must be (x, y) pairs; got {type(batch).__name__}")
            x = check_inputs(_to_tensor(batch[0], f"{what} x"), f"{what} x")
            y = check_labels(_to_tensor(batch[1], f"{what} labels"), self.num_classes or 0, f"{what} labels")
            return x, y
        return check_inputs(_to_tensor(_first(batch), f"{what} x"), f"{what} x"), None


def as_domain(data: Any, role: str, labeled: bool, num_classes: int | None = None) -> Domain:
    """Coerce user input into a checked :class:`Domain`.

    ``labeled=False`` accepts labeled inputs too and drops the labels: the target labels of a
    ``(x, y)`` target dataset are never read for training.
    """
    if data is None:
        raise InputError(f"no {role} data given")
    if isinstance(data, DataLoader):
        if len(data.dataset) == 0:
            raise InputError(f"the {role} DataLoader's dataset is empty")
        return Domain(role, labeled, num_classes, loader=data)
    if isinstance(data, BatchedViews):
        if len(data) == 0:
            raise InputError(f"the {role} dataset is empty")
        if labeled and data.targets is None:
            raise InputError(f"{role} must be labeled, but its cached images carry no labels")
        if labeled:
            check_labels(torch.from_numpy(data.targets), num_classes or 0, f"{role} labels")
        return Domain(role, labeled, num_classes, cached=data if labeled else data.unlabeled())
    if isinstance(data, TensorDataset) and len(data.tensors) in (1, 2):
        # Tensors in memory: slice them directly instead of collating item by item.
        tensors = data.tensors if labeled else data.tensors[:1]
        if labeled and len(tensors) != 2:
            raise InputError(f"the {role} TensorDataset must hold (x, y) tensors")
        return as_domain(tuple(tensors) if labeled else tensors[0], role, labeled, num_classes)
    if isinstance(data, Dataset) and not isinstance(data, (tuple, list)):
        try:
            n = len(data)
        except TypeError as exc:
            raise InputError(f"the {role} dataset has no length; wrap it in a DataLoader") from exc
        if n == 0:
            raise InputError(f"the {role} dataset is empty")
        return Domain(role, labeled, num_classes, dataset=data)
    if isinstance(data, (tuple, list)):
        if len(data) != 2 and not labeled and all(isinstance(row, (list, tuple)) for row in data[:1]):
            raise InputError(f"{role} is a list of {len(data)} lists; pass an array or tensor "
                             "(np.asarray(rows, dtype=np.float32))")  # fmt: skip
        if len(data) != 2:
            raise InputError(f"{role} must be a pair (x, y); got a sequence of length {len(data)}")
        x = check_inputs(_to_tensor(data[0], f"{role} x"), f"{role} x")
        if not labeled:
            return Domain(role, labeled, num_classes, x=x)
        y = _to_tensor(data[1], f"{role} y")
        if y.shape[0] != x.shape[0]:
            raise InputError(f"{role} x has {x.shape[0]} rows but y has {y.shape[0]}")
        return Domain(role, labeled, num_classes, x=x, y=check_labels(y, num_classes or 0, f"{role} labels"))
    if isinstance(data, (torch.Tensor, np.ndarray)):
        if labeled:
            raise InputError(f"{role} must be labeled: pass (x, y) or a Dataset yielding (x, y)")
        x = check_inputs(_to_tensor(data, f"{role} x"), f"{role} x")
        return Domain(role, labeled, num_classes, x=x)
    raise InputError(
        f"unsupported {role} type {type(data).__name__}; pass (x, y) arrays, a tensor, a Dataset or a DataLoader"
    )


def check_compatible(source: Domain, target: Domain) -> None:
    """Source and target samples must have the same per-sample shape (channels included)."""
    s_shape, t_shape = tuple(source.example(1).shape[1:]), tuple(target.example(1).shape[1:])
    if s_shape != t_shape:
        detail = ""
        if len(s_shape) == len(t_shape) == 3 and s_shape[0] != t_shape[0]:
            detail = f": channels differ ({s_shape[0]} vs {t_shape[0]})"
        raise InputError(f"source samples have shape {s_shape} but target samples have {t_shape}{detail}")


class IndexedDataset(Dataset):
    """A dataset whose items come with their positions, ``(i, item)``: batches then carry the dataset
    indices of their examples (memory-bank methods such as ATDOC key their memory by them)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[int, Any]:
        return i, self.dataset[i]


#: One batch of a stream: inputs, labels (None for an unlabeled domain) and the examples' positions
#: in their dataset (None when a user's DataLoader hides them).
StreamBatch = tuple[torch.Tensor, "torch.Tensor | None", "torch.Tensor | None"]


class _ShuffledRows:
    """Endless shuffled row indices, one ``randperm`` of ``n`` per epoch kept on ``order_device``, with
    the epoch's order and position saved for resumption (the generator is saved by the engine). With a
    ``shard``, each batch is this process's share of the global batch."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, order_device: torch.device,
                 shard: Shard | None) -> None:  # fmt: skip
        self.n, self.batch_size, self.generator = n, min(batch_size, n), generator
        self.order_device, self.shard = order_device, shard
        self._order = torch.empty(0, dtype=torch.long)
        self._pos = 0

    def state_dict(self) -> dict[str, Any]:
        """This epoch's order and the position in it."""
        return {"order": self._order.cpu(), "pos": self._pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._order, self._pos = state["order"].to(self.order_device), int(state["pos"])

    def __iter__(self) -> Iterator[StreamBatch]:
        return self

    def _next_rows(self) -> torch.Tensor:
        if self._pos + self.batch_size > self._order.numel():
            self._order = torch.randperm(self.n, generator=self.generator).to(self.order_device)
            self._pos = 0
        idx = self._order[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return self.shard.rows(idx) if self.shard is not None else idx


class InMemoryBatches(_ShuffledRows):
    """Endless shuffled batches sliced from tensors; one ``randperm`` per epoch.

    The tensors are moved to the device once when they fit comfortably, so a GPU step needs no
    host-to-device copy at all.
    """

    def __init__(
        self, domain: Domain, batch_size: int, generator: torch.Generator, device: torch.device,
        shard: Shard | None = None,
    ) -> None:  # fmt: skip
        assert domain.x is not None
        self.device = device
        on_device = domain.x.numel() * domain.x.element_size() < 2**30
        target = device if on_device else torch.device("cpu")
        self.x = domain.x.to(target)
        self.y = domain.y.to(target) if domain.y is not None else None
        if not on_device and device.type == "cuda":
            self.x = self.x.pin_memory()
            self.y = self.y.pin_memory() if self.y is not None else None
        super().__init__(len(domain), batch_size, generator, self.x.device, shard)

    def __next__(self) -> StreamBatch:
        idx = self._next_rows()
        x = self.x.index_select(0, idx).to(self.device, non_blocking=True)
        y = self.y.index_select(0, idx).to(self.device, non_blocking=True) if self.y is not None else None
        return x, y, idx.to(self.device, non_blocking=True)


class CachedBatches(_ShuffledRows):
    """Endless shuffled batches of decoded uint8 images, viewed (cropped, flipped, normalized) on the
    device a whole batch at a time; crops and flips are drawn from the run's generator, so runs are
    reproducible and resume exactly. The uint8 storage moves to an accelerator once when it fits."""

    def __init__(
        self, domain: Domain, batch_size: int, generator: torch.Generator, device: torch.device,
        shard: Shard | None = None,
    ) -> None:  # fmt: skip
        assert domain.cached is not None
        self.data, self.device = domain.cached, device
        if device.type != "cpu" and self.data.images.numel() < 2**33:
            self.data = self.data.to(device)  # the caller's dataset keeps its host storage
        self.y = torch.from_numpy(self.data.targets) if self.data.targets is not None else None
        super().__init__(len(self.data), batch_size, generator, torch.device("cpu"), shard)

    def __next__(self) -> StreamBatch:
        idx = self._next_rows()
        shard = (self.shard.rank, self.shard.world) if self.shard is not None else None
        pixels = self.data.pixels(idx).to(self.device, non_blocking=True)
        x = self.data.apply_view(pixels, self.generator, shard)
        y = self.y[idx].to(self.device, non_blocking=True) if self.y is not None else None
        return x, y, idx.to(self.device, non_blocking=True)


class EpochSampler(Sampler[int]):
    """A fresh random order of ``n`` indices each epoch, drawn from ``generator`` when the epoch's
    first batch is asked for, that can also resume in mid-epoch. It draws from the generator exactly
    as ``RandomSampler`` does (one more permutation, unused, when an epoch runs out), so runs give
    the same batches as with ``shuffle=True``."""

    def __init__(self, n: int, generator: torch.Generator, shard: Shard | None = None, global_batch: int = 1) -> None:
        self.n, self.generator, self.shard, self.global_batch = n, generator, shard, global_batch
        self.order: torch.Tensor | None = None
        self.start = 0

    def __len__(self) -> int:
        return self.n if self.shard is None else len(self._mine(torch.arange(self.n)))

    def _mine(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's indices: every ``world``-th of the epoch's full global batches (all ranks then
        have as many batches, and rank ``r``'s batch ``k`` is its share of global batch ``k``)."""
        if self.shard is None:
            return order
        return self.shard.rows(order[: self.n // self.global_batch * self.global_batch])

    def __iter__(self) -> Iterator[int]:
        if self.start and self.order is not None:
            order, start = self.order, self.start
        else:
            order, start = torch.randperm(self.n, generator=self.generator), 0
        self.order, self.start = order, 0
        yield from self._mine(order)[start:].tolist()
        torch.randperm(self.n, generator=self.generator)  # RandomSampler's draw for a partial last epoch


class LoaderBatches:
    """Endless batches from a DataLoader, checked on the host before the (non-blocking) copy.

    Batches with fewer than ``min_size`` examples (the ragged end of an epoch of a user DataLoader
    with ``drop_last=False``) are skipped; an epoch with no batch of that size is an error.
    ``indexed``: the loader's dataset is an :class:`IndexedDataset`, whose batches carry positions.
    """

    def __init__(
        self, domain: Domain, loader: DataLoader, device: torch.device, min_size: int = 1, indexed: bool = False
    ) -> None:
        self.domain = domain
        self.loader = loader
        self.device = device
        self.min_size = min_size
        self.indexed = indexed
        self._it: Iterator[Any] | None = None
        self._count = 0
        self._in_epoch = 0  # batches drawn from the current epoch's iterator

    def __iter__(self) -> Iterator[StreamBatch]:
        return self

    def _sampler(self) -> EpochSampler | None:
        sampler = getattr(getattr(self.loader, "batch_sampler", None), "sampler", None)
        return sampler if isinstance(sampler, EpochSampler) else None

    def state_dict(self) -> dict[str, Any]:
        """The epoch's order and how many of its batches were used (a DataLoader you pass: the count only)."""
        sampler = self._sampler()
        order = sampler.order if sampler is not None and sampler.order is not None else torch.empty(0)
        return {"order": order, "in_epoch": self._in_epoch, "count": self._count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the saved epoch where it stopped (adapt's own loader); a user's DataLoader starts
        its epoch again. The engine restores the generator afterwards, so the iterator made here
        leaves no trace in the random stream."""
        self._count = int(state["count"])
        sampler = self._sampler()
        if sampler is None or not len(state["order"]) or not state["in_epoch"]:
            return
        sampler.order, sampler.start = state["order"], int(state["in_epoch"]) * self.loader.batch_sampler.batch_size
        self._it, self._in_epoch = iter(self.loader), int(state["in_epoch"])

    def _next_raw(self) -> Any:
        if self._it is None:
            self._it, self._in_epoch = iter(self.loader), 0
        try:
            batch = next(self._it)
        except StopIteration:
            self._it, self._in_epoch = iter(self.loader), 0
            batch = next(self._it)
        self._in_epoch += 1
        return batch

    def __next__(self) -> StreamBatch:
        try:
            attempts = len(self.loader) + 1
        except TypeError:  # an iterable-style dataset has no length
            attempts = 1000
        for _ in range(attempts):
            self._count += 1
            raw, index = self._next_raw(), None
            if self.indexed:
                index, raw = raw
            x, y = self.domain.check_batch(raw, f"{self.domain.role} batch {self._count}")
            if x.shape[0] >= self.min_size:
                break
        else:
            raise InputError(
                f"the {self.domain.role} DataLoader yields no batch of at least {self.min_size} examples, "
                f"which the method needs; raise its batch_size"
            )
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True) if y is not None else None
        return x, y, (index.to(self.device, non_blocking=True) if index is not None else None)


def batch_stream(
    domain: Domain,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    num_workers: int = 0,
    min_size: int = 1,
    shard: Shard | None = None,
) -> InMemoryBatches | CachedBatches | LoaderBatches:
    """An endless stream of ``(x, y, index)`` device batches (see :data:`StreamBatch`).

    A DataLoader's batches smaller than ``min_size`` are skipped (see :class:`LoaderBatches`).
    ``shard``: this process's share of each global batch (distributed training).
    """
    if domain.x is not None:
        return InMemoryBatches(domain, batch_size, generator, device, shard)
    if domain.cached is not None:
        return CachedBatches(domain, batch_size, generator, device, shard)
    if domain.loader is not None:
        if shard is not None:
            raise InputError(
                f"distributed training cannot split the {domain.role} DataLoader you built across processes; "
                "pass its Dataset (or arrays) and set batch_size and num_workers in fit"
            )
        return LoaderBatches(domain, domain.loader, device, min_size)
    assert domain.dataset is not None
    global_batch = min(batch_size, len(domain))
    loader = DataLoader(
        IndexedDataset(domain.dataset),
        batch_size=global_batch // shard.world if shard is not None else global_batch,
        # like shuffle=True, and resumable mid-epoch; a rank draws its share of each global batch
        sampler=EpochSampler(len(domain), generator, shard, global_batch),
        drop_last=True,
        generator=generator,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=num_workers > 0,
    )
    return LoaderBatches(domain, loader, device, min_size, indexed=True)


@dataclass
class FitInputs:
    """The checked data of one fit: the labeled source (None for a source-free method), the unlabeled
    target, and the labeled target examples (None without them)."""

    source: Domain | None
    target: Domain
    labeled_target: Domain | None = None

    def domains(self) -> list[Domain]:
        return [d for d in (self.source, self.target, self.labeled_target) if d is not None]

    def example(self, n: int = 2) -> torch.Tensor:
        """The first inputs a model is built on (the source's, or the target's without a source)."""
        return (self.target if self.source is None else self.source).example(n)


def fit_inputs(source: Any, target: Any, target_labeled: Any, num_classes: int, source_free: bool) -> FitInputs:
    """Check what ``fit`` was given: each domain in a form it accepts (labels where they are needed, in
    ``range(num_classes)``), and the same input shape in all of them. ``source_free``: there is no
    source. With labeled target examples alone (TargetOnly), their inputs are the target."""
    src = None if source_free else as_domain(source, "source", labeled=True, num_classes=num_classes)
    labeled = None
    if target_labeled is not None:
        labeled = as_domain(target_labeled, "labeled target", labeled=True, num_classes=num_classes)
    tgt = as_domain(target if target is not None or labeled is None else target_labeled, "target", labeled=False)
    for other in (src, labeled):
        if other is not None:
            check_compatible(other, tgt)
    return FitInputs(src, tgt, labeled)


@dataclass
class Streams:
    """The source, target and labeled-target batch streams and the generator that orders them."""

    source: Any
    target: Any
    generator: torch.Generator
    labeled_target: Any = None

    def state_dict(self) -> dict[str, Any]:
        state = lambda s: s.state_dict() if s is not None else None  # noqa: E731
        return {"source": state(self.source), "target": self.target.state_dict(),
                "labeled_target": state(self.labeled_target), "generator": self.generator.get_state()}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.source is not None:
            self.source.load_state_dict(state["source"])
        self.target.load_state_dict(state["target"])
        if self.labeled_target is not None:
            self.labeled_target.load_state_dict(state["labeled_target"])
        self.generator.set_state(state["generator"])  # last: restoring a stream may draw from it


def make_streams(inputs: FitInputs, batch_sizes: dict[str, int], seed: int, device: torch.device,
                 num_workers: int = 0, min_size: int = 1, shard: Shard | None = None) -> Streams:  # fmt: skip
    """The endless batch streams of one fit (``batch_sizes``: per domain role), all ordered by one
    generator seeded with ``seed``. A user DataLoader's batches smaller than ``min_size`` (a ragged last
    batch too small for the method) are skipped; ``shard``: this process's share of each global batch."""
    generator = torch.Generator().manual_seed(seed)

    def stream(domain: Domain | None) -> Any:
        if domain is None:
            return None
        return batch_stream(domain, batch_sizes[domain.role], generator, device, num_workers, min_size, shard)

    return Streams(stream(inputs.source), stream(inputs.target), generator, stream(inputs.labeled_target))


def iterate_inputs(data: Any, batch_size: int, role: str = "input") -> Iterator[torch.Tensor]:
    """Finite, ordered iteration over inputs for prediction (labels, if any, are ignored)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    domain = as_domain(data, role, labeled=False)
    if domain.x is not None:
        for start in range(0, len(domain.x), batch_size):
            yield domain.x[start : start + batch_size]
        return
    if domain.cached is not None:
        for start in range(0, len(domain), batch_size):
            positions = torch.arange(start, min(start + batch_size, len(domain)))
            yield domain.cached.apply_view(domain.cached.pixels(positions))
        return
    loader = domain.loader or DataLoader(domain.dataset, batch_size=batch_size, shuffle=False)
    for i, batch in enumerate(loader):
        yield domain.check_batch(batch, f"{role} batch {i + 1}")[0]
