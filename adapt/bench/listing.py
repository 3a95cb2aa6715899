"""What ``adapt-bench list`` prints: methods, suites, benchmarks, validators, backbones.

Rendering it imports torch and every registry (seconds). The package therefore ships the rendered
text (``listing.txt``) with a digest of the sources it was rendered from; ``adapt-bench list``
prints it when the digest still matches, and renders live otherwise (for example in an edited
install). ``python -m adapt.bench.listing --write`` refreshes it; a test checks that it is fresh.
"""

from __future__ import annotations

import hashlib
import io
import sys
from contextlib import redirect_stdout
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).with_name("listing.txt")
#: The sources the listing may depend on (relative to the package folder): all of them, since
#: hashing every file takes milliseconds and a narrower list could miss a dependency.
SOURCES = ("**/*.py", "bench/suites/*.toml")


def source_digest() -> str:
    """SHA-256 over the files in :data:`SOURCES` (names and contents)."""
    digest = hashlib.sha256()
    for pattern in SOURCES:
        for path in sorted(PACKAGE.glob(pattern)):
            digest.update(path.relative_to(PACKAGE).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _print_methods() -> None:
    from ..methods import aliases, available, get, hyperparameters

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


def _print_protocol_methods() -> None:
    from .protocols import method_registry

    for protocol, what in (("source-free", "adapt a trained model with the target alone"),
                           ("online", "test-time: adapt while predicting a stream")):  # fmt: skip
        registry = method_registry(protocol)
        print(f"\n{protocol} methods ({what}; suites with protocol = {protocol!r}, plus source_only):")
        for name in registry.names():
            cls = registry.get(name)
            settings = {k: v for k, v in cls.hyperparameter_defaults().items()
                        if k not in ("feature_dim", "bottleneck_dim", "regularizers")}  # fmt: skip
            print(f"  {name}: {cls.__name__}")
            for key, value in settings.items():
                print(f"      {key} = {value!r}")
    from ..methods import TRANSFER_BASELINES

    print("\ntransfer baselines (trained on labeled target examples, fit(target_labeled=...); "
          "adapt-bench study):")  # fmt: skip
    for name in TRANSFER_BASELINES.names():
        cls = TRANSFER_BASELINES.get(name)
        print(f"  {name}: {cls.__name__}" + (f" (train_layers = {cls.hyperparameter_defaults()['train_layers']!r})"
                                             if name == "finetune" else ""))  # fmt: skip


def _print_suites() -> None:
    from .suite import available_suites, load_suite

    print("\nsuites (adapt-bench run --suite NAME; files in adapt/bench/suites/):")
    for name, path in available_suites().items():
        suite = load_suite(str(path))
        print(f"  {name}: {len(suite.tasks)} tasks x {len(suite.methods)} methods x {suite.seeds} seeds")
        if suite.description:
            print(f"      {suite.description}")
        print(f"      tasks: {', '.join(t.name for t in suite.tasks)}")


def _print_benchmarks() -> None:
    from ..data import benchmarks

    print("\nbenchmarks (tasks are source -> target pairs of these domains):")
    for name, b in benchmarks().items():
        kind = "offline" if b.offline else "needs data"
        print(f"  {name} [{kind}, {b.protocol}]: domains {', '.join(b.domains)}")
        print(f"      {b.description}")
        pairs = [f"{s}->{t}" for s, t in b.default_tasks]
        print(f"      usual tasks: {', '.join(pairs[:6])}{' ...' if len(pairs) > 6 else ''}")


def render() -> str:
    """The listing, rendered from the live registries (imports torch and every method)."""
    from ..validators import VALIDATORS
    from .backbones import BACKBONES
    from .search import SEARCH_KINDS

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


def listing() -> str:
    """The shipped listing when it matches the installed sources, else a live rendering."""
    if SNAPSHOT.exists():
        digest, _, text = SNAPSHOT.read_text().partition("\n")
        if digest == f"# sources {source_digest()}":
            return text
    return render()


def write_snapshot() -> Path:
    """Render the listing and store it with the digest of its sources."""
    SNAPSHOT.write_text(f"# sources {source_digest()}\n{render()}")
    return SNAPSHOT


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m adapt.bench.listing --write")
    print(f"wrote {write_snapshot()}")
