"""Assertions, the CLI runner, suites and toy data shared by the test modules (tests/ is on sys.path:
pytest's rootdir-relative imports)."""

import math
import os
import subprocess
import sys
from pathlib import Path

import torch

from adapt import DANN, methods
from adapt.batch import Batch
from adapt.data import moons_shift
from adapt.testing import default_backbone, toy_problem

#: The repository root.
ROOT = Path(__file__).resolve().parents[1]

#: The adapt-bench entry point of the environment running the tests.
BIN = Path(sys.executable).parent / "adapt-bench"


def cli(*args, **kwargs) -> subprocess.CompletedProcess:
    """``adapt-bench ARGS`` through the installed entry point; ``env`` adds variables."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **kwargs.pop("env", {})}
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, env=env, timeout=600, **kwargs)


def value_and_grad(fn, *inputs):
    """``fn(*inputs)`` and the gradients of that scalar with respect to each input."""
    inputs = [x.detach().clone().requires_grad_(True) for x in inputs]
    value = fn(*inputs)
    value.backward()
    return value.detach(), [x.grad for x in inputs]


def assert_same_value_and_grad(ours, reference, *inputs, atol=1e-5):
    """Two scalar functions agree in value and in the gradient with respect to every input."""
    v1, g1 = value_and_grad(ours, *inputs)
    v2, g2 = value_and_grad(reference, *inputs)
    torch.testing.assert_close(v1, v2.to(v1.dtype).reshape(v1.shape), atol=atol, rtol=1e-4)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=atol, rtol=1e-4)


# ---------------------------------------------------------------- suites for the adapt-bench tests

TINY_SUITE = """
name = "tiny"
seeds = {seeds}
eval_every = 20

[train]
steps = {steps}
batch_size = 32
lr = 0.05
log_every = 20

[backbones.mlp]
kind = "mlp"
hidden = [16]
activation = "tanh"

[[tasks]]
benchmark = "moons"
source = "source"
target = "rotated"
backbone = "mlp"

[methods.source_only]

[methods.{second}]
{second_hparams}
"""


def write_suite(tmp_path, seeds=2, steps=40, second="dann", second_hparams="discriminator_hidden = [16]", name="tiny"):
    path = tmp_path / f"{name}.toml"
    path.write_text(TINY_SUITE.format(seeds=seeds, steps=steps, second=second, second_hparams=second_hparams))
    return path


TINY = """
name = "tiny"
seeds = 1
[train]
steps = 40
batch_size = 16
lr = 0.1
[backbones.mlp]
kind = "mlp"
hidden = [8]
[[tasks]]
benchmark = "moons"
source = "source"
target = "rotated"
backbone = "mlp"
[methods.source_only]
[methods.{second}]
"""


def _tiny_suite(tmp_path: Path, second: str = "coral") -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(second=second))
    return path


# ---------------------------------------------------------------- toy problems and models

FAST = dict(batch_size=16, device="cpu", verbose=False, log_every=5)


def _built(name, **hparams):
    d = toy_problem()
    torch.manual_seed(0)
    model = methods.create(name, default_backbone(), 3, **hparams)
    model.build(d["xs"][:2])
    model.train()
    return model, Batch(d["xs"], d["ys"], d["xt"], step=1000)


def _dann():
    torch.manual_seed(0)
    return DANN(default_backbone(), 3, discriminator_hidden=(16,))


def _moons():
    xs, ys, xt, yt = moons_shift(seed=1)
    return torch.from_numpy(xs), torch.from_numpy(ys), torch.from_numpy(xt), torch.from_numpy(yt)


def shifted_blobs(seed: int, n: int = 400):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(4, 5, generator=g) * 2
    ys = torch.arange(n) % 4
    xs = centers[ys] + torch.randn(n, 5, generator=g)
    yt = torch.arange(n) % 4
    xt = (centers[yt] + torch.randn(n, 5, generator=g)) * 1.5 + 2.0
    return xs, ys, xt, yt


def nearest_source_centroid(xs, ys, x) -> torch.Tensor:
    """The trivial baseline: each input gets the class of the nearest source class mean (no training)."""
    centroids = torch.stack([xs[ys == c].mean(0) for c in range(int(ys.max()) + 1)])
    return torch.cdist(x, centroids).argmin(1)


# ---------------------------------------------------------------- transcriptions


def warm_start(step: float, alpha: float, max_iters: float, lo: float = 0.0, hi: float = 1.0) -> float:
    """The coefficient of ``WarmStartGradientReverseLayer.forward`` (thuml/Transfer-Learning-Library at commit
    c4aa59e, ``tllib/modules/grl.py`` lines 71-74); the CDAN authors' ``calc_coeff`` (thuml/CDAN at commit
    c904cd3, ``pytorch/network.py`` lines 10-11) is the same expression."""
    return 2.0 * (hi - lo) / (1.0 + math.exp(-alpha * step / max_iters)) - (hi - lo) + lo


def work_that_dies_on(spec, device, verbose):
    """An executor's ``work`` whose process dies on the run named "die" (a worker killed under a run)."""
    if spec == "die":
        os._exit(1)
    return "ok"


def write_officehome_tree(data_root: Path, domains: tuple[str, ...], size: int, per_class: int) -> None:
    """A tiny Office-Home-style tree (two classes of random JPEGs per domain) under ``data_root``, marked complete."""
    import numpy as np
    from PIL import Image

    from adapt.data.download import mark_complete

    rng = np.random.default_rng(0)
    for domain in domains:
        for c in ("Bike", "Mug"):
            for k in range(per_class):
                path = data_root / "officehome" / domain / c / f"{k:05d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, format="JPEG")
    mark_complete("officehome", data_root)
