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


def temp_path(path: Path) -> Path:
    """The temporary name beside ``path`` that this thread writes before renaming it into
    place: no other process or thread on any machine uses it, and :func:`remove_temporaries`
    removes it once its writer has ended."""
    return path.with_name(f".{path.name}{_TMP}{_HOST}-{os.getpid()}-{threading.get_ident()}")


def write_bytes_atomic(data: bytes, path: Path) -> None:
    """Write to a temporary name in the same folder, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        name_the_file(exc, path)
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def name_the_file(exc: OSError, path: Path) -> None:
    """Give an OSError of a failed ``write()`` (which names no file) the file it was writing."""
    if exc.errno is not None and exc.filename is None:
        exc.filename = str(path)


def remove_temporaries(folder: Path, run_markers: tuple[str, ...] = ()) -> int:
    """Remove the temporary files that writes killed before their rename left in ``folder``:
    those of a process of this host that is no longer alive (a live rank, worker or other
    machine's file is left alone), not inside another run's folder (a subfolder holding one of
    ``run_markers``: its own run cleans it)."""
    folder = Path(folder)
    stale = []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        if here != folder and set(run_markers) & {*filenames, *dirnames}:
            dirnames.clear()
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
    return not pid_alive(int(parts[-2]))


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (another user's included)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or a quota) is full: the run's problem, not a sample's."""
    return isinstance(exc, OSError) and exc.errno in NO_SPACE


def disk_full(exc: OSError) -> str:
    """What a full disk (:func:`is_disk_full`) is called in the run's and a rank's error."""
    return (
        f"the disk is full: writing {exc.filename or 'a file'} failed ({exc.strerror}); "
        "free some space (or move the run folder)"
    )
