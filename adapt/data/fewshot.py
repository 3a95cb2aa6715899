"""Few labeled target examples: k-shot splits (seeded, stratified) and the published SSDA splits.

Semi-supervised domain adaptation gives a method k labeled examples per target class. The split
takes them from the target's training view; what is scored never contains them (under the
transductive protocol the scored set is the target minus the labeled examples, under the inductive
protocol the disjoint test split is scored as before).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from ..errors import InputError
from .base import Task, Unlabeled, dataset_labels, subset
from .images import ImageList

#: Saito et al.'s file names use these domain names where ours differ (Office-Home's Real_World).
SAITO_DOMAIN_NAMES = {"Real_World": "Real"}
SAITO_SPLITS_URL = "https://github.com/VisionLearningGroup/SSDA_MME/tree/master/data/txt"


class LabeledInputs(Dataset):
    """``(inputs[i], labels[i])``: a target's training view (its transforms) with labels attached."""

    def __init__(self, inputs: Dataset, labels: torch.Tensor) -> None:
        self.inputs, self.labels = inputs, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[object, int]:
        item = self.inputs[index]
        return (item[0] if isinstance(item, (tuple, list)) else item), int(self.labels[index])


def _pool_labels(task: Task) -> np.ndarray:
    """Labels of ``task.target_train``'s examples, in its order (from its labeled scoring twin)."""
    twin = task.target_test if task.protocol == "transductive" else task.target_train_scoring
    if twin is None:
        raise InputError(f"{task.name}: the target has no labels, so no labeled target examples can be drawn")
    labels = dataset_labels(twin)
    if len(labels) != len(task.target_train):
        raise InputError(f"{task.name}: the target's labeled view has {len(labels)} examples, its training view "
                         f"{len(task.target_train)}")  # fmt: skip
    return labels


def _labeled(inputs: Dataset, labels: np.ndarray, index: np.ndarray) -> Dataset:
    y = torch.as_tensor(labels[index], dtype=torch.long)
    if isinstance(inputs, TensorDataset):  # in memory: stays a fast TensorDataset
        return TensorDataset(inputs.tensors[0][torch.as_tensor(index, dtype=torch.long)], y)
    return LabeledInputs(subset(inputs, index), y)


def k_shot_indices(labels: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """``shots`` positions per class, drawn without replacement (seeded), sorted; every class needs
    more than ``shots`` examples, so that some remain unlabeled."""
    if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 1:
        raise ValueError(f"shots must be an integer >= 1 (or 'all'), got {shots!r}")
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) <= shots:
            raise InputError(f"class {c} has {len(members)} target examples: too few for {shots} labeled per class "
                             f"with some left to adapt on and score")  # fmt: skip
        chosen.append(rng.choice(members, size=shots, replace=False))
    return np.sort(np.concatenate(chosen))


def with_labeled_target(task: Task, labeled_index: np.ndarray | None, label: str) -> Task:
    """``task`` with ``target_labeled`` (the examples at ``labeled_index`` of ``target_train``, None: all
    of them) taken out of the unlabeled target and out of what is scored."""
    labels = _pool_labels(task)
    n = len(labels)
    everything = labeled_index is None
    index = np.arange(n) if everything else np.asarray(labeled_index)
    rest = np.setdiff1d(np.arange(n), index)
    if everything and task.protocol == "transductive":
        raise InputError(f"{task.name}: with every target label used for training, nothing is left to score under "
                         f"the transductive protocol; use protocol='inductive' (a disjoint test split)")  # fmt: skip
    inputs = task.target_train.dataset if isinstance(task.target_train, Unlabeled) else task.target_train
    keep = lambda d: None if d is None else subset(d, rest)  # noqa: E731
    changes: dict[str, object] = {"target_labeled": _labeled(inputs, labels, index)}
    if not everything:  # the unlabeled target is the rest; with all labels, the same inputs stay unlabeled too
        changes.update(target_train=keep(task.target_train), target_eval=keep(task.target_eval),
                       target_train_scoring=keep(task.target_train_scoring))  # fmt: skip
        if task.protocol == "transductive":
            changes["target_test"] = keep(task.target_test)
    extra = {**task.extra, "target_labels": label, "target_labeled_examples": len(index)}
    return dataclasses.replace(task, **changes, extra=extra)


