"""Source-free adaptation: adapt a trained source model with unlabeled target data alone.

``SHOT.from_source(model).fit(target)``: the source model is one of ours or any classifier whose head
is an ``nn.Linear`` (see :func:`split_classifier`); it is copied, and ``fit`` never sees source data
(the engine runs without a source stream). The methods live in :mod:`adapt.methods` (one file each)
and are listed in :data:`SOURCE_FREE_METHODS`; for adapting while predicting on a stream, see
:mod:`adapt.testtime`.
"""

from ..methods.aad import AaD
from ..methods.nrc import NRC
from ..methods.registry import SOURCE_FREE_METHODS
from ..methods.shot import SHOT, SHOTIM
from ..methods.source_free import SourceFreeAdapter, split_classifier

__all__ = ["NRC", "SHOT", "SHOTIM", "SOURCE_FREE_METHODS", "AaD", "SourceFreeAdapter", "split_classifier"]
