"""ARCHITECTURE.md kept true: which layer may import which, no import cycles (function-level imports
included), imports inside functions only where the laziness is the point, short functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from helpers import ROOT

PACKAGE = ROOT / "adapt"

#: layer -> the other layers it may import (ARCHITECTURE.md, "Layers"). Leaves import nothing from adapt.
ALLOWED: dict[str, set[str]] = {
    "adapt._version": set(),
    "adapt.errors": set(),
    "adapt._optional": set(),
    "adapt._files": set(),
    "adapt.registry": set(),
    "adapt.batch": set(),
    "adapt.losses": set(),
    "adapt.models": {"adapt.losses", "adapt.errors", "adapt._optional"},
    "adapt.train": {"adapt.batch", "adapt.errors", "adapt._files"},
    "adapt.data": {"adapt.registry", "adapt._optional", "adapt.errors"},
    "adapt.validators": {"adapt.registry", "adapt.data", "adapt.losses", "adapt._optional"},
    "adapt.methods": {
        "adapt._version", "adapt._files", "adapt.errors", "adapt.batch", "adapt.registry", "adapt.losses", "adapt.models",
        "adapt.train", "adapt.data", "adapt.validators", "adapt._optional",
    },
    "adapt.estimate": {"adapt.validators"},
    "adapt.testing": {"adapt.batch", "adapt.methods", "adapt.train"},
    "adapt.sourcefree": {"adapt.methods"},
    "adapt.sklearn": {"adapt.methods", "adapt.models", "adapt.validators"},
    "adapt.loggers": {"adapt._optional"},
    "adapt.testtime": {"adapt.errors", "adapt.registry", "adapt.losses", "adapt.models", "adapt.train"},
    "adapt.bench": {
        "adapt._version", "adapt._optional", "adapt._files", "adapt.errors", "adapt.registry", "adapt.batch", "adapt.losses",
        "adapt.models", "adapt.train", "adapt.data", "adapt.validators", "adapt.methods", "adapt.testtime",
        "adapt.loggers", "adapt.estimate",
    },
    "adapt": {"adapt._version", "adapt.losses", "adapt.methods", "adapt.models", "adapt.train"},
}  # fmt: skip
MAX_FUNCTION_LINES = 60
#: The modules whose imports of the package may sit inside functions, and why: ``adapt`` exports its
#: names lazily (PEP 562: ``import adapt`` does not import torch); the CLI imports a command's modules
#: when the command runs (``adapt-bench --help`` does not import torch). Anywhere else an import inside
#: a function hides a dependency, and with it a cycle.
LAZY_IMPORTS_ALLOWED = {"adapt", "adapt.bench.cli"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports_all_submodules(node: ast.AST) -> bool:
    """``import_submodules(__name__, __path__)``: a package that imports every module it holds."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "import_submodules"


def _imports(module: str, top_level_only: bool) -> set[str]:
    """Modules of the package imported by ``module`` (TYPE_CHECKING blocks excluded; a package's
    ``import_submodules`` imports each of its modules)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_function = True
        if isinstance(node, ast.ImportFrom) and not (top_level_only and in_function):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:  # ``from . import catalog`` imports the submodule
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
        elif isinstance(node, ast.Import) and not (top_level_only and in_function):
            found.update(alias.name for alias in node.names)
        elif _imports_all_submodules(node) and path.name == "__init__.py":
            found.update(m for m in MODULES if m.rsplit(".", 1)[0] == module)
        for child in ast.iter_child_nodes(node):
            visit(child, in_function)

    visit(ast.parse(path.read_text()), False)
    return {m for m in found if m in MODULES and m != module}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_layers_import_only_what_architecture_md_allows(module):
    layer = _layer(module)
    assert layer in ALLOWED, f"{module}: layer {layer} is not in ARCHITECTURE.md's table (add it there and here)"
    outside = {_layer(m) for m in _imports(module, top_level_only=False)} - {layer}
    assert outside <= ALLOWED[layer], f"{module} imports {sorted(outside - ALLOWED[layer])}, not allowed for {layer}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_inside_functions_only_where_laziness_is_the_point(module):
    nested = _imports(module, top_level_only=False) - _imports(module, top_level_only=True)
    assert module in LAZY_IMPORTS_ALLOWED or not nested, (
        f"{module} imports {sorted(nested)} inside a function: import at the top (a cycle it hid must be "
        "broken by moving code), or add the module to LAZY_IMPORTS_ALLOWED with the reason"
    )


def test_no_import_cycles():
    """No cycle, counting the imports inside functions too (the lazy ones of LAZY_IMPORTS_ALLOWED included)."""
    graph = {m: _imports(m, top_level_only=False) for m in MODULES}
    # A package imports its own submodules from __init__; an edge back from a submodule to its
    # package's __init__ is the cycle we forbid, like any other.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep) :], dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def _function_lengths(tree: ast.AST):
    """(name, line, lines) of every function in ``tree``, docstrings not counted."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = node.end_lineno - node.lineno + 1
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                lines -= first.end_lineno - first.lineno + 1  # docstrings do not count
            yield node.name, node.lineno, lines


