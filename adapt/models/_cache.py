"""Finding pretrained weights that the libraries' own caches hold, without downloading anything."""

from __future__ import annotations

from pathlib import Path

from .._optional import require
from ..errors import InputError


def cached_weights(hub: tuple[str, list[str], str | None] | None, url_file: Path | None, extra: str) -> Path:
    """The first file found: in the Hugging Face cache (``hub``: repository, candidate file names, revision),
    then at ``url_file`` (a URL's file in a local cache). Nothing found: the places looked in, for the caller's
    error message (an InputError raised by :func:`missing_weights`)."""
    looked: list[str] = []
    if hub is not None:
        repo, files, revision = hub
        huggingface_hub = require("huggingface_hub", extra, "finding cached pretrained weights")
        cache = huggingface_hub.constants.HF_HUB_CACHE
        for filename in files:
            found = huggingface_hub.try_to_load_from_cache(repo, filename, cache_dir=cache, revision=revision)
            if isinstance(found, str):
                return Path(found)
        looked.append(f"the Hugging Face cache {cache} (repository {repo}: {' or '.join(files)})")
    if url_file is not None:
        if url_file.is_file():
            return url_file
        looked.append(str(url_file))
    raise missing_weights(looked)


def missing_weights(looked: list[str]) -> InputError:
    return InputError(f"looked in {'; '.join(looked)}")


def not_on_this_machine(what: str, looked: InputError, fetch: str) -> InputError:
    """The error for weights that are not cached: what, where it looked, and the command that fetches them."""
    return InputError(
        f"{what} are not on this machine: {looked}. On a machine with internet, run {fetch} and copy its Hugging "
        "Face cache (~/.cache/huggingface/hub, or set HF_HOME) here; or pass checkpoint=<file>, or download=True"
    )
