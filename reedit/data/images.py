"""Image decoding and normalisation to 8-bit RGB.

RE-Edit source images arrive as base64 PNG (or anything else PIL can read). Every image handed
to an editor or a judge goes through :func:`to_rgb`, so that all models see the same pixels:

* the EXIF orientation is applied first (the size is the oriented size);
* anything with transparency (``RGBA``, ``LA``, ``PA``, premultiplied ``RGBa``/``La``, ``P``/``L``/
  ``RGB`` with a ``transparency`` entry) is alpha-composited onto **white**;
* 16-bit grayscale (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``) is scaled by its full range,
  ``v8 = round(v16 / 257)`` (65535 -> 255, 257 -> 1);
* 32-bit integer ``I`` is treated as 16-bit data (the usual case: PIL used to open 16-bit PNGs as
  ``I``): clipped to ``0..65535`` and then divided by 257 like ``I;16``;
* float ``F`` is clipped to ``0..1`` and scaled by 255 when its maximum is ``<= 1``, otherwise it
  is clipped to ``0..255`` (NaN counts as 0);
* every other mode (``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ...) uses PIL's own
  conversion to ``RGB``.
"""

from __future__ import annotations

import io
import struct
import threading
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["check_image_bytes", "decode_image_bytes", "to_rgb"]

_WHITE = 255
_STRAIGHT_ALPHA_MODES = {"RGBA": 3, "LA": 1}  # mode -> number of colour bands
_PREMULTIPLIED_ALPHA_MODES = {"RGBa": 3, "La": 1}
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N"}
# Modes whose ``transparency`` info entry (a colour key / palette alpha) is honoured.
_COLOUR_KEY_MODES = {"P", "L", "RGB"}


def _exif_oriented(img: Image.Image) -> Image.Image:
    """Return a copy of ``img`` with its EXIF orientation applied.

    A malformed EXIF block must not make an otherwise readable image unusable, so errors from
    parsing it (including ``struct.error``) fall back to the unrotated image.
    """
    try:
        oriented = ImageOps.exif_transpose(img)
    except (ValueError, TypeError, KeyError, OSError, SyntaxError, struct.error):
        return img.copy()
    return oriented if oriented is not None else img.copy()


def _bands(img: Image.Image, n_bands: int) -> np.ndarray:
    """Pixel data of an 8-bit-per-band image as an ``(h, w, n_bands)`` uint32 array."""
    w, h = img.size
    data = np.frombuffer(img.tobytes(), dtype=np.uint8)
    return data.reshape(h, w, n_bands).astype(np.uint32)


def _rgb_from_array(rgb: np.ndarray) -> Image.Image:
    """Build an RGB image from an ``(h, w, 3)`` or ``(h, w)`` array of 0..255 values."""
    arr = np.ascontiguousarray(rgb.astype(np.uint8))
    if arr.ndim == 2:
        return Image.fromarray(arr).convert("RGB")
    return Image.fromarray(arr)


def _expand_gray(colour: np.ndarray) -> np.ndarray:
    """Repeat a single grey band to three bands."""
    return np.repeat(colour, 3, axis=2) if colour.shape[2] == 1 else colour


def _composite_straight(img: Image.Image, n_colour: int) -> Image.Image:
    """Composite an 8-bit straight-alpha image onto white (rounded to nearest)."""
    px = _bands(img, n_colour + 1)
    colour, alpha = px[..., :n_colour], px[..., n_colour:]
    out = (colour * alpha + _WHITE * (255 - alpha) + 127) // 255
    return _rgb_from_array(_expand_gray(out))


def _composite_premultiplied(img: Image.Image, n_colour: int) -> Image.Image:
    """Composite an 8-bit premultiplied-alpha image onto white: ``c + (255 - a)``."""
    px = _bands(img, n_colour + 1).astype(np.int64)
    colour, alpha = px[..., :n_colour], px[..., n_colour:]
    out = np.clip(colour + (255 - alpha), 0, 255)
    return _rgb_from_array(_expand_gray(out))


def _scale_integer(img: Image.Image) -> Image.Image:
    """16-bit (or 32-bit ``I``) grayscale -> 8 bits: clip to 0..65535, then round(v / 257)."""
    src = img if img.mode == "I" else img.convert("I")
    arr = np.asarray(src, dtype=np.int64)
    arr = np.clip(arr, 0, 65535)
    return _rgb_from_array((arr + 128) // 257)


def _scale_float(img: Image.Image) -> Image.Image:
    """Float grayscale -> 8 bits: 0..1 data is scaled by 255, anything else clipped to 0..255."""
    arr = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=255.0, neginf=0.0)
    if arr.size == 0 or float(arr.max()) <= 1.0:
        arr = np.clip(arr, 0.0, 1.0) * 255.0
    else:
        arr = np.clip(arr, 0.0, 255.0)
    return _rgb_from_array(np.floor(arr + 0.5))


