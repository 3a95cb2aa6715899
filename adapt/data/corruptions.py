"""Common corruptions for small gray images, generated deterministically (no download).

The 15 corruption types of Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common
Corruptions and Perturbations", ICLR 2019 (CIFAR-10-C, ImageNet-C), each at 5 severities, rewritten
for 16x16 gray digits: the names and the four families (noise, blur, weather, digital) are theirs;
the parameters are ours, chosen so that severity 1 is mild and severity 5 is hard on these images.
Every function maps images (N, 1, H, W) in [0, 1] (white strokes on black) to the same shape and
range, drawing randomness only from the ``rng`` passed in.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

Corruption = Callable[[torch.Tensor, int, np.random.Generator], torch.Tensor]
CORRUPTIONS: dict[str, Corruption] = {}


def _corruption(name: str) -> Callable[[Corruption], Corruption]:
    def register(fn: Corruption) -> Corruption:
        CORRUPTIONS[name] = fn
        return fn

    return register


def _normal(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 1.0) -> torch.Tensor:
    return torch.from_numpy(rng.normal(0.0, scale, shape).astype(np.float32))


def _uniform(rng: np.random.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.from_numpy(rng.random(shape, dtype=np.float32))


def _pick(severity: int, values: tuple[float, ...]) -> float:
    return values[severity - 1]


# ---------------------------------------------------------------- noise
@_corruption("gaussian_noise")
def gaussian_noise(x: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    return x + _normal(rng, tuple(x.shape), _pick(severity, (0.08, 0.12, 0.18, 0.26, 0.38)))


@_corruption("shot_noise")
def shot_noise(x: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    photons = _pick(severity, (60, 25, 12, 5, 3))
    return torch.from_numpy(rng.poisson(x.numpy() * photons).astype(np.float32)) / photons


@_corruption("impulse_noise")
def impulse_noise(x: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    amount = _pick(severity, (0.03, 0.06, 0.09, 0.17, 0.27))
    u = _uniform(rng, tuple(x.shape))
    return torch.where(u < amount / 2, 0.0, torch.where(u > 1 - amount / 2, 1.0, x))


# ---------------------------------------------------------------- blur
def _per_image_conv(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Convolve image i with kernel i (kernels (N, k, k), odd k), zero padding."""
    n, _, h, w = x.shape
    k = kernels.shape[-1]
    out = F.conv2d(x.reshape(1, n, h, w), kernels.unsqueeze(1), padding=k // 2, groups=n)
    return out.reshape(n, 1, h, w)


@_corruption("defocus_blur")
def defocus_blur(x: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    radius = _pick(severity, (1.0, 1.5, 2.0, 2.5, 3.0))
    r = int(np.ceil(radius))
    yy, xx = torch.meshgrid(torch.arange(-r, r + 1.0), torch.arange(-r, r + 1.0), indexing="ij")
    disk = (yy**2 + xx**2 <= radius**2).float()
    return _per_image_conv(x, (disk / disk.sum()).expand(len(x), -1, -1))


@_corruption("glass_blur")
def glass_blur(x: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    sigma, reach = _pick(severity, (0.5, 0.7, 0.9, 1.1, 1.3)), int(_pick(severity, (1, 1, 1, 2, 2)))
    x = gaussian_blur(x, kernel_size=5, sigma=sigma)
    n, _, h, w = x.shape
    rows = (torch.arange(h)[None, :, None] + _offsets(rng, reach, (n, h, w))).clamp(0, h - 1)
    cols = (torch.arange(w)[None, None, :] + _offsets(rng, reach, (n, h, w))).clamp(0, w - 1)
    shuffled = x[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)  # each pixel from a nearby one
    return gaussian_blur(shuffled, kernel_size=5, sigma=sigma)


def _offsets(rng: np.random.Generator, reach: int, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.from_numpy(rng.integers(-reach, reach + 1, shape))


@_corruption("motion_blur")
def motion_blur(x: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    length = int(_pick(severity, (3, 5, 7, 9, 11)))
    angles = torch.from_numpy(rng.uniform(0, np.pi, len(x)).astype(np.float32))
    t = torch.linspace(-(length - 1) / 2, (length - 1) / 2, length)
    kernels = torch.zeros(len(x), length, length)
    c = length // 2
    for i, angle in enumerate(angles):
        r = (c + t * torch.sin(angle)).round().long().clamp(0, length - 1)
        q = (c + t * torch.cos(angle)).round().long().clamp(0, length - 1)
        kernels[i, r, q] = 1.0
    return _per_image_conv(x, kernels / kernels.sum(dim=(1, 2), keepdim=True))


@_corruption("zoom_blur")
def zoom_blur(x: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    top = _pick(severity, (1.06, 1.11, 1.16, 1.21, 1.26))
    size = x.shape[-1]
    views = [x]
    for zoom in np.arange(1.02, top + 1e-6, 0.02):
        big = round(size * zoom)
        start = (big - size) // 2
        zoomed = F.interpolate(x, size=(big, big), mode="bilinear", align_corners=False)
        views.append(zoomed[..., start : start + size, start : start + size])
    return torch.stack(views).mean(dim=0)


# ---------------------------------------------------------------- weather
def _smooth_noise(rng: np.random.Generator, n: int, size: int, octaves: int = 3) -> torch.Tensor:
    """A fractal cloud texture in [0, 1], (n, 1, size, size): noise summed over scales (fog, frost)."""
    total = torch.zeros(n, 1, size, size)
    for octave in range(octaves):
        cells = 2 ** (octave + 1)
        coarse = _uniform(rng, (n, 1, cells, cells))
        total += F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False) / 2**octave
    total -= total.amin(dim=(2, 3), keepdim=True)
    return total / total.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)


@_corruption("snow")
def snow(x: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    density, weight = _pick(severity, (0.03, 0.05, 0.08, 0.11, 0.15)), _pick(severity, (0.3, 0.4, 0.5, 0.6, 0.7))
    flakes = (_uniform(rng, tuple(x.shape)) < density).float()
    streaks = motion_blur(flakes, 2, rng) * 3  # falling snow is smeared
    return torch.maximum(x * (1 - 0.3 * weight) + 0.15 * weight, streaks.clamp(0, 1) * weight * 1.4)


@_corruption("frost")
def frost(x: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    weight = _pick(severity, (0.25, 0.35, 0.45, 0.55, 0.65))
    ice = _smooth_noise(rng, len(x), x.shape[-1], octaves=4) ** 2
    return (1 - weight * 0.6) * x + weight * ice


@_corruption("fog")
def fog(x: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    weight = _pick(severity, (0.3, 0.5, 0.7, 0.9, 1.2))
    haze = _smooth_noise(rng, len(x), x.shape[-1])
    peak = x.amax(dim=(2, 3), keepdim=True)
    return (x + weight * haze) * peak / (peak + weight)


@_corruption("brightness")
def brightness(x: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    return x + _pick(severity, (0.1, 0.2, 0.3, 0.4, 0.5))


# ---------------------------------------------------------------- digital
@_corruption("contrast")
def contrast(x: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean) * _pick(severity, (0.5, 0.4, 0.3, 0.2, 0.12)) + mean


@_corruption("elastic_transform")
def elastic_transform(x: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    amplitude = _pick(severity, (0.6, 1.0, 1.4, 1.8, 2.3))  # pixels
    n, _, h, w = x.shape
    field = gaussian_blur(_normal(rng, (n, 2, h, w)), kernel_size=7, sigma=1.5)
    field = field / field.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6) * amplitude
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    grid = torch.stack([xx + field[:, 0] * 2 / (w - 1), yy + field[:, 1] * 2 / (h - 1)], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


@_corruption("pixelate")
def pixelate(x: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    size = x.shape[-1]
    small = max(2, round(size * _pick(severity, (14 / 16, 11 / 16, 9 / 16, 7 / 16, 6 / 16))))  # 14 to 6 px at 16
    return F.interpolate(F.interpolate(x, size=(small, small), mode="area"), size=(size, size), mode="nearest")


@_corruption("jpeg_compression")
def jpeg_compression(x: torch.Tensor, severity: int, rng: np.random.Generator) -> torch.Tensor:
    from PIL import Image

    quality = int(_pick(severity, (50, 30, 18, 10, 5)))
    out = []
    for image in (x[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy():
        buffer = io.BytesIO()
        Image.fromarray(image, mode="L").save(buffer, format="JPEG", quality=quality)
        out.append(np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float32) / 255.0)
    return torch.from_numpy(np.stack(out)).unsqueeze(1)


def corrupt(images: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """``images`` (N, 1, H, W) in [0, 1] under corruption ``name`` at ``severity`` 1-5, clipped to [0, 1].

    Deterministic: the same images, name, severity and seed give the same array.
    """
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; choose one of {', '.join(CORRUPTIONS)}")
    if severity not in (1, 2, 3, 4, 5):
        raise ValueError(f"severity must be 1 to 5, got {severity!r}")
    rng = np.random.default_rng([seed, list(CORRUPTIONS).index(name), severity])
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    return CORRUPTIONS[name](x, severity, rng).clamp(0.0, 1.0).numpy()


#: The severities of each corruption in turn in the gradual setting of the reference TTA benchmark
#: (mariodoebler/test-time-adaptation at 8b2ed63, ``classification/test_time.py`` line 62).
GRADUAL_SEVERITIES = (1, 2, 3, 4, 5, 4, 3, 2, 1)

#: Target-only domains that are sequences of corruptions, for continual test-time adaptation:
#: "all-<s>" (the 15 corruptions at severity s, in the order of :data:`CORRUPTIONS`), "all-5x10" (that
#: sequence ten times over, the long stream where methods collapse) and "gradual" (each corruption at
#: the severities :data:`GRADUAL_SEVERITIES`).
SEQUENCE_DOMAINS = (*(f"all-{severity}" for severity in range(1, 6)), "all-5x10", "gradual")

#: Domains of the ``optdigits-c`` benchmark: "clean", "<corruption>-<severity>" for every pair, and the
#: sequences :data:`SEQUENCE_DOMAINS`.
OPTDIGITS_C_DOMAINS = (
    "clean", *(f"{name}-{severity}" for name in CORRUPTIONS for severity in range(1, 6)), *SEQUENCE_DOMAINS
)  # fmt: skip


def domain_sequence(domain: str) -> list[str] | None:
    """The single domains a sequence domain streams, in order (``"all-5"`` -> ``["gaussian_noise-5", ...]``);
    None for a single domain."""
    if domain == "gradual":
        return [f"{name}-{severity}" for name in CORRUPTIONS for severity in GRADUAL_SEVERITIES]
    if domain in SEQUENCE_DOMAINS:
        severity, _, repeats = domain.removeprefix("all-").partition("x")
        return [f"{name}-{severity}" for name in CORRUPTIONS] * int(repeats or 1)
    return None


def parse_domain(domain: str) -> tuple[str, int] | None:
    """``"fog-3"`` -> ``("fog", 3)``; ``"clean"`` -> None; anything else is a ValueError naming the choices."""
    if domain == "clean":
        return None
    name, _, severity = domain.rpartition("-")
    if name not in CORRUPTIONS or severity not in {"1", "2", "3", "4", "5"}:
        raise ValueError(
            f"unknown optdigits-c domain {domain!r}: 'clean' or '<corruption>-<1..5>' with a corruption among "
            f"{', '.join(CORRUPTIONS)}"
        )
    return name, int(severity)
