"""One run at a time in a run folder: ``<run>/.reedit.lock``, held by the process that runs the
stages (one process's run, or the launching process of a run's ranks; machine 0 of a run over
several machines), for as long as it works in the folder.

The lock is the kernel's (``flock``): it goes with the process, so a run killed by a signal
leaves no lock behind, only the file with the last holder's pid, host and start, which a
refusal quotes. Where a file system has no ``flock`` (some network mounts), the file itself is
the lock: a holder that is no longer alive on this host is stale and taken over, one on another
host is named and trusted to be alive. The file is removed when the run ends, so a finished run
leaves nothing. Standard library only.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from reedit.config import ReeditError
from reedit.files import pid_alive

log = logging.getLogger(__name__)

LOCK_FILE = ".reedit.lock"


class FolderInUse(ReeditError):
    """Another run works in this run folder now."""


class RunLock:
    """``with RunLock(folder):`` the folder is this run's until the block ends."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_FILE
        self.fd: int | None = None

    def holder(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _refuse(self, holder: dict[str, Any]) -> FolderInUse:
        who = (
            f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')}"
            if holder
            else "a process that has not written its name yet"
        )
        return FolderInUse(
            f"run_dir {self.path.parent} is in use by another run ({who}): a run folder takes "
            "one run at a time. Wait for it to end (then rerun to resume), or stop it; a run "
            "that was killed leaves no lock"
        )

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise self._refuse(self.holder()) from None
            except OSError as exc:
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    os.close(fd)
                    raise
                self._without_flock(fd)
                return
            try:  # the file we locked is still the one at the path (not removed meanwhile)
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # a holder that ended removed it: lock the new one
        self.fd = fd
        self._write(fd)

    def _without_flock(self, fd: int) -> None:
        """No kernel lock here: the file's holder, if alive (or elsewhere), keeps the folder."""
        holder = self.holder()
        pid, host = holder.get("pid"), holder.get("host")
        mine = host == socket.gethostname()
        if holder and pid != os.getpid() and (not mine or pid_alive(int(pid))):
            os.close(fd)
            raise self._refuse(holder)
        if holder:
            log.info("run folder lock: %s's holder (pid %s) is gone; taking it", self.path, pid)
        self.fd = fd
        self._write(fd)

    def _write(self, fd: int) -> None:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still held: the next run makes its own
        finally:
            os.close(self.fd)  # releases the kernel lock
            self.fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
