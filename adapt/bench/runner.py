"""Expand a suite into runs, execute them (resumable, optionally in parallel), write one record each.

A run is (method, task, seed, hyperparameters, training protocol). Its id is a hash of the
configuration that actually runs (:mod:`adapt.bench.identity`: every default filled in, plus the
revisions of the code), and it writes exactly one JSON record, atomically (temporary file, then
rename), under ``<out>/runs/<id>.json``. A rerun of the same sweep skips every id that has a record;
a record of the same suite-level configuration under another id is *stale* (a default or the code
changed since): the sweep says what changed, moves it to ``<out>/runs/stale/`` and runs it again
(or, with ``keep_stale``, keeps it and reports it marked). Training never sees target labels; the
target test set is only scored.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
import platform
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .._files import claim, remove_orphans
from .._version import __version__
from ..data import BENCHMARKS, DatasetNotFoundError, DownloadError, Task, few_shot_split, published_ssda_split
from ..data import task as make_data_task
from ..data.download import UnverifiedDataError
from ..errors import MissingDataError
from ..loggers import LOGGERS, MLflowLogger, TensorBoardLogger
from ..train.engine import RUNTIME_FIELDS, NonFiniteLossError, TrainConfig, resolve_device
from .executors import WORKER_DIED, Executor, local_results, ray_results
from .identity import RUN_THREADS, resolve, stale_reasons
from .protocols import DEFAULT_PROTOCOL, PROTOCOLS, Protocol, RunContext, cache_folder
from .records import digest, read_records, write_record
from .search import draw as draw_from_space
from .suite import Suite, TaskSpec

RECORD_FORMAT = 1
#: The only checkpoint-selection rule until validators are configured: the last step.
DEFAULT_SELECTION = "last"
#: Where downloadable datasets are looked for when neither ``--data-root`` nor the suite says.
DEFAULT_DATA_ROOT = "data"
#: Failures a rerun retries by itself, since their cause passes or is fixed outside the run: the data was
#: missing, the disk was full, memory ran out, the worker process running it died. The others (a bug, a
#: diverged loss) need ``--retry-failed``.
RETRIED_FAILURES = ("missing_data", "disk_full", "out_of_memory", WORKER_DIED)


def data_root_for(suite: Suite, data_root: str | None) -> str:
    """``--data-root``, else the suite's ``data_root``, else ``$ADAPT_DATA_ROOT``, else ``./data``."""
    return data_root or suite.data_root or os.environ.get("ADAPT_DATA_ROOT") or DEFAULT_DATA_ROOT


