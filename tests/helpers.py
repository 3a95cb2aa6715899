"""Assertions and the CLI runner shared by the test modules (tests/ is on sys.path: pytest's rootdir-relative
imports)."""

import os
import subprocess
import sys
from pathlib import Path

import torch

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
