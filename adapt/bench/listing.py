"""What ``adapt-bench list`` prints: methods, suites, benchmarks, validators, backbones, read from
their registries (so a registered method is listed without anything else to update). It imports
torch and every registry; ``benchmarks/bench_cli_startup.py`` measures how long that takes.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout

from ..data import benchmarks
from ..methods import TRANSFER_BASELINES, aliases, available, get, hyperparameters
from ..validators import VALIDATORS
from .backbones import BACKBONES
from .protocols import DEFAULT_PROTOCOL, MODEL_KEYS, PROTOCOLS
from .search import SEARCH_KINDS
from .suite import available_suites, load_suite

#: The method table's row order: families, then names.
FAMILY_ORDER = ("baseline", "adversarial", "discrepancy", "classifier disagreement", "regularizer", "self-training",
                "normalization")  # fmt: skip


def methods_table() -> str:
    """The README's method table, from the registry: name (aliases), class, family, paper and the term the
    method adds to the source loss (each class's ``family``, ``paper`` and ``adaptation_term``)."""
    alias_of: dict[str, list[str]] = {}
    for alias, name in aliases().items():
        alias_of.setdefault(name, []).append(alias)
    rank = {family: i for i, family in enumerate(FAMILY_ORDER)}
    names = sorted(available(), key=lambda n: (rank.get(get(n).family, len(rank)), get(n).family, n))
    rows = ["| name | class | family | paper | adaptation term |", "|---|---|---|---|---|"]
    for name in names:
        cls = get(name)
        shown = f"`{name}`" + (f" ({', '.join(f'`{a}`' for a in sorted(alias_of[name]))})" if name in alias_of else "")
        rows.append(f"| {shown} | `{cls.__name__}` | {cls.family} | {cls.paper or '-'} | {cls.adaptation_term} |")
    return "\n".join(rows) + "\n"


def _print_methods() -> None:
    print("methods (hyperparameters = library defaults; presets reproduce a paper or a reference code):")
    alias_of: dict[str, list[str]] = {}
    for alias, name in aliases().items():
        alias_of.setdefault(name, []).append(alias)
    for name in available():
        extra = f" (alias {', '.join(alias_of[name])})" if name in alias_of else ""
        print(f"  {name}{extra}: {get(name).__name__}")
        for key, value in hyperparameters(name).items():
            print(f"      {key} = {value!r}")
        if get(name).presets:
            print(f"      presets: {', '.join(sorted(get(name).presets))}  (create({name!r}, preset=...))")
        if get(name).search_space:
            ranges = "; ".join(f"{key} {list(spec)}" for key, spec in get(name).search_space.items())
            print(f'      search space ([search] {name} = "default"): {ranges}')


def _print_protocol_methods() -> None:
    for protocol in (p for p in PROTOCOLS.values() if p.name != DEFAULT_PROTOCOL):
        registry = protocol.methods
        print(f"\n{protocol.name} methods ({protocol.summary}; suites with protocol = {protocol.name!r}, plus "
              "source_only):")  # fmt: skip
        for name in registry.names():
            cls = registry.get(name)
            settings = {k: v for k, v in cls.hyperparameter_defaults().items()
                        if k not in MODEL_KEYS | {"regularizers"}}  # fmt: skip
            print(f"  {name}: {cls.__name__}")
            for key, value in settings.items():
                print(f"      {key} = {value!r}")
    print("\ntransfer baselines (trained on labeled target examples, fit(target_labeled=...); "
          "adapt-bench study):")  # fmt: skip
    for name in TRANSFER_BASELINES.names():
        cls = TRANSFER_BASELINES.get(name)
        print(f"  {name}: {cls.__name__}" + (f" (train_layers = {cls.hyperparameter_defaults()['train_layers']!r})"
                                             if name == "finetune" else ""))  # fmt: skip


def _print_suites() -> None:
    print("\nsuites (adapt-bench run --suite NAME; files in adapt/bench/suites/):")
    for name, path in available_suites().items():
        suite = load_suite(str(path))
        print(f"  {name}: {len(suite.tasks)} tasks x {len(suite.methods)} methods x {suite.seeds} seeds")
        if suite.description:
            print(f"      {suite.description}")
        print(f"      tasks: {', '.join(t.name for t in suite.tasks)}")


def _print_benchmarks() -> None:
    print("\nbenchmarks (tasks are source -> target pairs of these domains):")
    for name, b in benchmarks().items():
        kind = "offline" if b.offline else "needs data"
        print(f"  {name} [{kind}, {b.protocol}]: domains {', '.join(b.domains)}")
        print(f"      {b.description}")
        pairs = [f"{s}->{t}" for s, t in b.default_tasks]
        print(f"      usual tasks: {', '.join(pairs[:6])}{' ...' if len(pairs) > 6 else ''}")


def render() -> str:
    """The listing, rendered from the registries."""
    out = io.StringIO()
    with redirect_stdout(out):
        _print_methods()
        _print_protocol_methods()
        _print_suites()
        _print_benchmarks()
        print(f"\nvalidators: {', '.join(VALIDATORS.names())}")
        print("backbone kinds for suites (options):")
        for name, kind in BACKBONES.items():
            print(f"  {name}: {', '.join(sorted(kind.options)) or '-'}")
        print("search-space kinds: " + ", ".join(kind.usage for kind in SEARCH_KINDS.values()))
    return out.getvalue()
