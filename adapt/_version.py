"""The package version and the library's results revision, in a leaf module so that any layer can record
them without importing the package.

``__version__`` follows semantic versioning: the minor version (0.x) moves with every change of defaults
or results, the patch version with fixes that change no number; CHANGELOG.md says what changed.
``RESULTS_REVISION`` is part of every run's identity (``adapt.bench``): it moves only when a change outside
any one method, validator, backbone or benchmark changes results (the engine, the batch streams, the
schedules), so that every earlier run reruns. A change confined to one component bumps that component's
own ``revision`` instead, and only its runs rerun.
"""

__version__ = "0.11.0"
RESULTS_REVISION = 1
