"""Test-time adaptation: adapt a trained classifier with unlabeled target batches as they arrive.

No source data is involved: a test-time method wraps a trained model (one of ours, or any
``nn.Module`` that maps inputs to logits) and adapts it while it predicts::

    tent = TENT(model)               # a copy of the model; the original is left as it was
    for x in stream:
        y_hat = tent.predict(x)      # predicts this batch, then adapts on it

:func:`evaluate_stream` scores a method on a labeled stream, once and in order: the online accuracy
(each batch predicted before the method adapts on it) and the accuracy of the adapted model afterwards.
"""

from ..registry import import_submodules
from .base import TEST_TIME_METHODS, TestTimeAdapter, create, evaluate_batches, evaluate_stream, resolve_hyperparameters

import_submodules(__name__, __path__)  # every method file registers itself

#: class name -> class of every registered test-time method, exported here under its class name
REGISTERED_CLASSES = {cls.__name__: cls for cls in TEST_TIME_METHODS.values()}
globals().update(REGISTERED_CLASSES)

__all__ = [
    "REGISTERED_CLASSES",
    "TEST_TIME_METHODS",
    "TestTimeAdapter",
    "create",
    "evaluate_batches",
    "evaluate_stream",
    "resolve_hyperparameters",
]
__all__ += sorted(REGISTERED_CLASSES)
