"""The run's own copies of the sources it uses: ``<run>/sources/<category>/<sample_id><ext>``.

``sources=link`` hard-links each file from the shared source cache (no extra space; a copy where
the two are on different file systems), ``sources=copy`` copies it. Either way the run folder is
self-contained: records and ``samples.csv`` hold run-relative paths, and a report of the run
never reaches outside it.
"""

from __future__ import annotations

import dataclasses
import filecmp
import logging
import os
import shutil
from pathlib import Path

from reedit.data.base import Sample
from reedit.files import temp_path
from reedit.layout import RunLayout

log = logging.getLogger(__name__)

SOURCE_MODES = ("link", "copy")


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b) or filecmp.cmp(a, b, shallow=True)
    except OSError:
        return False


def run_sources(samples: list[Sample], layout: RunLayout, how: str = "link") -> list[Sample]:
    """The samples with ``source_path`` inside the run folder (files put there once)."""
    if how not in SOURCE_MODES:
        raise ValueError(f"sources must be one of {', '.join(SOURCE_MODES)}, got {how!r}")
    out, copied = [], 0
    for s in samples:
        dest = layout.source(s.category, s.id, s.source_path.suffix)
        if dest != s.source_path and not (dest.is_file() and _same(dest, s.source_path)):
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_path(dest)
            try:
                if how != "link":
                    raise OSError("copy requested")
                os.link(s.source_path, tmp)
            except OSError:
                shutil.copy2(s.source_path, tmp)
                copied += how == "link"
            os.replace(tmp, dest)
        out.append(dataclasses.replace(s, source_path=dest))
    if copied:
        log.info("sources: %d copied (the source cache is on another file system)", copied)
    return out
