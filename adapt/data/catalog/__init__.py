"""One module per benchmark; importing this package registers them all in
:data:`adapt.data.benchmark.BENCHMARKS`. A new dataset is a new module here: nothing else names it."""

from ...registry import import_submodules

import_submodules(__name__, __path__)