def test_no_long_functions():
    long = [
        f"{path.relative_to(PACKAGE.parent)}:{line} {name} ({lines} lines)"
        for path in MODULES.values()
        for name, line, lines in _function_lengths(ast.parse(path.read_text()))
        if lines > MAX_FUNCTION_LINES
    ]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (docstring excluded): {long}"


def test_the_checks_can_fail(tmp_path, monkeypatch):
    """A planted ``adapt.losses`` that imports the methods breaks the layer rule and makes a cycle; one
    that does so inside a function is caught as a hidden import, and still makes the cycle."""
    planted = tmp_path / "__init__.py"
    planted.write_text("from ..methods import DANN\n")
    monkeypatch.setitem(MODULES, "adapt.losses", planted)
    with pytest.raises(AssertionError, match=r"adapt\.methods"):
        test_layers_import_only_what_architecture_md_allows("adapt.losses")
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        test_no_import_cycles()
    planted.write_text("def dann():\n    from ..methods import DANN\n\n    return DANN\n")
    with pytest.raises(AssertionError, match=r"inside a function"):
        test_imports_inside_functions_only_where_laziness_is_the_point("adapt.losses")
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        test_no_import_cycles()


#: A protocol's per-run path (``Protocol.run``) reads in one screen.
MAX_PROTOCOL_RUN_LINES = 30
PROTOCOLS_PACKAGE = "adapt.bench.protocols"


def _protocol_names() -> set[str]:
    from adapt.bench.protocols import PROTOCOLS

    return set(PROTOCOLS.names())


def _run_lengths(path: Path) -> dict[str, int]:
    """Lines of each class's ``run`` method in ``path`` (docstring excluded), by class name."""
    return {
        node.name: next(_function_lengths(item))[2]
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
        for item in node.body
        if isinstance(item, ast.FunctionDef) and item.name == "run"
    }


def test_each_protocol_runs_a_run_in_one_short_function():
    """Every registered protocol has its own ``run`` (build, fit, score), under 30 lines."""
    from adapt.bench.protocols import PROTOCOLS

    for protocol in PROTOCOLS.values():
        cls = type(protocol)
        assert "run" in vars(cls), f"protocol {protocol.name!r} ({cls.__name__}) does not define run"
        module = cls.__module__
        lengths = _run_lengths(MODULES[module])
        assert lengths[cls.__name__] <= MAX_PROTOCOL_RUN_LINES, (
            f"{module}.{cls.__name__}.run is {lengths[cls.__name__]} lines; keep a run's path under "
            f"{MAX_PROTOCOL_RUN_LINES} (helpers in adapt/bench/protocols/base.py)"
        )


def _protocol_comparisons(path: Path, names: set[str]) -> list[str]:
    """``x == "online"``, ``x in ("uda", ...)``, ``set(...) == {"online"}``: code branching on a protocol's name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                values = [operand] if isinstance(operand, ast.Constant) else getattr(operand, "elts", [])
                if any(isinstance(v, ast.Constant) and v.value in names for v in values):
                    found.append(
                        f"{path.name if PACKAGE not in path.parents else path.relative_to(PACKAGE.parent)}:"
                        f"{node.lineno}"
                    )
    return found


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("adapt.bench")))
def test_the_harness_asks_protocols_instead_of_comparing_their_names(module):
    """Outside ``adapt/bench/protocols`` nothing compares a value with a protocol's name: what differs
    between protocols is an attribute or a method of the protocol (ARCHITECTURE.md, "Protocols")."""
    if module.startswith(PROTOCOLS_PACKAGE):
        return
    found = _protocol_comparisons(MODULES[module], _protocol_names())
    assert not found, f"comparisons with a protocol's name (ask the Protocol object instead): {found}"


def test_the_protocol_checks_can_fail(tmp_path, monkeypatch):
    """A planted module that branches on "online", and a protocol whose run grows past the limit, are caught."""
    planted = tmp_path / "planted.py"
    planted.write_text('def scored(protocol):\n    return "stream" if protocol == "online" else "last"\n')
    monkeypatch.setitem(MODULES, "adapt.bench.planted", planted)
    with pytest.raises(AssertionError, match=r"planted\.py:2"):
        test_the_harness_asks_protocols_instead_of_comparing_their_names("adapt.bench.planted")
    source = MODULES["adapt.bench.protocols.online"].read_text()
    long = source.replace("        model.eval()\n", "        model.eval()\n" + "        pass\n" * 30)
    (tmp_path / "online.py").write_text(long)
    monkeypatch.setitem(MODULES, "adapt.bench.protocols.online", tmp_path / "online.py")
    with pytest.raises(AssertionError, match=r"Online\.run is"):
        test_each_protocol_runs_a_run_in_one_short_function()


def test_lazy_packages_still_give_their_submodules():
    import adapt
    import adapt.bench

    assert adapt.bench.runner.run_sweep is adapt.bench.run_sweep and adapt.registry.Registry
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        adapt.bench.nothing_here  # noqa: B018


def test_core_install_leaves_the_harness_extras_out():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {d.split(">")[0].split("=")[0] for d in project["dependencies"]}
    assert "seaborn" not in core and {"torch", "numpy", "pandas", "scikit-learn"} <= core
    assert any(d.startswith("seaborn") for d in project["optional-dependencies"]["bench"])
    assert any(d.startswith("seaborn") for d in project["optional-dependencies"]["dev"])
