"""Reading any image Pillow reads as an upright RGB square: the data stage and `classify` share it."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Alpha is flattened onto white: transparent product shots and logos are drawn on white.
BACKGROUND = (255, 255, 255)


class UnreadableImage(Exception):
    """A file that cannot be used as an image; the message is the reason shown in reports."""


@dataclass(frozen=True)
class Loaded:
    image: Image.Image  # RGB, square, `size` pixels a side
    mode: str  # the original mode (L, P, RGBA, CMYK, I;16, ...)
    width: int  # original size, after EXIF rotation
    height: int
    rotated: bool  # an EXIF orientation tag was applied
    converted: bool  # the original was not plain RGB


def load_rgb(path: str | Path, size: int) -> Loaded:
    """Open `path`, turn it upright and RGB, resize its shorter side to `size` and centre-crop.

    Raises UnreadableImage with the reason when the file is empty, truncated or not an image.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise UnreadableImage("empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                mode, (width, height) = img.mode, img.size
                orientation = _orientation(img)
                # JPEG decoders can skip detail we are about to throw away: huge photos load fast.
                img.draft("RGB", (size, size))
                img.load()
                rgb = to_rgb(ImageOps.exif_transpose(img))
    except UnreadableImage:
        raise
    except UnidentifiedImageError:
        raise UnreadableImage("not an image Pillow can read") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise UnreadableImage(f"too many pixels to decode safely ({e})") from None
    except OSError as e:
        reason = str(e) or type(e).__name__
        if "truncated" in reason.lower() or "premature end" in reason.lower():
            reason = f"truncated image data ({reason})"
        raise UnreadableImage(reason) from None
    except (ValueError, SyntaxError) as e:  # Pillow's parsers raise these on some corrupt files
        raise UnreadableImage(f"corrupt image ({e})") from None
    if orientation in (5, 6, 7, 8):  # a quarter turn: the upright image is the other way round
        width, height = height, width
    return Loaded(fit_square(rgb, size), mode, width, height, orientation not in (None, 1),
                  converted=mode != "RGB")


def fit_square(img: Image.Image, size: int) -> Image.Image:
    """Centre square of the shorter side, resized to `size` by bilinear sampling without
    antialiasing: what tf.image.resize does, and how these ImageNet weights saw their images.

    (The pretrained classifier scores higher on images resized this way than on antialiased
    bilinear or bicubic resizes.) An image
    over twice the target is first box-reduced by an integer factor, so that huge photos do not
    alias.
    """
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) / 2, (h - side) / 2
    factor = int(side // (2 * size))
    if factor >= 2:
        img = img.reduce(factor)
        side, left, top = side / factor, left / factor, top / factor
    scale = side / size
    return img.transform((size, size), Image.Transform.AFFINE, (scale, 0, left, 0, scale, top),
                         resample=Image.Resampling.BILINEAR)


def _orientation(img: Image.Image) -> int | None:
    try:
        return img.getexif().get(0x0112)
    except Exception:  # a broken EXIF block does not make the image unusable
        return None


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode to RGB: alpha composited on white, 16/32-bit greys scaled to 8 bits."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        top = a.max() if a.size and a.max() > 255 else 255.0
        img = Image.fromarray(np.clip(a / top * 255.0, 0, 255).astype(np.uint8), mode="L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return img.convert("RGB")


def to_array(images: list[Image.Image]) -> np.ndarray:
    """A batch of same-size RGB images as a uint8 array (n, h, w, 3)."""
    return np.stack([np.asarray(im, dtype=np.uint8) for im in images])
