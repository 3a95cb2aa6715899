"""Tasks (an ordered source -> target pair), protocols and label-safe dataset views."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from .cache import CachedImages

Protocol = Literal["transductive", "inductive"]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not where it should be; the message shows the expected layout."""


def task_name(benchmark: str, source: str, target: str) -> str:
    """How a task is named everywhere (records, tables, figures): ``benchmark/source->target``."""
    return f"{benchmark}/{source}->{target}"


def dataset_labels(dataset: Dataset) -> np.ndarray:
    """Class labels of a labeled dataset without loading its inputs when possible."""
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[1].numpy()
    if isinstance(dataset, Subset):
        return dataset_labels(dataset.dataset)[np.asarray(dataset.indices)]
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return np.asarray(targets)
    return np.asarray([int(dataset[i][1]) for i in range(len(dataset))])


def is_labeled(dataset: Dataset) -> bool:
    """Whether the items of ``dataset`` are ``(x, y)`` pairs (a target may be inputs alone)."""
    if isinstance(dataset, TensorDataset):
        return len(dataset.tensors) >= 2
    if isinstance(dataset, Unlabeled):
        return False
    if isinstance(dataset, Subset):
        return is_labeled(dataset.dataset)
    if getattr(dataset, "targets", None) is not None:
        return True
    first = dataset[0]
    return isinstance(first, (tuple, list)) and len(first) >= 2


def subset(dataset: Dataset, indices: Sequence[int] | np.ndarray) -> Dataset:
    """Rows ``indices`` of ``dataset``; a TensorDataset stays a TensorDataset (fast in-memory path)."""
    if isinstance(dataset, CachedImages):  # decoded images keep their fast path
        return dataset.subset(np.asarray(indices))
    idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
    if isinstance(dataset, TensorDataset):
        return TensorDataset(*(t[idx] for t in dataset.tensors))
    return Subset(dataset, idx.tolist())


