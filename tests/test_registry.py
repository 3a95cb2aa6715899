"""One registry mechanism for methods, validators, backbones, benchmarks and search-space kinds."""

from __future__ import annotations

import numpy as np
import pytest

from adapt import data, methods
from adapt.bench.backbones import BACKBONES, build_backbone
from adapt.bench.report.figures import FAMILY_ORDER
from adapt.bench.search import SEARCH_KINDS, check_search_spec
from adapt.bench.suite import SuiteError, available_suites, load_suite
from adapt.data import BENCHMARKS, Benchmark, register_benchmark
from adapt.data.benchmark import array_task
from adapt.methods import METHODS
from adapt.registry import Registry
from adapt.validators import VALIDATORS


def test_every_named_thing_is_in_one_kind_of_registry():
    for registry in (METHODS, VALIDATORS, BACKBONES, BENCHMARKS, SEARCH_KINDS):
        assert isinstance(registry, Registry)
    assert "dann" in METHODS and "erm" in METHODS and METHODS["erm"] is METHODS["source_only"]
    assert {"class_ami", "im"} <= set(VALIDATORS) and {"mlp", "resnet50"} <= set(BACKBONES)
    assert {"moons", "office31", "optdigits-shifts"} <= set(BENCHMARKS)
    assert SEARCH_KINDS.names() == ["choice", "log_uniform", "uniform"]


@pytest.mark.bad_input
def test_registry_errors_name_the_kind_and_list_what_exists():
    shapes = Registry("shape")
    shapes.add("square", 4, "box")
    with pytest.raises(ValueError, match=r"unknown shape 'circle'; available: square, box \(= square\)"):
        shapes.get("circle")
    with pytest.raises(KeyError):  # a Mapping: dict-style lookups fail with KeyError too
        shapes["circle"]
    with pytest.raises(ValueError, match="shape name 'box' is already registered"):
        shapes.add("box", 5)
    assert shapes.get("BOX") == 4 and "Square" in shapes  # names are case-insensitive by default
    assert shapes.remove("square") == 4 and "box" not in shapes and len(shapes) == 0


@pytest.fixture
def stripes_benchmark():
    """A new dataset added the way ARCHITECTURE.md says: one Benchmark registered."""

    def build(request):
        rng = np.random.default_rng(request.seed)
        ys, yt = rng.integers(0, 2, 40), rng.integers(0, 2, 40)
        xs = ys[:, None] + 0.1 * rng.normal(size=(40, 3))
        xt = yt[:, None] + 0.5 + 0.1 * rng.normal(size=(40, 3))
        return array_task(request, (xs, ys), (xt, yt), ["low", "high"], (3,))

    benchmark = register_benchmark(
        Benchmark("stripes", ("a", "b"), "transductive", "two stripes", (("a", "b"),), True, build,
                  "generated", {"width": 1.0})
    )  # fmt: skip
    yield benchmark
    BENCHMARKS.remove("stripes")


def test_a_benchmark_registered_in_one_call_works_everywhere(stripes_benchmark, tmp_path):
    task = data.task("stripes", "a", "b")
    assert task.name == "stripes/a->b" and task.input_shape == (3,) and len(task.target_test) == 40
    assert "stripes" in data.benchmarks()
    with pytest.raises(ValueError, match=r"unknown option.*depth; its options: width"):
        data.task("stripes", "a", "b", depth=3)
    suite = tmp_path / "stripes.toml"
    suite.write_text(
        'seeds = 1\n[backbones.mlp]\nkind = "mlp"\n[[tasks]]\nbenchmark = "stripes"\nsource = "a"\n'
        'target = "b"\nbackbone = "mlp"\n[methods.source_only]\n'
    )
    assert load_suite(str(suite)).tasks[0].name == "stripes/a->b"
    suite.write_text(suite.read_text().replace('target = "b"', 'target = "c"'))
    with pytest.raises(SuiteError, match=r"tasks\[0\].target: unknown stripes domain 'c'; allowed: a, b"):
        load_suite(str(suite))


def test_backbone_kinds_declare_their_options():
    import torch

    assert build_backbone({"kind": "mlp", "hidden": [8]}, (2,))(torch.zeros(5, 2)).shape == (5, 8)
    with pytest.raises(ValueError, match=r"unknown option.*depth for backbone kind 'mlp'"):
        build_backbone({"kind": "mlp", "depth": 3}, (2,))
    with pytest.raises(ValueError, match="unknown backbone kind 'transformer'; available: clip, convnet"):
        build_backbone({"kind": "transformer"}, (2,))


@pytest.mark.parametrize(
    "spec, problem",
    [
        (["normal", 0, 1], "kind in choice, log_uniform, uniform"),
        (["uniform", 1, 0], "needs low < high"),
        (["log_uniform", 0, 1], "needs low > 0"),
        (["choice", []], "needs a non-empty list"),
        (["choice", [1, 2]], None),
        (["uniform", 0, 1.5], None),
    ],
)
@pytest.mark.bad_input
def test_search_kinds_are_checked_where_they_are_declared(spec, problem):
    found = check_search_spec(spec)
    assert found is None if problem is None else problem in found


def test_suites_ship_inside_the_package():
    suites = available_suites()
    assert {"quick", "zoo-tune", "zoo-confirm", "office31"} <= set(suites)
    assert all(path.parent.parts[-3:] == ("adapt", "bench", "suites") for path in suites.values())


def test_every_method_declares_its_family_paper_and_term():
    for name in methods.available():
        cls = methods.get(name)
        assert cls.family in FAMILY_ORDER, name
        assert cls.adaptation_term and (cls.paper or name == "source_only"), name
