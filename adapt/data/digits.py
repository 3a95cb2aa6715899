"""Digit domains: MNIST, USPS, SVHN and MNIST-M, read from their released file formats.

Two preprocessing protocols (ADDA / TLlib digits):

* ``"lenet"``: 28x28 grayscale, values in [-1, 1] (MNIST <-> USPS);
* ``"dtn"``: 32x32 RGB, values in [-1, 1] (SVHN -> MNIST, MNIST -> MNIST-M).

The whole domain is decoded once into a float ``TensorDataset`` (fast in-memory training).

Downloads go through torchvision (its URLs and MD5 checks); the files are then read here, in the
same layout torchvision uses, because torchvision's SVHN loader re-checks the MD5 of the whole file
at every load, which no small test file in the real format can pass.
"""

from __future__ import annotations

import bz2
import gzip
import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import TensorDataset

from .base import DatasetNotFoundError
from .decode import IMAGE_EXTENSIONS, load_image
from .download import UnverifiedDataError, check_unpacked, fetch, mark_complete
from .synthetic import blend_with_photos, photo_patches

DigitProtocol = Literal["lenet", "dtn"]
DIGIT_DOMAINS = ("mnist", "usps", "svhn", "mnistm")
DIGIT_CLASSES = [str(i) for i in range(10)]
INPUT_SHAPES = {"lenet": (1, 28, 28), "dtn": (3, 32, 32)}

LAYOUTS = {
    "mnist": "<root>/MNIST/raw/{train-images-idx3-ubyte,train-labels-idx1-ubyte,t10k-images-idx3-ubyte,"
    "t10k-labels-idx1-ubyte}[.gz]  (torchvision's layout)",
    "usps": "<root>/usps.bz2 and <root>/usps.t.bz2  (libsvm lines 'label index:value ...', torchvision's layout)",
    "svhn": "<root>/train_32x32.mat and <root>/test_32x32.mat  (torchvision's layout)",
    "mnistm": "<root>/mnist_m/mnist_m_{train,test}/<image>.png with <root>/mnist_m/mnist_m_{train,test}_labels.txt "
    "('<image>.png <label>' per line)",
}