def check_device(device: str) -> None:
    """A device this machine has, or a one-line error saying which ones it has (before any run)."""
    try:
        resolved = resolve_device(device)
    except ValueError as exc:
        raise ValueError(f"--device {device!r} is not a device; use auto, cpu, cuda or cuda:N") from exc
    if resolved.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise ValueError(f"--device {device}: no CUDA GPU is visible here; use --device cpu (or auto)")
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(f"--device {device}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    elif resolved.type not in ("cpu", "mps"):
        raise ValueError(f"--device {device!r}: adapt-bench runs on cpu or cuda")


def check_data(
    suite: Suite, data_root: str | None = None, download: bool = False, tasks: list[TaskSpec] | None = None
) -> None:
    """Stop before the first run when a task's files are missing (or fetch them, with ``download``).

    ``tasks``: the ones with runs still to do (default: all of the suite's). Offline benchmarks need
    nothing. For the others every task is built once here, which only lists files (images are read
    when trained on), so a suite never records a run per missing file.
    """
    root = data_root_for(suite, data_root)
    seen = set()
    for t in suite.tasks if tasks is None else tasks:
        if BENCHMARKS[t.benchmark].offline or t.name in seen:
            continue
        seen.add(t.name)
        try:
            make_data_task(t.benchmark, t.source, t.target, root, protocol=t.protocol, download=download, **t.data)
        except UnverifiedDataError as exc:  # there, but not known to be complete: its message has the repair
            raise MissingDataError(f"{t.benchmark} data for {t.name}: {str(exc).splitlines()[0]}") from exc
        except DatasetNotFoundError as exc:
            raise MissingDataError(
                f"{t.benchmark} data for {t.name} not found under {Path(root).expanduser().resolve()} "
                f"({str(exc).splitlines()[0]}); pass --data-root FOLDER where it is, or --download to fetch it "
                "(checksums verified)"
            ) from exc
        except DownloadError as exc:
            raise MissingDataError(f"{t.benchmark} data for {t.name}: {str(exc).splitlines()[0]}") from exc


@dataclass
class RunSpec:
    method: str
    task: TaskSpec
    seed: int
    hparams: dict[str, Any]
    train: dict[str, Any]
    eval_every: int
    #: What the report ranks by; it does not change training, so it is not part of the run id.
    metric: str = "accuracy"
    validators: tuple[str, ...] = ()
    select_by: str | None = None
    source_holdout: float = 0.0
    draw: int = 0
    #: The training length when the suite runs several budgets (also in ``train['steps']``).
    budget: int | None = None
    #: The protocol's name: 'uda', 'source-free' or 'online' (see :mod:`adapt.bench.protocols`).
    adaptation: str = DEFAULT_PROTOCOL
    #: How the cached source model of a source-free or online run is trained.
    source_train: dict[str, Any] | None = None
    #: Labeled target examples (``Suite.target_labels``): k per class, a published split, or None.
    target_labels: int | str | None = None
    #: The suite's label for a variant of ``method`` (``Suite.variants``); reports name the run by it.
    variant: str | None = None

    @property
    def protocol(self) -> Protocol:
        return PROTOCOLS.get(self.adaptation)

    def config(self) -> dict[str, Any]:
        """What the suite says about this run (the *spec*: its id finds the records of this run made by
        other versions of the library); :meth:`resolved` is what runs."""
        return {
            "method": self.protocol.canonical(self.method),
            "benchmark": self.task.benchmark,
            "source": self.task.source,
            "target": self.task.target,
            "protocol": self.task.protocol,
            "data": self.task.data,
            "backbone": self.task.backbone,
            "model": self.task.model,
            "hparams": self.hparams,
            "train": self.train,
            "seed": self.seed,
            "eval_every": self.eval_every,
            "validators": list(self.validators),
            "select_by": self.select_by,
            "source_holdout": self.source_holdout,
            "draw": self.draw,
            **({"budget": self.budget} if self.budget is not None else {}),
            # absent for "uda", so the ids of every earlier record stay what they were
            **(
                {"adaptation": self.adaptation, "source_train": self.source_train}
                if self.adaptation != DEFAULT_PROTOCOL
                else {}
            ),
            **({"target_labels": self.target_labels} if self.target_labels is not None else {}),
            **({"variant": self.variant} if self.variant is not None else {}),
        }

    def resolved(self) -> dict[str, Any]:
        """The configuration that runs: :func:`adapt.bench.identity.resolve` of :meth:`config`."""
        if not hasattr(self, "_resolved"):
            self._resolved = resolve(self.config())
        return self._resolved

    @property
    def spec_id(self) -> str:
        """The id of :meth:`config` (which was the run id before 0.2.0)."""
        return digest(self.config())

    @property
    def run_id(self) -> str:
        """The id of :meth:`resolved`: a changed default or revision gives the run a new id."""
        return digest(self.resolved())

    @property
    def label(self) -> str:
        budget = f" @{self.budget}" if self.budget is not None else ""
        name = self.variant or self.protocol.canonical(self.method)
        return f"{name} | {self.task.name}{budget} | seed {self.seed}"


def expand(suite: Suite, methods: list[str] | None = None, seeds: int | None = None) -> list[RunSpec]:
    """All runs of a suite (optionally a subset of its methods, or another number of seeds)."""
    names = methods or list(suite.methods)
    unknown = [m for m in names if m not in suite.methods and _canonical_or_none(suite, m) not in suite.methods]
    if unknown:
        raise ValueError(f"method(s) {', '.join(unknown)} are not in suite {suite.name!r}: {', '.join(suite.methods)}")
    runs = []
    protocol = PROTOCOLS.get(suite.protocol)
    budgets: list[int | None] = list(suite.budgets) or [None]
    for budget in budgets:
        for task in suite.tasks:
            for name in names:
                key = name if name in suite.methods else protocol.canonical(name)
                variant = suite.variants.get(key, {})
                train = {**suite.train, **task.train, **variant.get("train", {}),
                         **({"steps": budget} if budget is not None else {})}  # fmt: skip
                steps = train.get("steps", TrainConfig.steps)
                for draw, hparams in enumerate(hyperparameter_draws(suite, key)):
                    for seed in range(seeds if seeds is not None else suite.seeds):
                        runs.append(
                            RunSpec(
                                method=variant.get("method", name),
                                task=task,
                                seed=seed,
                                hparams=hparams,
                                train=train,
                                eval_every=suite.eval_every_for(steps),
                                metric=suite.metric,
                                validators=tuple(suite.validators),
                                select_by=suite.select_by,
                                source_holdout=suite.source_holdout,
                                draw=draw,
                                budget=budget,
                                adaptation=suite.protocol,
                                source_train=suite.source_train if protocol.uses_source_model else None,
                                target_labels=suite.target_labels,
                                variant=key if variant and variant["method"] != key else None,
                            )
                        )
    return runs


def _canonical_or_none(suite: Suite, name: str) -> str | None:
    try:
        return PROTOCOLS.get(suite.protocol).canonical(name)
    except ValueError:
        return None


def hyperparameter_draws(suite: Suite, method: str) -> list[dict[str, Any]]:
    """The suite's fixed hyperparameters of ``method``, plus seeded draws from its search space.

    Without a search space there is one draw. The draws depend only on the suite's search seed
    and the method name, so a rerun expands to the same runs.
    """
    fixed = dict(suite.methods.get(method, {}))
    space = suite.search.get(method)
    if not space:
        return [fixed]
    seed = suite.search_seed + int(hashlib.sha256(method.encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(suite.search_draws):
        hp = dict(fixed)
        for key, spec in sorted(space.items()):
            hp[key] = draw_from_space(spec, rng)
        draws.append(hp)
    return draws


@functools.lru_cache(maxsize=16)
def _load_task(
    benchmark: str, source: str, target: str, protocol: str | None, data_json: str, root: str | None, holdout: float
):
    return make_data_task(
        benchmark, source, target, root, protocol=protocol, source_holdout=holdout, **json.loads(data_json)
    )


@dataclass(frozen=True)
class Checkpointing:
    """Mid-run checkpoints of a sweep's runs: ``<folder>/<run id>.pt`` every ``every`` steps and/or
    ``seconds`` seconds (both 0: off); a killed run resumes from its checkpoint, to the same result."""

    folder: Path | None = None
    every: int = 0
    seconds: float = 60.0

    def fit_options(self, spec: RunSpec) -> dict[str, Any]:
        if self.folder is None or not (self.every or self.seconds):
            return {}
        # the sweep deletes the checkpoint once the record is written (a kill while scoring keeps it)
        return {"checkpoint_path": self.folder / f"{spec.run_id}.pt", "checkpoint_every": self.every,
                "checkpoint_seconds": self.seconds, "checkpoint_delete": False}  # fmt: skip

    def done(self, spec: RunSpec) -> None:
        """The run's record is written: its checkpoint can go."""
        if self.folder is not None:
            (self.folder / f"{spec.run_id}.pt").unlink(missing_ok=True)


def run_loggers(spec: RunSpec, names: tuple[str, ...], out: Path) -> list[Any]:
    """The experiment trackers a run logs to: ``"tensorboard"`` (``<out>/tensorboard/<run id>``) and/or
    ``"mlflow"`` (one MLflow run per run, named by its run id, in the experiment
    ``adapt-bench <out folder name>`` at ``$MLFLOW_TRACKING_URI``)."""
    made: list[Any] = []
    for name in names:
        if name == "tensorboard":
            made.append(TensorBoardLogger(out / "tensorboard" / spec.run_id))
        else:
            made.append(MLflowLogger(f"adapt-bench {out.name}", run_name=spec.run_id, params=spec.resolved()))
    return made


def execute(
    spec: RunSpec,
    device: str = "auto",
    data_root: str | None = None,
    verbose: bool | None = None,
    checkpointing: Checkpointing = Checkpointing(),
    source_models: Path | None = None,
    loggers: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Train and score one run; failures become a 'failed' record instead of an exception.

    ``source_models``: the folder of cached source models (source-free and online runs; default: a
    ``source-models`` folder beside the checkpoints, or in the working directory). ``loggers``: see
    :func:`run_loggers` (their folder too is beside the checkpoints)."""
    start = time.perf_counter()
    resolved = resolve_device(device)
    record = _record_head(spec, resolved)
    try:
        t = spec.task
        task = _load_task(t.benchmark, t.source, t.target, t.protocol, json.dumps(t.data, sort_keys=True), data_root,
                          spec.source_holdout)  # fmt: skip
        task = labeled_target_split(task, spec.target_labels, spec.seed, data_root)
        context = run_context(spec, resolved, verbose, checkpointing, source_models, loggers)
        record.update(status="ok", **spec.protocol.run(spec, task, context))
    except Exception as exc:
        if isinstance(exc, NonFiniteLossError):  # resuming would diverge again: a retry starts over
            checkpointing.done(spec)
        record.update(
            status="failed",
            error=f"{type(exc).__name__}: {exc}",
            failure=_failure_kind(exc),
            failed_step=getattr(exc, "step", None) if isinstance(exc, NonFiniteLossError) else None,
            traceback=traceback.format_exc(limit=6),
        )
    record["wall_seconds"] = time.perf_counter() - start
    return record


def _record_head(spec: RunSpec, device: torch.device) -> dict[str, Any]:
    """What every record of ``spec`` starts with: its ids, configurations and provenance."""
    return {
        "format": RECORD_FORMAT,
        "id": spec.run_id,
        "spec_id": spec.spec_id,
        "config": spec.resolved(),
        "spec": spec.config(),
        **provenance(device),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "selection": DEFAULT_SELECTION,
        "metric": spec.metric,
    }


def worker_death_record(spec: RunSpec, device: str) -> dict[str, Any]:
    """The failed record of a run whose worker process died under it, also when it ran alone."""
    error = ("the worker process running it died (killed, or out of memory), also when it ran alone; the next "
             "sweep tries it again")  # fmt: skip
    return {**_record_head(spec, resolve_device(device)), "status": "failed", "error": f"WorkerDied: {error}",
            "failure": WORKER_DIED, "failed_step": None, "traceback": ""}  # fmt: skip


@functools.lru_cache(maxsize=1)
def source_commit() -> dict[str, Any] | None:
    """The git commit of the library's source tree, and whether it had uncommitted changes (None when
    the package is not in a git checkout, as after ``pip install``)."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()  # fmt: skip

    try:
        head, dirty = git("rev-parse", "HEAD"), git("status", "--porcelain", "--untracked-files=no", "--", "adapt")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"sha": head, "dirty": bool(dirty)}


def provenance(device: str | torch.device) -> dict[str, Any]:
    """What made a record: the library's and torch's versions, the source commit, the machine, the device
    and the thread count (results differ in the last digits with it)."""
    device = resolve_device(device)
    return {
        "versions": {"adapt": __version__, "torch": torch.__version__, "python": platform.python_version()},
        "commit": source_commit(),
        "machine": machine(device),
        "device": str(device),
        "threads": torch.get_num_threads(),
    }


def machine(device: torch.device) -> dict[str, Any]:
    """Where a run ran: operating system, architecture, CPU model and count, and the GPU's name on CUDA (the CPU
    model because a method's numbers can move in their last digits from one processor to another)."""
    info: dict[str, Any] = {"system": platform.system(), "machine": platform.machine(), "cpu": cpu_model(),
                            "cpus": os.cpu_count()}  # fmt: skip
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def cpu_model() -> str | None:
    """The processor's model name (Linux: ``/proc/cpuinfo``; elsewhere ``platform.processor()``), or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def run_context(spec: RunSpec, device: torch.device, verbose: bool | None, checkpointing: Checkpointing,
                source_models: Path | None, loggers: tuple[str, ...]) -> RunContext:  # fmt: skip
    """What a protocol's run gets: the resolved configuration (what the run id hashes), with the suite's
    runtime options (``log_every``) riding along with the training options, and where outputs go."""
    config = spec.resolved()
    out = checkpointing.folder.parent if checkpointing.folder is not None else Path(".")
    train = {**{k: v for k, v in spec.train.items() if k in RUNTIME_FIELDS}, **config["train"]}

    def fit_options() -> dict[str, Any]:
        return {**checkpointing.fit_options(spec), **({"loggers": run_loggers(spec, loggers, out)} if loggers else {})}

    return RunContext(config, config["hparams"], train, device, verbose, source_models or cache_folder(out),
                      fit_options)  # fmt: skip


def labeled_target_split(task: Task, target_labels: int | str | None, seed: int, data_root: str | None) -> Task:
    """The task with its labeled target examples (``RunSpec.target_labels``; None: unchanged).

    A published split (``saito-k``) is read from ``<data root>/ssda-splits`` (see
    :func:`adapt.data.published_ssda_split`)."""
    if target_labels is None:
        return task
    if isinstance(target_labels, str) and target_labels.startswith("saito-"):
        folder = Path(data_root or "data").expanduser() / "ssda-splits"
        return published_ssda_split(task, int(target_labels.split("-")[1]), folder)
    return few_shot_split(task, target_labels, seed)


def _failure_kind(exc: Exception) -> str:
    """'missing_data', 'disk_full' or 'out_of_memory' (retried by the next sweep), 'non_finite_loss' or
    'error'."""
    if isinstance(exc, (DatasetNotFoundError, DownloadError)):
        return "missing_data"
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk_full"
    if isinstance(exc, RuntimeError) and "inline_container" in str(exc) and "unexpected pos" in str(exc):
        return "disk_full"  # torch.save's report of a write cut short
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return "out_of_memory"
    return "non_finite_loss" if isinstance(exc, NonFiniteLossError) else "error"


def _should_run(record: dict[str, Any] | None, retry_failed: bool) -> bool:
    """A run without a record, a failed one with ``retry_failed``, or one failed for missing data."""
    if record is None:
        return True
    if record["status"] == "ok":
        return False
    missing_data = record.get("failure") in RETRIED_FAILURES or record.get("error", "").startswith(
        ("DatasetNotFoundError", "DownloadError")
    )
    return retry_failed or missing_data


def _run_and_record(spec: RunSpec, device: str, verbose: bool | None, data_root: str | None, out: str,
                    checkpointing: Checkpointing, loggers: tuple[str, ...]) -> str:  # fmt: skip
    """One run from start to record (in whatever process an executor picked); its status. The run is
    claimed first (``<out>/claims/<run id>.lock``): a run another process holds, or one that another
    sweep into the same folder finished meanwhile, is left to it ("elsewhere")."""
    path = Path(out) / "runs" / f"{spec.run_id}.json"
    with claim(Path(out) / "claims" / f"{spec.run_id}.lock") as mine:
        if not mine or _finished(path):
            return "elsewhere"
        record = execute(spec, device, data_root, verbose=verbose, checkpointing=checkpointing,
                         source_models=cache_folder(out), loggers=loggers)  # fmt: skip
        write_record(path, record)
        if record["status"] == "ok":
            checkpointing.done(spec)
        return record["status"]


def _finished(path: Path) -> bool:
    """Whether ``path`` holds a finished record (written by another sweep since this one looked)."""
    try:
        return json.loads(path.read_text()).get("status") == "ok"
    except (OSError, ValueError, AttributeError):
        return False


@dataclass(frozen=True)
class SweepOptions:
    """How a sweep runs (``adapt-bench run``'s options). Only ``methods`` and ``seeds`` choose which runs;
    nothing here changes a run's result (so nothing here is part of a run id)."""

    #: A subset of the suite's methods (default: all of them).
    methods: tuple[str, ...] | None = None
    #: Another number of seeds than the suite's.
    seeds: int | None = None
    #: Runs at once on this machine (the local executor).
    jobs: int = 1
    device: str = "auto"
    #: Where datasets are (see :func:`data_root_for`).
    data_root: str | None = None
    #: Fetch missing datasets (checksums verified) before the first run.
    download: bool = False
    #: Run again the runs whose record says they failed.
    retry_failed: bool = False
    #: Keep stale records (made with other defaults or code) instead of rerunning them; the report marks them.
    keep_stale: bool = False
    #: None: progress bars on a terminal, one line per run otherwise; True: bars; False: nothing.
    verbose: bool | None = None
    #: Mid-run checkpoints every so many steps and/or seconds (both 0: none), see :class:`Checkpointing`.
    checkpoint_every: int = 0
    checkpoint_seconds: float = 60.0
    #: This machine's processes (default) or Ray tasks (local or a cluster).
    executor: Executor = field(default_factory=Executor)
    #: Experiment trackers each run logs to: "tensorboard" and/or "mlflow" (see :func:`run_loggers`).
    loggers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.loggers) - set(LOGGERS))
        if unknown:
            raise ValueError(f"unknown logger(s) {', '.join(unknown)}; choose from {', '.join(LOGGERS)}")


def run_sweep(suite: Suite, out: str | os.PathLike[str], options: SweepOptions | None = None,
              **changes: Any) -> dict[str, Any]:  # fmt: skip
    """Run every pending run of the suite; returns counts of done / skipped / failed / stale runs.

    ``options``: a :class:`SweepOptions`; keyword arguments change its fields
    (``run_sweep(suite, out, verbose=False)``). Finished runs are skipped. A record of one of the
    suite's runs made with other defaults or code (:func:`find_stale`) is moved to
    ``<out>/runs/stale/`` and its run redone (``keep_stale`` keeps it instead, not rerun;
    ``counts["stale_summary"]`` says what changed). A run killed in the middle resumes from its last
    mid-run checkpoint (``<out>/checkpoints``). Before the first run, the data of the tasks with runs
    to do is looked for (and fetched with ``download``): :class:`MissingDataError` names what is missing.
    """
    options = replace(options or SweepOptions(), **changes)
    out = Path(out).resolve()  # absolute: Ray tasks on other nodes resolve paths from their own folder
    checkpointing = Checkpointing(out / "checkpoints", options.checkpoint_every, options.checkpoint_seconds)
    runs = expand(suite, list(options.methods) if options.methods else None, options.seeds)
    existing = {r["id"]: r for r in read_records(out, move_rejected=True)} if (out / "runs").exists() else {}
    pending, stale = _pending(runs, existing, out, options.retry_failed, options.keep_stale)
    check_data(suite, options.data_root, options.download, [spec.task for spec in pending])
    _prepare_folder(suite, out)
    counts = {
        "total": len(runs),
        "skipped": len(runs) - len(pending),
        "ok": 0,
        "failed": 0,
        # claimed or finished by another sweep into the same folder while this one ran
        "elsewhere": 0,
        "failed_before": _failed_before(runs, pending, existing),
        "stale": len(stale.records),
        "stale_summary": stale.summary(),
    }
    progress = SweepProgress(suite.name, len(runs), counts["skipped"], options.verbose)
    data_root = str(Path(data_root_for(suite, options.data_root)).expanduser().resolve())
    work = functools.partial(_run_and_record, data_root=data_root, out=str(out), checkpointing=checkpointing,
                             loggers=tuple(options.loggers))  # fmt: skip
    try:
        for spec, status in _results(pending, options, work, progress.bars):
            if status == WORKER_DIED:  # no record from the run itself: the sweep writes its failure
                write_record(out / "runs" / f"{spec.run_id}.json", worker_death_record(spec, options.device))
                status = "failed"
            counts[status] += 1
            progress.update(spec, status)
    finally:
        progress.close()
    return counts


def _prepare_folder(suite: Suite, out: Path) -> None:
    """The sweep's folder, with the suite's card and published numbers, and without what killed processes
    left (another sweep's live temporary files stay: :func:`adapt._files.remove_orphans`)."""
    for folder in (out / "runs", out / "claims"):
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):  # known now, not after the first run has trained
            raise ValueError(f"{folder} is not writable; the sweep writes its records there (fix its "
                             "permissions or pick another --out)")  # fmt: skip
    if suite.published:
        write_record(out / "published.json", suite.published)
    write_record(out / "suite.json", suite_card(suite))
    for folder in (out / "runs", out / "checkpoints"):  # what killed processes left; never a live one's
        remove_orphans(folder)