def few_shot_split(task: Task, shots: int | str, seed: int = 0) -> Task:
    """The task with ``shots`` labeled target examples per class (``task.target_labeled``).

    ``shots`` is an integer (k per class, seeded by ``seed``, stratified) or ``'all'`` (every example
    of the target's training view; needs the inductive protocol, so that a disjoint test split is
    left to score). The labeled examples leave the unlabeled target and the scored set.

    >>> from adapt.data import task
    >>> t = few_shot_split(task("moons", "source", "rotated"), shots=3)
    >>> len(t.target_labeled), len(t.target_train), len(t.target_test)
    (6, 294, 294)
    """
    if shots == "all":
        return with_labeled_target(task, None, "all")
    labels = _pool_labels(task)
    return with_labeled_target(task, k_shot_indices(labels, shots, seed), f"{shots}-shot (seed {seed})")


def _image_paths(dataset: Dataset) -> list[str]:
    """The image paths behind a target view (an ImageList under Unlabeled/Subset wrappers), in order."""
    index = None
    while True:
        if isinstance(dataset, Unlabeled):
            dataset = dataset.dataset
        elif isinstance(dataset, Subset):
            inner = list(dataset.indices)
            index = inner if index is None else [inner[i] for i in index]
            dataset = dataset.dataset
        elif isinstance(dataset, ImageList):
            paths = [p for p, _ in dataset.samples]
            return paths if index is None else [paths[i] for i in index]
        else:
            raise InputError(f"the published SSDA splits name image files; this target is a {type(dataset).__name__}")


def _path_key(path: str) -> tuple[str, str]:
    parts = Path(path.replace("\\", "/")).parts
    if len(parts) < 2:
        raise InputError(f"{path!r} has no class folder")
    return parts[-2], parts[-1]  # <class>/<image>: the domain folder's name differs between releases


def saito_split_file(root: str | os.PathLike[str], domain: str, shots: int) -> Path:
    """Where :func:`published_ssda_split` looks for Saito et al.'s labeled list of ``domain``."""
    name = SAITO_DOMAIN_NAMES.get(domain, domain)
    return Path(root).expanduser() / f"labeled_target_images_{name}_{shots}.txt"


def published_ssda_split(task: Task, shots: int, root: str | os.PathLike[str]) -> Task:
    """The task with the labeled target examples of Saito et al.'s published SSDA split.

    Saito et al., ICCV 2019 (MME) released 1-shot and 3-shot lists for Office-Home and DomainNet-126
    (``data/txt/<dataset>/labeled_target_images_<Domain>_<k>.txt``, one ``<path> <label>`` per
    line). Put the files in ``root``; each listed image is matched to the target's images by its
    ``<class>/<file>`` (the domain folder is named differently in their release); a listed image
    missing from the target is an error. The labeled examples leave the unlabeled target and the scored set.
    """
    if shots not in (1, 3):
        raise ValueError(f"the published SSDA splits have 1 and 3 shots, not {shots!r}")
    path = saito_split_file(root, task.target, shots)
    if not path.is_file():
        raise FileNotFoundError(f"no SSDA split file {path}; the lists are in {SAITO_SPLITS_URL} (copy "
                                f"{path.name} into {path.parent})")  # fmt: skip
    position = {_path_key(p): i for i, p in enumerate(_image_paths(task.target_train))}
    labels = _pool_labels(task)
    chosen = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            raise InputError(f"{path}:{number}: expected '<path> <label>', got {line!r}")
        key = _path_key(fields[0])
        if key not in position:
            raise InputError(f"{path}:{number}: {fields[0]} is not among the {task.target} target images")
        i = position[key]
        if task.classes[labels[i]].lower() != key[0].lower():
            raise InputError(f"{path}:{number}: {fields[0]} is class {task.classes[labels[i]]!r} in the target")
        chosen.append(i)
    if not chosen:
        raise InputError(f"{path} lists no image")
    return with_labeled_target(task, np.sort(np.asarray(chosen)), f"{shots}-shot (Saito et al. split)")
