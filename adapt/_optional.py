"""Optional dependencies: imported when first needed, with an error that says how to install them."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or fail with a message naming ``purpose`` and the extra that installs it.

    >>> require("json", "bench", "reading records").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"{purpose} needs {module.split('.')[0]}, which the core install leaves out: "
            f"pip install 'adapt-uda[{extra}]'"
        ) from exc