def _failed_before(runs: list[RunSpec], pending: list[RunSpec], existing: dict[str, dict[str, Any]]) -> int:
    """Runs that failed in an earlier sweep and are not retried now (see ``retry_failed``)."""
    pending_ids = {r.run_id for r in pending}
    statuses = [existing.get(r.run_id, {}).get("status", "ok") for r in runs if r.run_id not in pending_ids]
    return sum(status != "ok" for status in statuses)


def _pending(
    runs: list[RunSpec], existing: dict[str, dict[str, Any]], out: Path, retry_failed: bool, keep_stale: bool
) -> tuple[list[RunSpec], StaleRuns]:
    """The runs to do, and the stale records found (set aside, and removed from ``existing``, unless kept)."""
    stale = find_stale(runs, existing)
    if not keep_stale:
        for record in stale.records.values():
            existing.pop(record["id"], None)
            set_aside(out, record)
    pending = [r for r in runs if _should_run(existing.get(r.run_id), retry_failed)
               and not (keep_stale and r.run_id in stale.records)]  # fmt: skip
    return pending, stale


def suite_card(suite: Suite) -> dict[str, Any]:
    """What a report says about the suite its records came from (``<out>/suite.json``)."""
    return {"name": suite.name, "description": suite.description, "protocol": suite.protocol, "split": suite.split,
            "defaults_tuned": suite.defaults_tuned, "tuning_note": suite.tuning_note}  # fmt: skip


