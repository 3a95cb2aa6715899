"""The benchmark scripts run end to end (on the CPU, with tiny settings); their figures are not checked."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import ROOT

BENCHMARKS = ROOT / "benchmarks"


def run_script(name: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCHMARKS / name), *args], capture_output=True, text=True,
                          timeout=600, cwd=BENCHMARKS)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_gpu_script_runs_on_the_cpu_with_tiny_settings():
    out = run_script("bench_gpu_resnet.py", "--device", "cpu", "--arch", "resnet18", "--size", "32", "--batch", "4",
                     "--steps", "1", "--warmup", "1", "--methods", "source_only,dann", "--run-images", "16",
                     "--run-steps", "1")  # fmt: skip
    assert "vs pytorch-adapt fp32" in out and "Office-31-sized DANN run" in out and "20k steps" in out


@pytest.mark.slow
def test_image_pipeline_benchmark_runs():
    out = run_script("bench_image_pipeline.py", "--images", "24", "--batch", "4", "--batches", "2", "--workers", "0")
    assert "cached / ImageFolder" in out


@pytest.mark.slow
def test_gpu_vit_script_runs_on_the_cpu_with_tiny_settings():
    pytest.importorskip("timm")
    out = run_script("bench_gpu_vit.py", "--device", "cpu", "--model", "test_vit", "--size", "32", "--batch", "4",
                     "--steps", "1", "--warmup", "1")  # fmt: skip
    assert "cdan+mcc+mic, SDAT" in out and "vs source_only" in out