def _open_maybe_gz(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (MNIST format), optionally gzipped."""
    path = Path(path)
    with _open_maybe_gz(path) as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    dtype = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}.get(data[2])
    if dtype is None:
        raise ValueError(f"{path}: unknown IDX type code {data[2]:#x}")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but the file holds {array.size} values")
    return array.reshape(shape)


def _find(root: Path, name: str, domain: str) -> Path:
    for candidate in (root / "MNIST" / "raw" / name, root / "MNIST" / "raw" / f"{name}.gz"):
        if candidate.exists():
            return candidate
    raise DatasetNotFoundError(
        f"{domain} not found under {root}: missing {name}[.gz].\nExpected layout: {LAYOUTS[domain]}\n"
        f"Pass download=True (or --download) to fetch it."
    )


def read_mnist(root: str | os.PathLike[str], train: bool) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images (N, 28, 28) uint8 and labels (N,)."""
    prefix = "train" if train else "t10k"
    root = Path(root)
    images = read_idx(_find(root, f"{prefix}-images-idx3-ubyte", "mnist"))
    labels = read_idx(_find(root, f"{prefix}-labels-idx1-ubyte", "mnist"))
    if len(images) != len(labels):
        raise ValueError(f"MNIST under {root}: {len(images)} images but {len(labels)} labels")
    return images, labels.astype(np.int64)


def read_usps(root: str | os.PathLike[str], train: bool) -> tuple[np.ndarray, np.ndarray]:
    """USPS images (N, 16, 16) float in [-1, 1] and labels (N,) from torchvision's bz2 libsvm files."""
    path = Path(root) / ("usps.bz2" if train else "usps.t.bz2")
    if not path.exists():
        raise DatasetNotFoundError(
            f"usps not found: missing {path}.\nExpected layout: {LAYOUTS['usps']}\nPass download=True to fetch it."
        )
    images, labels = [], []
    with bz2.open(path, "rt") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                values = np.zeros(256, np.float32)
                for item in parts[1:]:
                    index, value = item.split(":")
                    values[int(index) - 1] = float(value)
                labels.append(int(float(parts[0])) - 1)
            except (ValueError, IndexError) as exc:
                raise ValueError(f"{path}:{lineno}: not a libsvm line ({exc})") from exc
            images.append(values.reshape(16, 16))
    return np.stack(images), np.asarray(labels, np.int64)


def read_svhn(root: str | os.PathLike[str], train: bool) -> tuple[np.ndarray, np.ndarray]:
    """SVHN images (N, 32, 32, 3) uint8 and labels (N,) from the cropped-digits .mat files."""
    from scipy.io import loadmat

    path = Path(root) / ("train_32x32.mat" if train else "test_32x32.mat")
    if not path.exists():
        raise DatasetNotFoundError(
            f"svhn not found: missing {path}.\nExpected layout: {LAYOUTS['svhn']}\nPass download=True to fetch it."
        )
    mat = loadmat(path)
    images = np.transpose(mat["X"], (3, 0, 1, 2))
    labels = mat["y"].astype(np.int64).reshape(-1) % 10  # SVHN stores digit 0 as label 10
    return images, labels


def read_mnistm(root: str | os.PathLike[str], train: bool) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-M images (N, 28, 28, 3) uint8 and labels (N,)."""

    split = "train" if train else "test"
    base = Path(root) / "mnist_m"
    labels_file = base / f"mnist_m_{split}_labels.txt"
    check_unpacked("mnistm", root)  # a folder not known to be complete is refused, with the repair
    if not labels_file.exists():
        raise DatasetNotFoundError(
            f"mnistm not found: missing {labels_file}.\nExpected layout: {LAYOUTS['mnistm']}\n"
            f"Pass download=True to fetch it."
        )
    images, labels = [], []
    for lineno, line in enumerate(labels_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{labels_file}:{lineno}: expected '<image> <label>', got {line!r}")
        images.append(np.asarray(load_image(base / f"mnist_m_{split}" / parts[0])))
        labels.append(int(parts[1]))
    return np.stack(images), np.asarray(labels, np.int64)


def _to_protocol(
    images: np.ndarray, protocol: DigitProtocol, value_range: tuple[float, float] = (0, 255)
) -> torch.Tensor:
    """(N, H, W[, C]) array -> float tensor (N, C, S, S) in [-1, 1] for the protocol."""
    x = torch.from_numpy(np.array(images, dtype=np.float32))
    low, high = value_range
    x = (x - low) / (high - low)  # [0, 1]
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    channels, size = INPUT_SHAPES[protocol][0], INPUT_SHAPES[protocol][1]
    if x.shape[1] == 3 and channels == 1:
        x = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    elif x.shape[1] == 1 and channels == 3:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (x.clamp(0, 1) - 0.5) / 0.5


def _download(domain: str, root: Path) -> None:
    import torchvision.datasets as tvd

    if domain == "mnist":
        tvd.MNIST(root, train=True, download=True)
        tvd.MNIST(root, train=False, download=True)
    elif domain == "usps":
        tvd.USPS(root, train=True, download=True)
        tvd.USPS(root, train=False, download=True)
    elif domain == "svhn":
        tvd.SVHN(root, split="train", download=True)
        tvd.SVHN(root, split="test", download=True)
    else:
        try:
            check_unpacked("mnistm", root)
            complete = (root / "mnist_m" / "mnist_m_train_labels.txt").exists()
        except UnverifiedDataError:
            complete = False
        if not complete:
            fetch("mnistm", root, LAYOUTS["mnistm"])


def load_digits_domain(
    domain: str, root: str | os.PathLike[str], train: bool, protocol: DigitProtocol = "lenet", download: bool = False
) -> TensorDataset:
    """One digit domain as a TensorDataset (x float (N, C, S, S) in [-1, 1], y int64)."""
    if domain not in DIGIT_DOMAINS:
        raise ValueError(f"unknown digits domain {domain!r}; choose one of {', '.join(DIGIT_DOMAINS)}")
    if protocol not in INPUT_SHAPES:
        raise ValueError(f"unknown digits protocol {protocol!r}; choose 'lenet' or 'dtn'")
    root = Path(root)
    if download:
        _download(domain, root)
    if domain == "mnist":
        images, labels = read_mnist(root, train)
        x = _to_protocol(images, protocol)
    elif domain == "usps":
        images, labels = read_usps(root, train)
        x = _to_protocol(images, protocol, value_range=(-1.0, 1.0))
    elif domain == "svhn":
        images, labels = read_svhn(root, train)
        x = _to_protocol(images, protocol)
    else:
        images, labels = read_mnistm(root, train)
        x = _to_protocol(images, protocol)
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{domain} under {root}: labels outside 0..9 ({labels.min()}..{labels.max()})")
    return TensorDataset(x, torch.from_numpy(labels))


def make_mnistm(
    mnist_root: str | os.PathLike[str],
    photos: str | os.PathLike[str],
    out_root: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> Path:
    """Build MNIST-M from MNIST and a folder of photos (Ganin et al., JMLR 2016, Sec. 5.2.1).

    Each MNIST digit is blended with a random 28x28 crop of a random photo: the output is the
    per-channel absolute difference ``|patch - digit|``. Ganin et al. use the 200 training images of
    BSDS500 (``<BSR>/BSDS500/data/images/train`` inside BSR_bsds500.tgz, see ``SOURCES['bsds500']``).
    Writes ``<out_root>/mnist_m/mnist_m_{train,test}/*.png`` and the label files (the layout
    :func:`read_mnistm` reads), through a temporary folder renamed into place at the end.
    """

    photo_dir = Path(photos)
    candidates = [
        photo_dir / "BSDS500" / "data" / "images" / "train",
        photo_dir / "BSR" / "BSDS500" / "data" / "images" / "train",
        photo_dir,
    ]
    folder = next((c for c in candidates if c.is_dir()), None)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS) if folder else []
    if not files:
        raise DatasetNotFoundError(
            f"no photos found under {photo_dir}; pass a folder of images or the unpacked BSR_bsds500.tgz "
            f"(<folder>/BSR/BSDS500/data/images/train/*.jpg)"
        )
    images = [np.asarray(load_image(f), dtype=np.float32) / 255.0 for f in files]
    out_root = Path(out_root or mnist_root)
    final = out_root / "mnist_m"
    if final.exists():
        raise FileExistsError(f"{final} already exists; remove it to rebuild MNIST-M")
    rng = np.random.default_rng(seed)
    out_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".mnist_m.", dir=out_root))
    try:
        for split, train in (("train", True), ("test", False)):
            digits, labels = read_mnist(mnist_root, train)
            blended = blend_with_photos(
                digits[:, None].astype(np.float32) / 255.0, photo_patches(images, len(digits), 28, rng)
            )
            (tmp / f"mnist_m_{split}").mkdir()
            lines = []
            for i, (image, label) in enumerate(zip(blended, labels)):
                name = f"{i:08d}.png"
                pixels = np.round(image.transpose(1, 2, 0) * 255).astype(np.uint8)
                Image.fromarray(pixels).save(tmp / f"mnist_m_{split}" / name)
                lines.append(f"{name} {int(label)}")
            (tmp / f"mnist_m_{split}_labels.txt").write_text("\n".join(lines) + "\n")
        tmp.rename(final)
        mark_complete("mnistm", out_root)  # built whole here, then renamed into place
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return final
