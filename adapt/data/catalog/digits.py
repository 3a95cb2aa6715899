"""MNIST, USPS, SVHN and MNIST-M: the official training split is trained on, the official test split scored."""

from __future__ import annotations

from ..base import Task, make_task
from ..benchmark import Benchmark, TaskRequest, register_benchmark
from ..digits import DIGIT_CLASSES, DIGIT_DOMAINS, INPUT_SHAPES, LAYOUTS, load_digits_domain

DESCRIPTION = "MNIST, USPS, SVHN, MNIST-M (official train split as training data, official test split scored)"


def build(request: TaskRequest) -> Task:
    """``options["digits_protocol"]``: 'lenet' (28x28 gray) or 'dtn' (32x32 RGB); by default 'dtn'
    when SVHN or MNIST-M is involved, else 'lenet'."""
    source, target, root = request.source, request.target, request.root
    assert root is not None
    protocol = request.options.get("digits_protocol") or ("dtn" if {"svhn", "mnistm"} & {source, target} else "lenet")
    src = load_digits_domain(source, root, train=True, protocol=protocol, download=request.download)
    tgt = load_digits_domain(target, root, train=True, protocol=protocol, download=request.download)
    tgt_test = (
        load_digits_domain(target, root, train=False, protocol=protocol) if request.protocol == "inductive" else None
    )
    return make_task(
        request.benchmark,
        source,
        src,
        target,
        tgt,
        DIGIT_CLASSES,
        INPUT_SHAPES[protocol],
        target_test_data=tgt_test,
        description=f"{DESCRIPTION}; {protocol} preprocessing",
        **request.split_options(),
    )


register_benchmark(
    Benchmark(
        name="digits",
        domains=DIGIT_DOMAINS,
        protocol="inductive",
        description=DESCRIPTION,
        default_tasks=(("mnist", "usps"), ("usps", "mnist"), ("svhn", "mnist"), ("mnist", "mnistm")),
        offline=False,
        build=build,
        files="\n".join(LAYOUTS.values()),
        options={"digits_protocol": None},
    )
)