@dataclass
class StaleRuns:
    """The suite's runs whose only record is stale: run id -> that record, and what changed."""

    records: dict[str, dict[str, Any]]
    reasons: dict[str, list[str]]

    def summary(self, shown: int = 3) -> str:
        """'12 stale: dann.hparams.discriminator_dropout 0.0 -> 0.5 (12); ...' (empty when none is)."""
        if not self.records:
            return ""
        counted = Counter(line for lines in self.reasons.values() for line in lines)
        parts = [f"{line} ({n})" for line, n in counted.most_common(shown)]
        more = len(counted) - shown
        return f"{len(self.records)} stale: " + "; ".join(parts) + (f"; and {more} other change(s)" if more > 0 else "")


def find_stale(runs: list[RunSpec], existing: dict[str, dict[str, Any]]) -> StaleRuns:
    """The runs without a record of their own id whose spec has a record under another id (made by
    other defaults or code), and those whose own record ran with other than :data:`RUN_THREADS` torch
    threads. A record made before 0.2.0 carries no spec id; its id was its spec's."""
    by_spec: dict[str, dict[str, Any]] = {}
    for record in existing.values():
        by_spec.setdefault(record.get("spec_id", record["id"]), record)
    records, reasons = {}, {}
    for spec in runs:
        old = by_spec.get(spec.spec_id)
        own = existing.get(spec.run_id)
        if own is not None and own.get("threads", RUN_THREADS) != RUN_THREADS:  # same id, other thread count
            old = own
        elif spec.run_id in existing or old is None or old["id"] == spec.run_id:
            continue
        records[spec.run_id] = old
        name = spec.protocol.canonical(spec.method)
        reasons[spec.run_id] = [f"{name}: {line}" for line in stale_reasons(old, spec.resolved())]
    return StaleRuns(records, reasons)


