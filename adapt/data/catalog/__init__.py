"""One module per benchmark; importing this package registers them all in
:data:`adapt.data.benchmark.BENCHMARKS`. A new dataset is a new module here plus its import below."""

from . import (  # noqa: F401  (imported for their registrations)
    blobs,
    cifar10_c,
    digits,
    domainnet,
    imagenet_c,
    moons,
    office31,
    officehome,
    optdigits,
    optdigits_c,
    optdigits_shifts,
    rotated_optdigits,
    visda2017,
)
