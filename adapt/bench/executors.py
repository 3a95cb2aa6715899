"""Where a sweep's runs execute: this machine's processes (``local``) or Ray tasks (``ray``).

An executor receives the pending runs and ``work(spec, device, verbose) -> status``, a picklable
function that trains one run and writes its record; it yields each run's status as it finishes.
Records are written by whoever ran the run, atomically, so an executor that is killed loses at most
the runs in flight (and those resume from their mid-run checkpoints).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import torch

from .._optional import require
from ..train.engine import resolve_device
from .identity import RUN_THREADS

#: ``work(spec, device, verbose) -> status``
Work = Callable[..., str]
EXECUTORS = ("local", "ray")
#: The status of a run whose worker process died under it (killed, out of memory), also when it ran alone:
#: the sweep records it (a failure the next sweep retries by itself) and goes on with a fresh worker.
WORKER_DIED = "worker_died"


@dataclass(frozen=True)
class Executor:
    """``kind``: 'local' or 'ray'; for Ray, the cluster ``address`` (None: start Ray on this machine)
    and the CPUs and GPUs each run reserves."""

    kind: str = "local"
    address: str | None = None
    cpus_per_run: int = 1
    gpus_per_run: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {self.kind!r}")
        if self.cpus_per_run < 1 or self.gpus_per_run < 0:
            raise ValueError("a run reserves at least 1 CPU and no negative number of GPUs")


def _exit_with_parent(parent: int) -> None:
    """A worker's watchdog: when the sweep process is gone (any signal, SIGKILL included), stop too."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


#: In a worker process: where it says which run it starts (the pool's parent reads it after a worker died).
_STARTED: Any = None


def _worker_init(parent: int, started: Any = None) -> None:
    global _STARTED
    # Ctrl-C is the parent's to handle: it cancels the queue and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(RUN_THREADS)
    _STARTED = started
    if os.getppid() != parent:  # the parent died while this worker started
        os._exit(1)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True, name="exit-with-parent").start()


def _started_work(work: Work, position: int, *args: Any) -> str:
    """``work(*args)`` in a worker, after telling the parent that run ``position`` started."""
    if _STARTED is not None:
        _STARTED.put(position)
    return work(*args)


def local_results(pending: list[Any], jobs: int, device: str, work: Work, show: bool) -> Iterator[tuple[Any, str]]:
    """Run ``pending`` in this process (``jobs`` = 1) or in ``jobs`` worker processes, each run with
    :data:`~adapt.bench.identity.RUN_THREADS` torch threads (more jobs than CPUs only share them: with
    one thread per process OpenMP has no team to spin)."""
    if jobs <= 1:
        threads = torch.get_num_threads()
        torch.set_num_threads(RUN_THREADS)
        try:
            for spec in pending:
                yield spec, work(spec, device, show)
        finally:
            torch.set_num_threads(threads)
        return
    devices = [device] * jobs
    if resolve_device(device).type == "cuda" and torch.cuda.device_count() > 1:
        devices = [f"cuda:{i % torch.cuda.device_count()}" for i in range(jobs)]
    yield from _pool_results(pending, jobs, devices, work)


def _pool_results(pending: list[Any], jobs: int, devices: list[str], work: Work) -> Iterator[tuple[Any, str]]:
    """Run ``pending`` in ``jobs`` worker processes. When a worker dies (killed, out of memory) its pool
    breaks: the runs that had not started go on in a fresh pool, and each run that had started is tried
    once more alone, in a pool of its own, where a death can only be its own (then: :data:`WORKER_DIED`)."""
    todo, suspects = list(enumerate(pending)), []
    while todo or suspects:
        alone = not todo
        batch = [suspects.pop(0)] if alone else todo
        started, queued = yield from _one_pool(batch, 1 if alone else jobs, devices, work)
        if alone:  # it ran by itself: the death was its own
            yield from ((spec, WORKER_DIED) for _, spec in started + queued)
        else:
            todo, suspects = queued, suspects + started


def _one_pool(batch: list[tuple[int, Any]], jobs: int, devices: list[str],
              work: Work) -> Generator[tuple[Any, str], None, tuple[list[Any], list[Any]]]:  # fmt: skip
    """Run ``batch`` ((position, run) pairs) in one pool, yielding each finished run's status; returns the
    runs a dead worker broke: those that had started, and those still queued."""
    context = get_context("spawn")
    started_queue = context.SimpleQueue()
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_init,
                               initargs=(os.getpid(), started_queue))  # fmt: skip
    broken = []
    try:
        futures = {pool.submit(_started_work, work, i, spec, devices[i % len(devices)], False): (i, spec)
                   for i, spec in batch}  # fmt: skip
        remaining = set(futures)
        while remaining:
            done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    status = future.result()
                except BrokenProcessPool:  # the pool is gone: every run still in it ends here
                    broken.append(futures[future])
                    continue
                yield futures[future][1], status
    except BaseException:
        # On Ctrl-C or SIGTERM do not wait for queued or running runs: finished records are already
        # on disk, and a record is written atomically, so stopping a worker cannot corrupt one.
        workers = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.terminate()
        raise
    pool.shutdown(wait=True)
    started = set()
    while not started_queue.empty():
        started.add(started_queue.get())
    return [b for b in broken if b[0] in started], [b for b in broken if b[0] not in started]


def _ray_run(work: Work, spec: Any, device: str) -> str:
    """One run inside a Ray task, with :data:`~adapt.bench.identity.RUN_THREADS` torch threads."""
    torch.set_num_threads(RUN_THREADS)
    return work(spec, device, False)


def ray_results(pending: list[Any], device: str, work: Work, executor: Executor) -> Iterator[tuple[Any, str]]:
    """Run ``pending`` as Ray tasks (each reserving its CPUs and GPUs), on a local Ray or a cluster.

    The output folder must be on a filesystem every node sees (the tasks write the records).
    Stopping the sweep cancels the tasks that have not finished.
    """
    ray = require("ray", "ray", "the Ray executor")
    started_here = not ray.is_initialized()
    if started_here:
        handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
        ray.init(address=executor.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        for signum, handler in handlers.items():  # ray.init replaces them; the sweep's own handling stays
            if handler is not None and threading.current_thread() is threading.main_thread():
                signal.signal(signum, handler)
    task = ray.remote(num_cpus=executor.cpus_per_run, num_gpus=executor.gpus_per_run, max_retries=1)(_ray_run)
    refs = {task.remote(work, spec, device): spec for spec in pending}
    try:
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                spec = refs.pop(ref)
                try:
                    status = ray.get(ref)
                except ray.exceptions.RayError:  # a worker crashed or a node was lost: the sweep goes on
                    status = WORKER_DIED  # recorded as such: the next sweep runs it again
                yield spec, status
    finally:
        if started_here:  # interrupted or done: shutting our Ray down stops whatever still runs
            main = threading.current_thread() is threading.main_thread()
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None  # no second interrupt
            try:
                ray.shutdown()
            finally:
                if main:
                    signal.signal(signal.SIGINT, previous)
        else:  # a shared cluster: cancel only this sweep's tasks
            for ref in refs:
                ray.cancel(ref, force=True)
