"""Thumbnails of a run's images: downscaled JPEGs cached in ``<run>/thumbs/<size>/`` (rebuilt when
the image is newer), shared by the HTML report's gallery and the W&B samples table."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

from reedit.records import write_bytes_atomic


def thumbnail(
    root: Path, rel: str, size: int, cache: Path | None = None
) -> tuple[Path, int, int] | None:
    """The JPEG thumbnail (fitting ``size`` px) of the image at ``rel`` (run-relative, or
    absolute), with its width and height, cached under ``cache`` (default ``root/thumbs``);
    None when the image is missing or unreadable."""
    from PIL import Image

    if not rel:
        return None
    source = Path(rel) if os.path.isabs(rel) else root / rel
    key = re.sub(r"[^\w.-]", "_", rel) if os.path.isabs(rel) else rel
    cached = (cache or root / "thumbs") / str(size) / f"{key}.jpg"
    try:
        if not source.is_file():
            return None
        if cached.is_file() and cached.stat().st_mtime >= source.stat().st_mtime:
            with Image.open(cached) as im:
                return cached, im.width, im.height
        with Image.open(source) as im:
            im.draft("RGB", (size, size))  # a JPEG source decodes at a reduced scale
            small = im.convert("RGB")
            small.thumbnail((size, size))
        buf = io.BytesIO()
        small.save(buf, "JPEG", quality=82, optimize=True)
    except Exception:  # unreadable, truncated, a decompression bomb: no thumbnail
        return None
    try:
        write_bytes_atomic(buf.getvalue(), cached)
    except OSError:
        return None
    return cached, small.width, small.height
