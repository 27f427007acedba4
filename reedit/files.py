"""Atomic file writes: a reader never sees a half-written file."""

from __future__ import annotations

import errno
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)

NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})  # the disk (or the user's quota) is full
_TMP = ".tmp-"  # a temporary name: ".<name>.tmp-<pid>-<thread>"


def write_bytes_atomic(data: bytes, path: Path) -> None:
    """Write to a temporary name in the same folder, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{_TMP}{os.getpid()}-{threading.get_ident()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno is not None and exc.filename is None:  # a failed write() names no file
            exc.filename = str(path)
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_temporaries(folder: Path) -> int:
    """Remove what writes killed before their rename left in ``folder`` (call it only while no
    other process writes there: under the run's lock, before its ranks start)."""
    stale = [p for p in Path(folder).rglob(f".*{_TMP}*") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        log.info("removed %d temporary files left by an interrupted write", len(stale))
    return len(stale)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or a quota) is full: the run's problem, not a sample's."""
    return isinstance(exc, OSError) and exc.errno in NO_SPACE
