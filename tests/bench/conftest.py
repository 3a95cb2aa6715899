"""Fixtures shared by the adapt-bench tests."""

import pytest
from helpers import write_suite

from adapt.bench import load_suite, run_sweep


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    """Records of a finished sweep of the tiny suite (copied by the tests that must not touch them)."""
    folder = tmp_path_factory.mktemp("finished")
    run_sweep(load_suite(str(write_suite(folder))), folder / "out", verbose=False)
    return folder / "out"
