"""Data-parallel training (adapt/train/distributed.py): two CPU processes with the gloo backend
against one process with the same global batch."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from adapt.errors import InputError
from adapt.methods import DANN, SourceOnly
from adapt.testing import toy_problem

STEPS, BATCH = 12, 16
# float sums in another order over 12 SGD steps; any real difference (a rank training on other rows,
# gradients not averaged, a module left out) moves weights by 1e-3 or more
TOLERANCE = 1e-5


def make(name: str) -> nn.Module:
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU())
    if name == "dann":  # no BatchNorm (its statistics are per process, as under DDP), no dropout (masks
        # are drawn per process, so they cannot equal one process's)
        return DANN(backbone, 3, discriminator_hidden=(8,), discriminator_batch_norm=False, discriminator_dropout=0.0)
    return SourceOnly(backbone, 3)


def fit(model: nn.Module, data: str, **options) -> None:
    d = toy_problem(n=40)
    source = (d["xs"], d["ys"]) if data == "arrays" else torch.utils.data.TensorDataset(d["xs"], d["ys"])
    if data == "dataset":  # the DataLoader path (a Dataset that is not in memory)
        source = torch.utils.data.Subset(source, list(range(40)))
    model.fit(source, d["xt"], steps=STEPS, batch_size=BATCH, seed=0, lr=0.05, verbose=False, log_every=4, **options)


def _rank(rank: int, world: int, port: int, name: str, data: str, out: str) -> None:
    import os

    torch.set_num_threads(1)  # two processes on two cores
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    model = make(name)
    try:
        fit(model, data, distributed=True, device="cpu")
        if rank == 0:
            torch.save(model.state_dict(), out)
    finally:
        torch.distributed.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("name, data", [("source_only", "arrays"), ("dann", "arrays"), ("dann", "dataset")])
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path, name, data):
    out = str(tmp_path / "rank0.pt")
    mp.start_processes(_rank, args=(2, free_port(), name, data, out), nprocs=2, join=True, start_method="spawn")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = make(name)
        fit(single, data, device="cpu")
    finally:
        torch.set_num_threads(threads)
    distributed = torch.load(out)
    for key, value in single.state_dict().items():
        torch.testing.assert_close(distributed[key], value, atol=TOLERANCE, rtol=0, msg=key)
    moved = (single.state_dict()["backbone.0.weight"] - make(name).state_dict()["backbone.0.weight"]).abs().max()
    assert moved > 100 * TOLERANCE  # the comparison is not between two untrained models


@pytest.mark.bad_input
def test_distributed_without_torchrun_and_bad_settings_get_clear_errors(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(InputError, match="start the script with torchrun"):
        fit(make("source_only"), "arrays", distributed=True, device="cpu")
    with pytest.raises(InputError, match="sync_batch_norm=True needs distributed=True"):
        fit(make("source_only"), "arrays", sync_batch_norm=True, device="cpu")
