"""Reading one image file: a leaf module, so that both the folder datasets (:mod:`adapt.data.images`)
and the decoded-image cache (:mod:`adapt.data.cache`) use it without importing each other."""

from __future__ import annotations

import os

from PIL import Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open an image as RGB; a missing or corrupt file raises an error naming it."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"image file not found: {path}") from exc
    except Exception as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc
