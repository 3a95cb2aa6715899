"""What a run is: the configuration that actually runs, its id, and whether a record is stale.

A suite says little (``[methods.dann]`` may be empty); what runs is much more: the method's defaults
and preset, the training options with ``TrainConfig``'s defaults and the method's own, the backbone's
and the benchmark's option defaults, and the code that runs them. :func:`resolve` spells all of it
out, with the *revisions* of the library (``RESULTS_REVISION``), the method, the validators, the
backbone kind and the benchmark, each of which moves when its code changes results in a way no
setting shows. A run's id hashes that resolved configuration, so a change of any default gives the
affected runs new ids; the suite-level configuration (the *spec*, what the suite file says) keeps its
id, which is how a sweep finds the record the change made stale and says what changed.
"""

from __future__ import annotations

from typing import Any

from .._version import RESULTS_REVISION
from ..data import BENCHMARKS
from ..methods.registry import METHODS, fit_options, resolve_hyperparameters
from ..train.engine import resolve_train
from ..validators import VALIDATORS
from .backbones import BACKBONES, resolve_backbone
from .protocols import BASELINE, DEFAULT_PROTOCOL, PROTOCOLS, Protocol, json_like
from .records import digest

__all__ = ["BASELINE", "LEGACY", "RUN_THREADS", "differences", "digest", "resolve", "resolve_data", "stale_reasons"]

#: Torch threads in every run, on every executor, however busy the machine and whatever ``--jobs`` is.
#: A run's numbers differ in their last digits with its thread count (parallel reductions add in another
#: order; 0.8267 at 2 threads, 0.8200 at 1), so the count is fixed here rather than taken from the load;
#: sweeps go parallel across runs (``--jobs``, Ray), not within one. Changing it makes every record stale.
RUN_THREADS = 1

#: ``task(...)`` arguments every benchmark takes, with their defaults (see :func:`adapt.data.task`).
DATA_DEFAULTS = {"seed": 0, "test_fraction": 0.3}


def resolve_data(benchmark: str, data: dict[str, Any]) -> dict[str, Any]:
    """A task's data options with the benchmark's defaults (and ``task``'s seed and test fraction) filled in."""
    return json_like({**DATA_DEFAULTS, **BENCHMARKS.get(benchmark).options, **data})


def revisions(protocol: Protocol, method: str, validators: list[str], backbone: str, benchmark: str) -> dict[str, Any]:
    """The revisions of the code a run uses (see :mod:`adapt._version`): the library's, the method's
    (as its protocol says), the validators', the backbone kind's and the benchmark's."""
    return {
        "library": RESULTS_REVISION,
        "methods": protocol.revisions(method),
        "validators": {name: VALIDATORS[name].revision for name in validators},
        "backbone": BACKBONES.get(backbone).revision,
        "benchmark": BENCHMARKS.get(benchmark).revision,
    }


def resolve_source_model(spec: dict[str, Any]) -> dict[str, Any]:
    """How a source-free or online run's source model is trained: SourceOnly's hyperparameters and
    training options, resolved (or ``pretrained``: the backbone's pretrained classifier, nothing trained)."""
    if spec["source_train"].get("pretrained"):
        hparams = resolve_hyperparameters(BASELINE, spec["model"])
        return {"pretrained": True, "hparams": hparams, "revision": METHODS.get(BASELINE).revision}
    return {
        "hparams": resolve_hyperparameters(BASELINE, spec["model"]),
        "train": resolve_train({**fit_options(BASELINE), **spec["source_train"]}),
        "revision": METHODS.get(BASELINE).revision,
    }


def resolve(spec: dict[str, Any]) -> dict[str, Any]:
    """The configuration that runs for a suite-level run configuration ``spec`` (:meth:`RunSpec.config`).

    The keys of ``spec`` stay (so a report reads either the same way) with their values resolved, plus
    ``adaptation`` and ``revisions``. Raises ValueError (or the registry's error) when ``spec`` names
    something this library does not have.
    """
    adaptation = spec.get("adaptation", DEFAULT_PROTOCOL)
    protocol = PROTOCOLS.get(adaptation)
    hparams, train = protocol.settings(spec["method"], spec["hparams"], spec["model"], spec["train"])
    used = revisions(protocol, spec["method"], list(spec["validators"]), spec["backbone"]["kind"], spec["benchmark"])
    config = {
        **spec,
        "data": resolve_data(spec["benchmark"], spec["data"]),
        "backbone": resolve_backbone(spec["backbone"]),
        "hparams": hparams,
        "train": train,
        "adaptation": adaptation,
        "revisions": used,
    }
    if protocol.uses_source_model:
        config["source_train"] = resolve_source_model(spec)
    return json_like(config)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key in value:
            out.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out if out or not prefix else {prefix: {}}
    return {prefix: value}


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What changed from ``old`` to ``new``, one ``key old -> new`` line per leaf, in key order."""
    a, b = _flatten(old), _flatten(new)
    lines = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "absent") != b.get(key, "absent") or (key in a) != (key in b):
            lines.append(f"{key} {a.get(key, 'absent')!r} -> {b.get(key, 'absent')!r}")
    return lines


#: Why a record without a spec is stale.
LEGACY = "recorded by adapt < 0.2.0, before run ids hashed the resolved configuration"


def stale_reasons(record: dict[str, Any], current: dict[str, Any] | None = None) -> list[str]:
    """Why ``record`` is not what this library runs for its spec (empty: it is current).

    ``current``: the resolved configuration to compare with (default: :func:`resolve` of the record's
    spec). A record of a spec this library cannot resolve (a method that is gone) is stale too.
    """
    if "spec" not in record:
        return [LEGACY]
    threads = record.get("threads")
    if threads is not None and threads != RUN_THREADS:  # recorded since 0.1; not part of the resolved config
        return [f"threads {threads!r} -> {RUN_THREADS!r}"]
    if current is None:
        try:
            current = resolve(record["spec"])
        except (ValueError, KeyError, TypeError, ImportError) as exc:  # a method gone, an extra not installed
            return [f"its configuration no longer resolves: {type(exc).__name__}: {exc}"]
    return differences(record["config"], current)
