"""A fast PNG encoder for RGB outputs: the Sub row filter (vectorised) and ISA-L's deflate.

Deflate is where the time goes: zlib at level 1 takes 75 ms for a 1024x1024 image of noise (what
random-weight models make; a drawn scene: 6 ms), ISA-L (``isal``, Intel's storage library's
deflate) 4 ms at the same size, and 0.6 ms for the scene at a smaller one. So an output costs a
few milliseconds even where the model keeps every core busy. Where ``isal`` is not installed (a
model's own environment running a worker) zlib does the same job. Both release the GIL, so
images encode in background threads while the model works. Output is a standard 8-bit RGB PNG
any reader decodes.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

_SIGNATURE = b"\x89PNG\r\n\x1a\n"

try:  # once: a model's own environment may not have it (a worker), zlib then
    from isal import isal_zlib as _ISAL
except ImportError:
    _ISAL = None


def _deflate(data: bytes, level: int) -> bytes:
    """A zlib stream of ``data``: level 0 stores, 1-9 compress (ISA-L's levels 1-3 where it is
    installed: 1 for 1, 2 for 2-5, 3 for 6-9)."""
    if level > 0 and _ISAL is not None:
        return _ISAL.compress(data, 1 if level == 1 else 2 if level <= 5 else 3)
    return zlib.compress(data, level)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(image: Any, compress_level: int = 1) -> bytes:
    """Encode a PIL image (converted to RGB) as PNG bytes."""
    import numpy as np

    rgb = image if image.mode == "RGB" else image.convert("RGB")
    pixels = np.asarray(rgb, dtype=np.uint8)
    height, width = pixels.shape[:2]
    flat = pixels.reshape(height, width * 3)
    rows = np.empty((height, width * 3 + 1), dtype=np.uint8)
    rows[:, 0] = 1  # filter type 1 (Sub): each byte minus the byte one pixel to the left
    rows[:, 1:4] = flat[:, :3]
    np.subtract(flat[:, 3:], flat[:, :-3], out=rows[:, 4:])  # uint8 arithmetic wraps mod 256
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", _deflate(rows.tobytes(), compress_level))
        + _chunk(b"IEND", b"")
    )