class Unlabeled(Dataset):
    """Inputs only: the view of a target dataset that training may see."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        item = self.dataset[index]
        return item[0] if isinstance(item, (tuple, list)) else item


def unlabeled(dataset: Dataset) -> Dataset:
    """Drop the labels: a TensorDataset keeps only its input tensor, other datasets are wrapped."""
    if isinstance(dataset, TensorDataset):
        return TensorDataset(dataset.tensors[0])
    if isinstance(dataset, CachedImages):
        return dataset.unlabeled()
    return Unlabeled(dataset)


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split keeping class proportions; every class with >= 2 examples lands on both sides."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = round(test_fraction * len(idx))
        if len(idx) >= 2:
            n_test = min(max(n_test, 1), len(idx) - 1)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


@dataclass(frozen=True)
class TargetDomains:
    """A target made of several domains in sequence (a continual test-time stream): ``names[i]`` is the
    i-th stretch's domain, ``ids[j]`` the stretch of the target's j-th example (in the order of the
    transductive ``target_test``). Kept in ``Task.extra["target_domains"]``."""

    names: list[str]
    ids: np.ndarray


@dataclass
class Task:
    """An ordered (source domain, target domain) pair ready for training and scoring.

    ``target_train`` yields inputs only: target labels cannot reach a training batch.
    ``target_test`` is labeled and is for scoring only (None when the target came without labels).
    Under the *transductive* protocol it holds the same examples as ``target_train`` (as in the
    Office papers); under the *inductive* protocol it is a disjoint split (seeded and stratified,
    or the dataset's official test split).
    """

    benchmark: str
    source: str
    target: str
    classes: list[str]
    input_shape: tuple[int, ...]
    protocol: Protocol
    source_train: Dataset
    target_train: Dataset
    target_test: Dataset | None
    source_val: Dataset | None = None
    #: The labeled twin of ``target_train`` (inductive protocol only), for scoring, never training.
    target_train_scoring: Dataset | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: ``target_train``'s examples with evaluation transforms, inputs only: what validators score
    #: (randomly augmented images would give the same model a different score each time).
    target_eval: Dataset | None = None
    #: ``source_train``'s examples with evaluation transforms (labeled), for validators such as DEV.
    source_train_eval: Dataset | None = None
    #: A few labeled target examples (semi-supervised adaptation; see :func:`adapt.data.few_shot_split`),
    #: kept out of ``target_train`` and of what is scored. None for unsupervised adaptation.
    target_labeled: Dataset | None = None

    def __post_init__(self) -> None:
        if self.target_eval is None:
            self.target_eval = self.target_train
        if self.source_train_eval is None:
            self.source_train_eval = self.source_train

    @property
    def name(self) -> str:
        return task_name(self.benchmark, self.source, self.target)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (
            f"Task({self.name}, {self.protocol}, {self.num_classes} classes, input {self.input_shape}, "
            f"source {len(self.source_train)}, target train {len(self.target_train)}, "
            f"target test {len(self.target_test) if self.target_test is not None else 'none (unlabeled)'})"
        )


def _hold_out_source(
    source_data: Dataset, source_eval_data: Dataset, fraction: float, seed: int
) -> tuple[Dataset, Dataset | None, Dataset]:
    """Training split, held-out validation split (evaluation view) and the training split's evaluation view."""
    if fraction <= 0:
        return source_data, None, source_eval_data
    train_idx, val_idx = stratified_split(dataset_labels(source_data), fraction, seed)
    return subset(source_data, train_idx), subset(source_eval_data, val_idx), subset(source_eval_data, train_idx)


def _split_target(
    target_data: Dataset,
    target_eval_data: Dataset,
    target_test_data: Dataset | None,
    protocol: Protocol,
    test_fraction: float,
    seed: int,
) -> tuple[Dataset, Dataset | None, Dataset | None, Dataset]:
    """Unlabeled training view, scored test set, transductive scoring set (inductive only), unlabeled
    evaluation view, under the protocol. A target without labels has no test set."""
    if not is_labeled(target_data):
        if protocol != "transductive" or target_test_data is not None:
            raise ValueError("an unlabeled target supports only the transductive protocol (nothing to score)")
        return unlabeled(target_data), None, None, unlabeled(target_eval_data)
    if protocol == "transductive":
        return unlabeled(target_data), target_eval_data, None, unlabeled(target_eval_data)
    if target_test_data is not None:
        return unlabeled(target_data), target_test_data, target_eval_data, unlabeled(target_eval_data)
    train_idx, test_idx = stratified_split(dataset_labels(target_data), test_fraction, seed)
    scoring = subset(target_eval_data, train_idx)
    return unlabeled(subset(target_data, train_idx)), subset(target_eval_data, test_idx), scoring, unlabeled(scoring)


def _check_fraction(name: str, fraction: Any, zero: bool) -> None:
    low_ok = isinstance(fraction, (int, float)) and (fraction >= 0.0 if zero else fraction > 0.0)
    if not low_ok or fraction >= 1.0:
        raise ValueError(f"{name} must be a fraction in {'[0, 1)' if zero else '(0, 1)'}, got {fraction!r}")


def make_task(
    benchmark: str,
    source: str,
    source_data: Dataset,
    target: str,
    target_data: Dataset,
    classes: list[str],
    input_shape: tuple[int, ...],
    protocol: Protocol = "transductive",
    seed: int = 0,
    test_fraction: float = 0.3,
    source_holdout: float = 0.0,
    target_test_data: Dataset | None = None,
    target_eval_data: Dataset | None = None,
    source_eval_data: Dataset | None = None,
    description: str = "",
) -> Task:
    """Assemble a :class:`Task` under a protocol.

    Parameters
    ----------
    source_data, target_data : labeled datasets (training transforms).
    target_test_data : an official labeled target test split (inductive protocol); if None the
        inductive protocol splits ``target_data`` (stratified, seeded by ``seed``).
    target_eval_data, source_eval_data : the same examples as ``target_data``/``source_data``
        with evaluation transforms (for image datasets with random augmentation); default: same.
    source_holdout : fraction of the source held out as a labeled validation split.
    """
    if len(source_data) == 0:
        raise ValueError(f"{benchmark}: source domain {source!r} is empty")
    if len(target_data) == 0:
        raise ValueError(f"{benchmark}: target domain {target!r} is empty")
    if protocol not in ("transductive", "inductive"):
        raise ValueError(f"protocol must be 'transductive' or 'inductive', got {protocol!r}")
    _check_fraction("test_fraction", test_fraction, zero=False)
    _check_fraction("source_holdout", source_holdout, zero=True)
    target_eval_data = target_eval_data if target_eval_data is not None else target_data
    source_eval_data = source_eval_data if source_eval_data is not None else source_data
    source_data, source_val, source_train_eval = _hold_out_source(source_data, source_eval_data, source_holdout, seed)
    target_train, target_test, scoring, target_eval = _split_target(
        target_data, target_eval_data, target_test_data, protocol, test_fraction, seed
    )
    return Task(
        benchmark=benchmark,
        source=source,
        target=target,
        classes=list(classes),
        input_shape=tuple(input_shape),
        protocol=protocol,
        source_train=source_data,
        target_train=target_train,
        target_test=target_test,
        source_val=source_val,
        target_train_scoring=scoring,
        description=description,
        target_eval=target_eval,
        source_train_eval=source_train_eval,
    )
