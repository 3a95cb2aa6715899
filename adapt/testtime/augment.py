"""The augmented views CoTTA, RoTTA and ROID learn from: the authors' pipeline for images in [0, 1].

CoTTA's teacher averages its predictions over augmented views, RoTTA's student learns from strongly
augmented memory samples and ROID adds a consistency term on an augmented view. All three use one
pipeline (from KATANA, Kuzmin et al. 2021): color jitter with gamma, an edge-padded random affine move,
a blur, a center crop back to size, a horizontal flip and Gaussian noise, for RGB images in [0, 1], each
random draw shared by the whole batch. :func:`authors_augmentation` transcribes it;
:class:`TestTimeAugmentation` applies it to the batches a method sees, undoing and redoing an input
normalization, and says so when the batch is not an image batch in the expected range.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import PIL.Image
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F
from torch import nn

from ..errors import InputError

#: How far outside [0, 1] an input may lie (rounding) before the augmentation refuses it.
RANGE_TOLERANCE = 1e-4


class GaussianNoise(nn.Module):
    """Adds noise of standard deviation ``std``, drawn on the CPU by ``torch.randn`` (as theirs)."""

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return img + (torch.randn(img.size()) * self.std + self.mean).to(img.device)


class Clip(nn.Module):
    """Clamps to ``[min_val, max_val]``."""

    def __init__(self, min_val: float = 0.0, max_val: float = 1.0) -> None:
        super().__init__()
        self.min_val, self.max_val = min_val, max_val

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return torch.clip(img, self.min_val, self.max_val)


class ColorJitterPro(T.ColorJitter):
    """Brightness, contrast, saturation, hue and gamma, each by a factor drawn uniformly from its range, in a
    random order (``torch.randperm``), one draw per batch. Saturation and hue leave one-channel images as
    they are (torchvision's)."""

    def __init__(self, brightness: Any = 0, contrast: Any = 0, saturation: Any = 0, hue: Any = 0, gamma: Any = 0):
        super().__init__(brightness, contrast, saturation, hue)
        self.gamma = self._check_input(gamma, "gamma")

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        adjust = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue, _adjust_gamma)
        ranges = (self.brightness, self.contrast, self.saturation, self.hue, self.gamma)
        for fn_id in torch.randperm(5):
            if ranges[fn_id] is not None:
                low, high = ranges[fn_id]
                img = adjust[fn_id](img, torch.tensor(1.0).uniform_(low, high).item())
        return img


def _adjust_gamma(img: torch.Tensor, gamma: float) -> torch.Tensor:
    return F.adjust_gamma(img.clamp(1e-8, 1.0), gamma)  # theirs: avoids NaN gradients after a contrast change


def authors_augmentation(
    image_size: int, *, gaussian_std: float = 0.005, soft: bool = False, padding_mode: str = "edge",
    cotta_augs: bool = True,
) -> T.Compose:  # fmt: skip
    """The test-time augmentation of the reference benchmark for images of height ``image_size`` in [0, 1].

    Transcribes ``get_tta_transforms`` (mariodoebler/test-time-adaptation at 8b2ed63,
    ``classification/augmentations/transforms_cotta.py`` lines 11-166, from qinenergy/cotta): clip,
    :class:`ColorJitterPro`, pad by half the size, random affine (rotation 15 degrees, translation 1/16,
    scale 0.9-1.1; ``soft``: smaller ranges), then with ``cotta_augs`` a Gaussian blur, center crop,
    horizontal flip, noise ``gaussian_std`` and clip (without: crop, flip, clip). CoTTA and RoTTA use the
    defaults; ROID ``padding_mode="reflect", cotta_augs=False``. Given the same torch and NumPy seeds,
    it draws what theirs draws.
    """
    n_pixels = int(image_size)
    jitter = ColorJitterPro(
        brightness=[0.8, 1.2] if soft else [0.6, 1.4],
        contrast=[0.85, 1.15] if soft else [0.7, 1.3],
        saturation=[0.75, 1.25] if soft else [0.5, 1.5],
        hue=[-0.03, 0.03] if soft else [-0.06, 0.06],
        gamma=[0.85, 1.15] if soft else [0.7, 1.3],
    )
    steps: list[Callable[..., Any]] = [
        Clip(0.0, 1.0),
        jitter,
        T.Pad(padding=int(n_pixels / 2), padding_mode=padding_mode),
        T.RandomAffine(
            degrees=[-8, 8] if soft else [-15, 15],
            translate=(1 / 16, 1 / 16),
            scale=(0.95, 1.05) if soft else (0.9, 1.1),
            shear=None,
            interpolation=PIL.Image.BILINEAR,
            fill=0,
        ),
    ]
    if cotta_augs:
        blur = T.GaussianBlur(kernel_size=5, sigma=[0.001, 0.25] if soft else [0.001, 0.5])
        steps += [blur, T.CenterCrop(size=n_pixels), T.RandomHorizontalFlip(p=0.5), GaussianNoise(0, gaussian_std)]
    else:
        steps += [T.CenterCrop(size=n_pixels), T.RandomHorizontalFlip(p=0.5)]
    return T.Compose([*steps, Clip(0.0, 1.0)])


#: The input normalizations the augmentation can undo, by name: per-channel (mean, std) of ``(x - mean) / std``
#: for images ``x`` in [0, 1]. "symmetric" is the digit benchmarks' [-1, 1].
INPUT_SCALES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "unit": ((0.0,), (1.0,)),
    "symmetric": ((0.5,), (0.5,)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # adapt.data's (a layer test-time code does not import)
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
InputScale = str | tuple[Sequence[float], Sequence[float]]


class TestTimeAugmentation:
    """:func:`authors_augmentation` on a method's batches ``(B, C, H, W)``, C 1 or 3.

    ``input_scale`` says how the model's inputs are normalized, so that the augmentation (which works on
    images in [0, 1]) can undo the normalization before it and redo it after: a name of
    :data:`INPUT_SCALES` (``"unit"``: images in [0, 1]; ``"symmetric"``: in [-1, 1], as the digit benchmarks;
    ``"imagenet"``, ``"cifar10"``: standardized by those datasets' mean and standard deviation) or a
    ``(mean, std)`` pair. A batch of another shape, or out of that range, is an InputError that names it
    and the way out (``augment=None``). ``options`` go to :func:`authors_augmentation`.
    """

    __test__ = False

    def __init__(self, input_scale: InputScale = "unit", **options: Any) -> None:
        if isinstance(input_scale, str):
            if input_scale not in INPUT_SCALES:
                raise ValueError(f"input_scale must be one of {', '.join(INPUT_SCALES)} or a (mean, std) pair, "
                                 f"got {input_scale!r}")  # fmt: skip
            mean, std = INPUT_SCALES[input_scale]
        else:
            mean, std = input_scale
        if len(mean) != len(std) or len(mean) not in (1, 3) or min(std) <= 0:
            raise ValueError(f"input_scale's mean and std need 1 or 3 channels each and std > 0, got {input_scale!r}")
        self.input_scale, self.options = input_scale, options
        self.mean, self.std = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
        self._pipelines: dict[int, T.Compose] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        images = self.check(x)
        size = x.shape[-2]
        if size not in self._pipelines:
            self._pipelines[size] = authors_augmentation(size, **self.options)
        mean, std = self._stats(x)
        return (self._pipelines[size](images) - mean) / std

    def check(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as images in [0, 1]; an InputError when it is not an image batch in the expected range
        (methods call it on every batch, so that a stream fails on its first batch, not mid-way)."""
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise InputError(f"the authors' test-time augmentation takes image batches (B, 1 or 3, H, W), got "
                             f"shape {tuple(x.shape)}; pass augment=None (or a callable) for other inputs")  # fmt: skip
        mean, std = self._stats(x)
        images = x * std + mean
        low, high = float(images.min()), float(images.max())
        if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
            raise InputError(f"the authors' test-time augmentation takes images in [0, 1] (input_scale="
                             f"{self.input_scale!r} maps the inputs to [{low:.3g}, {high:.3g}]); set input_scale "
                             "to the normalization the model takes, or pass augment=None")  # fmt: skip
        return images

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mean.shape[1] not in (1, x.shape[1]):
            raise InputError(f"input_scale={self.input_scale!r} normalizes {self.mean.shape[1]} channels, and the "
                             f"batch has {x.shape[1]}")  # fmt: skip
        return self.mean.to(x.device, x.dtype), self.std.to(x.device, x.dtype)


def check_batch(augment: Callable | None, x: torch.Tensor) -> None:
    """Checks ``x`` against the authors' augmentation, when that is ``augment`` (:meth:`TestTimeAugmentation.check`)."""
    if isinstance(augment, TestTimeAugmentation):
        augment.check(x)


def resolve_augment(augment: Any, input_scale: InputScale = "unit", **options: Any) -> Callable | None:
    """A method's ``augment`` setting as a callable: ``"authors"``, :class:`TestTimeAugmentation` with
    ``options``; ``None`` or ``"none"``, no augmentation; a callable, itself."""
    if augment is None or augment == "none":
        return None
    if augment == "authors":
        return TestTimeAugmentation(input_scale, **options)
    if callable(augment):
        return augment
    raise ValueError(f"augment must be 'authors', 'none', None or a callable on a batch, got {augment!r}")
