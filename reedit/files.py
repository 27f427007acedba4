"""Atomic file writes: a reader never sees a half-written file."""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
from pathlib import Path

log = logging.getLogger(__name__)

NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})  # the disk (or the user's quota) is full
_TMP = ".tmp-"  # a temporary name: ".<name>.tmp-<host>-<pid>-<thread>"
_HOST = socket.gethostname()


def write_bytes_atomic(data: bytes, path: Path) -> None:
    """Write to a temporary name in the same folder, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{_TMP}{_HOST}-{os.getpid()}-{threading.get_ident()}")
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
    """Remove the temporary files that writes killed before their rename left in ``folder``:
    those of a process of this host that is no longer alive (a live rank, worker or other
    machine's file is left alone), not inside another run's folder (one with its own
    ``.reedit.lock`` or ``.hydra``)."""
    folder = Path(folder)
    stale = []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        if here != folder and (".reedit.lock" in filenames or ".hydra" in dirnames):
            dirnames.clear()  # another run's folder: its own run cleans it
            continue
        stale += [here / n for n in filenames if n.startswith(".") and _dead_writer(n)]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        log.info("removed %d temporary files left by an interrupted write", len(stale))
    return len(stale)


def _dead_writer(name: str) -> bool:
    """Whether ``name`` is a temporary of a process of this host that has ended."""
    _, sep, owner = name.rpartition(_TMP)
    parts = owner.rsplit("-", 2)
    if not sep or not all(p.isdigit() for p in parts[-2:]):
        return False
    if len(parts) == 3 and parts[0] != _HOST:  # another machine's: it may be alive
        return False
    try:
        os.kill(int(parts[-2]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or a quota) is full: the run's problem, not a sample's."""
    return isinstance(exc, OSError) and exc.errno in NO_SPACE
