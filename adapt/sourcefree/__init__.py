"""Source-free adaptation: adapt a trained source model with unlabeled target data alone.

``SHOT.from_source(model).fit(target)``: the source model is one of ours or any classifier whose head
is an ``nn.Linear`` (see :func:`split_classifier`); it is copied, and ``fit`` never sees source data
(the engine runs without a source stream). The methods live in :mod:`adapt.methods` (one file each)
and are listed in :data:`SOURCE_FREE_METHODS`; for adapting while predicting on a stream, see
:mod:`adapt.testtime`.
"""

from ..methods import SOURCE_FREE_METHODS, SourceFreeAdapter
from ..methods.source_free import split_classifier

#: class name -> class of every registered source-free method, exported here under its class name
REGISTERED_CLASSES = {cls.__name__: cls for cls in SOURCE_FREE_METHODS.values()}
globals().update(REGISTERED_CLASSES)

__all__ = ["REGISTERED_CLASSES", "SOURCE_FREE_METHODS", "SourceFreeAdapter", "split_classifier"]
__all__ += sorted(REGISTERED_CLASSES)
