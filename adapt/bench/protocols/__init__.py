"""The harness's adaptation protocols: how a run is prepared, fitted and scored.

Each protocol is a :class:`Protocol` registered in :data:`PROTOCOLS`, one file here: ``uda``
(unsupervised domain adaptation, the default), ``source-free`` (adapt a cached source model with the
target alone) and ``online`` (test-time adaptation over one pass of the target stream). A protocol
says where its methods come from, which suite keys it takes, how a run's settings resolve (what the
run id hashes) and how one run goes (:meth:`Protocol.run`). A new one is a new file that subclasses
:class:`Protocol` and decorates it with :func:`register_protocol`.
"""

from ...registry import import_submodules
from .base import (
    BASELINE,
    DEFAULT_PROTOCOL,
    MODEL_KEYS,
    PROTOCOLS,
    REFUSED,
    MethodNameError,
    Protocol,
    RunContext,
    fit_and_score,
    json_like,
    register_protocol,
)
from .online import stream
from .source_models import cache_folder, cached_source_model, source_model, source_model_key

import_submodules(__name__, __path__)  # a protocol in a new file registers itself

__all__ = [
    "BASELINE",
    "DEFAULT_PROTOCOL",
    "MODEL_KEYS",
    "PROTOCOLS",
    "REFUSED",
    "MethodNameError",
    "Protocol",
    "RunContext",
    "cache_folder",
    "cached_source_model",
    "fit_and_score",
    "json_like",
    "register_protocol",
    "source_model",
    "source_model_key",
    "stream",
]
