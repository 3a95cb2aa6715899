"""Images drawn from scratch: printed digits from font files, and dead-leaves backgrounds.

Two offline domains that are collected differently from scikit-learn's handwritten UCI digits:
digits printed in a family of typefaces (the SynNumbers -> SVHN kind of shift of Ganin et al., JMLR
2016, Sec. 5.2.3, at the UCI digits' size), and cluttered colour backgrounds from the dead-leaves
model of natural images (occluding discs with power-law radii; Lee, Mumford & Huang, "Occlusion
Models for Natural Images", IJCV 2001), for an MNIST-M-style blend whose backgrounds are not the
photos that ``optdigits-m`` uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._optional import require

#: Typefaces of matplotlib's bundled fonts (``matplotlib/mpl-data/fonts/ttf``), by family.
FONT_FAMILIES: dict[str, tuple[str, ...]] = {
    "sans": (
        "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
        "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf", "cmss10.ttf",
    ),
    "serif": (
        "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
        "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "cmr10.ttf", "cmb10.ttf",
    ),
}  # fmt: skip

CANVAS = 32  # drawn at twice the size, then averaged down: smooth strokes at 16 x 16


def font_files(family: str) -> list[Path]:
    """The font files of one family in ``FONT_FAMILIES`` (they come with matplotlib, the ``bench`` extra)."""
    if family not in FONT_FAMILIES:
        raise ValueError(f"unknown font family {family!r}; choose one of {', '.join(FONT_FAMILIES)}")
    matplotlib = require("matplotlib", "bench", "printed digits")
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    files = [folder / name for name in FONT_FAMILIES[family]]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"matplotlib at {folder} lacks the fonts {', '.join(missing)}")
    return files


def _downsample(canvas: np.ndarray, size: int) -> np.ndarray:
    """Average ``canvas`` (..., H, W) down to (..., size, size); H must be a multiple of size."""
    f = canvas.shape[-1] // size
    return canvas.reshape(*canvas.shape[:-2], size, f, size, f).mean(axis=(-3, -1))


def printed_digits(
    family: str, per_class: int, rng: np.random.Generator, size: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Digits 0-9 printed in one font family: (x (N, 1, size, size) in [0, 1], white on black; y).

    Each example draws its typeface, a glyph height of 55-80 % of the image, a stroke of 0-1 canvas
    pixels, a rotation of up to 15 degrees and an offset of up to 2 canvas pixels from the centre.
    """
    from PIL import Image, ImageDraw, ImageFont

    fonts = font_files(family)
    images = np.empty((10 * per_class, 1, size, size), np.float32)
    labels = np.repeat(np.arange(10), per_class)
    for i, digit in enumerate(labels):
        font = ImageFont.truetype(str(fonts[rng.integers(len(fonts))]), int(rng.integers(18, 27)))
        canvas = Image.new("L", (CANVAS, CANVAS), 0)
        centre = (CANVAS / 2 + rng.uniform(-2, 2), CANVAS / 2 + rng.uniform(-2, 2))
        ImageDraw.Draw(canvas).text(centre, str(digit), fill=255, font=font, anchor="mm",
                                    stroke_width=int(rng.integers(0, 2)), stroke_fill=255)  # fmt: skip
        canvas = canvas.rotate(rng.uniform(-15, 15), resample=Image.BILINEAR)
        pixels = np.asarray(canvas, np.float32) / 255.0
        images[i, 0] = _downsample(pixels, size)
    images /= images.max(axis=(1, 2, 3), keepdims=True).clip(min=1e-6)
    return images, labels


def dead_leaves(count: int, rng: np.random.Generator, size: int = 16, leaves: int = 40) -> np.ndarray:
    """``count`` dead-leaves colour images (N, 3, size, size) in [0, 1].

    Lee, Mumford & Huang (IJCV 2001): ``leaves`` discs fall one over the other, each with a random
    colour (a uniform brightness, tinted: the channels of natural images are correlated), a uniform
    random centre and a radius drawn from :math:`p(r) \\propto r^{-3}` (scale invariance, as in
    natural images) between 5 and 32 canvas pixels.
    """
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32)
    r_min, r_max = 5.0, float(CANVAS)
    images = np.empty((count, 3, CANVAS, CANVAS), np.float32)
    for i in range(count):
        # inverse CDF of p(r) ~ r^-3 on [r_min, r_max]
        u = rng.uniform(size=leaves)
        radius = (r_min**-2 - u * (r_min**-2 - r_max**-2)) ** -0.5
        cy, cx = rng.uniform(0, CANVAS, leaves), rng.uniform(0, CANVAS, leaves)
        tint = rng.uniform(0.1, 1.0, size=(leaves, 3))
        colours = (rng.uniform(size=(leaves, 1)) * tint / tint.max(axis=1, keepdims=True)).astype(np.float32)
        inside = (yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2 < radius[:, None, None] ** 2
        # the last disc that covers a pixel is on top; a pixel no disc covers keeps the first colour
        top = np.where(inside.any(axis=0), leaves - 1 - np.argmax(inside[::-1], axis=0), 0)
        images[i] = colours[top].transpose(2, 0, 1)
    return _downsample(images, size)
