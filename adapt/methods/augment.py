"""Random views of a batch for self-training (FixMatch-style): weak and strong, on tensors, per example.

Images (N, C, H, W): the weak view shifts each image by up to ``max_shift`` of its size (zero padding);
the strong view adds a per-image brightness and contrast change and erases a random square
(Cutout, DeVries & Taylor 2017) of half the image side. Vectors (N, D): the weak view adds Gaussian
noise of 0.1 feature standard deviation, the strong view 0.3 and drops 20% of the features.
Everything is drawn from ``torch``'s global generator, so a seeded ``fit`` gives the same views.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _shift(images: torch.Tensor, max_shift: float) -> torch.Tensor:
    n = images.shape[0]
    theta = torch.zeros(n, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = (torch.rand(n, 2, device=images.device, dtype=images.dtype) * 2 - 1) * 2 * max_shift
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode="zeros", align_corners=False)


def _cutout(images: torch.Tensor, fraction: float = 0.5) -> torch.Tensor:
    n, _, h, w = images.shape
    size_h, size_w = max(1, int(h * fraction)), max(1, int(w * fraction))
    top = torch.randint(0, h - size_h + 1, (n, 1, 1), device=images.device)
    left = torch.randint(0, w - size_w + 1, (n, 1, 1), device=images.device)
    rows = torch.arange(h, device=images.device).view(1, h, 1)
    cols = torch.arange(w, device=images.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + size_h) & (cols >= left) & (cols < left + size_w)
    return images * (~inside).unsqueeze(1).to(images.dtype)


def _feature_scale(x: torch.Tensor) -> torch.Tensor:
    """Per-feature standard deviation over the batch (1 for a batch of one)."""
    return x.std(dim=0, keepdim=True).clamp_min(1e-6) if len(x) > 1 else torch.ones_like(x[:1])


def weak_view(x: torch.Tensor, max_shift: float = 0.125) -> torch.Tensor:
    """A mildly perturbed copy of the batch (see the module docstring)."""
    if x.ndim == 4:
        return _shift(x, max_shift)
    return x + 0.1 * _feature_scale(x) * torch.randn_like(x)


def strong_view(x: torch.Tensor, max_shift: float = 0.125) -> torch.Tensor:
    """A heavily perturbed copy of the batch (see the module docstring)."""
    if x.ndim == 4:
        n = x.shape[0]
        shape = (n, 1, 1, 1)
        contrast = 1 + (torch.rand(shape, device=x.device, dtype=x.dtype) * 2 - 1) * 0.5
        brightness = (torch.rand(shape, device=x.device, dtype=x.dtype) * 2 - 1) * 0.3 * x.std().clamp_min(1e-6)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        jittered = (x - mean) * contrast + mean + brightness
        return _cutout(_shift(jittered, max_shift))
    noisy = x + 0.3 * _feature_scale(x) * torch.randn_like(x)
    return noisy * (torch.rand_like(x) >= 0.2).to(x.dtype)