def _has_transparency(img: Image.Image) -> bool:
    """Whether a P/L/RGB image carries transparency (``tRNS`` entry or an RGBA palette)."""
    has = getattr(img, "has_transparency_data", None)  # Pillow >= 10.1
    if has is not None:
        return bool(has)
    palette_mode = getattr(img.palette, "mode", None) if img.mode == "P" else None
    return "transparency" in img.info or palette_mode == "RGBA"


def to_rgb(img: Image.Image) -> Image.Image:
    """Return ``img`` oriented by its EXIF tag and converted to 8-bit ``RGB``.

    Transparent pixels are composited onto white; 16/32-bit integer and float grayscale are
    rescaled as described in the module docstring. The input image is not modified.
    """
    img = _exif_oriented(img)
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return img
    if mode in _COLOUR_KEY_MODES or mode == "PA":
        if mode == "PA" or _has_transparency(img):
            return _composite_straight(img.convert("RGBA"), 3)
        return img.convert("RGB")
    if mode in _STRAIGHT_ALPHA_MODES:
        return _composite_straight(img, _STRAIGHT_ALPHA_MODES[mode])
    if mode in _PREMULTIPLIED_ALPHA_MODES:
        return _composite_premultiplied(img, _PREMULTIPLIED_ALPHA_MODES[mode])
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        return _scale_integer(img)
    if mode == "F":
        return _scale_float(img)
    try:
        return img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ValueError(f"cannot convert image of mode {mode!r} to RGB: {exc}") from exc


def _as_bytes(data: bytes) -> bytes:
    """Accept ``bytes``-like input; reject anything else and empty input."""
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    if not data:
        raise ValueError("cannot decode image: empty data")
    return data


# Exceptions PIL raises for unreadable, truncated or corrupt data.
_DECODE_ERRORS = (
    UnidentifiedImageError,
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    Image.DecompressionBombError,
)


MAX_PIXELS = 100_000_000  # the default limit of a decoded image (dataset.max_pixels at load)
_PIL_LIMIT = threading.Lock()


def _check_size(img: Image.Image, max_pixels: int | None, key: str) -> None:
    w, h = img.size
    if w <= 0 or h <= 0:
        raise ValueError(f"cannot decode image: zero-size image ({w}x{h})")
    if max_pixels and w * h > max_pixels:
        raise ValueError(
            f"cannot decode image: {w * h} pixels ({w}x{h}), more than {key}={max_pixels} "
            "(a decompression bomb, or raise the limit)"
        )


def _open(data: bytes) -> Image.Image:
    """``Image.open`` with PIL's own pixel limit lifted (reedit checks its own, configurable one
    from the header, before anything is decoded)."""
    with _PIL_LIMIT:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(io.BytesIO(data))
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def decode_image_bytes(
    data: bytes, max_pixels: int | None = MAX_PIXELS, key: str = "max_pixels"
) -> Image.Image:
    """Decode encoded image bytes (PNG, JPEG, WEBP, ...) into a fully loaded RGB image.

    Raises ``ValueError("cannot decode image: ...")`` for data PIL cannot read, truncated data,
    zero-size images and images of more than ``max_pixels`` pixels (``key`` names the limit).
    """
    data = _as_bytes(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _open(data) as img:
                _check_size(img, max_pixels, key)
                img.load()
                return to_rgb(img)
    except ValueError as exc:
        if str(exc).startswith("cannot decode image"):
            raise
        raise ValueError(f"cannot decode image: {exc}") from exc
    except _DECODE_ERRORS as exc:
        raise ValueError(f"cannot decode image: {type(exc).__name__}: {exc}") from exc


def check_image_bytes(
    data: bytes, max_pixels: int | None = MAX_PIXELS, key: str = "max_pixels"
) -> None:
    """Cheap validity check (header + ``verify()``, no full decode) for load time.

    Raises ``ValueError("cannot decode image: ...")`` when the data is not a readable image, is
    visibly corrupt or truncated (for formats whose ``verify()`` checks it, e.g. PNG), or has a
    zero size, or more than ``max_pixels`` pixels (``key`` names the limit).
    """
    data = _as_bytes(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _open(data) as img:
                _check_size(img, max_pixels, key)
                img.verify()
    except ValueError as exc:
        if str(exc).startswith("cannot decode image"):
            raise
        raise ValueError(f"cannot decode image: {exc}") from exc
    except _DECODE_ERRORS as exc:
        raise ValueError(f"cannot decode image: {type(exc).__name__}: {exc}") from exc