def set_aside(out: Path, record: dict[str, Any]) -> None:
    """Move a stale record to ``<out>/runs/stale/`` (kept, never deleted; the report leaves it out)."""
    path = out / "runs" / f"{record['id']}.json"
    if path.exists():
        (out / "runs" / "stale").mkdir(exist_ok=True)
        os.replace(path, out / "runs" / "stale" / path.name)


class SweepProgress:
    """A progress bar on a terminal; one plain line per finished run when the output is redirected.

    ``verbose``: None -- decide by the terminal; True -- bars (sweep and training); False -- nothing.
    """

    def __init__(self, name: str, total: int, done: int, verbose: bool | None) -> None:
        terminal = sys.stderr.isatty()
        self.bars = verbose if verbose is not None else terminal
        self.lines = verbose is None and not terminal
        self.total, self.done, self.start = total, done, time.perf_counter()
        self.bar = tqdm(total=total, initial=done, desc=f"suite {name}", unit="run", disable=not self.bars)
        if self.lines and done < total:
            print(f"suite {name}: {total - done} of {total} runs to do", flush=True)

    def update(self, spec: RunSpec, status: str) -> None:
        self.done += 1
        self.bar.set_postfix_str(spec.label)
        self.bar.update(1)
        if self.lines:
            elapsed = time.perf_counter() - self.start
            print(f"[{self.done}/{self.total}] {spec.label}: {status} ({elapsed:.0f} s elapsed)", flush=True)

    def close(self) -> None:
        self.bar.close()


def _results(pending: list[RunSpec], options: SweepOptions, work: Any, show: bool) -> Iterator[tuple[RunSpec, str]]:
    """Run ``pending`` with the chosen executor; yield each run's status as it finishes."""
    if options.executor.kind == "ray":
        return ray_results(pending, options.device, work, options.executor)
    return local_results(pending, options.jobs, options.device, work, show)
