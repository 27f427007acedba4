"""One run at a time in a run folder (``reedit/runlock.py``): a second run started on a folder in
use refuses at once, naming the holder, and the first is untouched; a run killed by a signal
leaves no lock; a file system without ``flock`` falls back to the holder's pid."""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TEST_CONF, reedit_env

from reedit.runlock import LOCK_FILE, FolderInUse, RunLock

SLOW = ["dataset=demo", "refiner=none", "judge=none", "executor=identity", "progress=false"]
SLOW += ["model=slow_identity", "model.delay=0.4", f"hydra.searchpath=[{TEST_CONF}]"]


def _reedit(folder: Path, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "reedit", *args, f"run_dir={folder}"],
        env=reedit_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _wait_for(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_second_run_on_a_folder_in_use_refuses_and_the_first_finishes(tmp_path):
    folder = tmp_path / "run"
    first = _reedit(folder, *SLOW)
    try:
        edits = folder / "records" / "edit.jsonl"
        _wait_for(lambda: edits.is_file() and edits.read_text().count("\n") >= 1, 300, "edits")
        second = _reedit(folder, *SLOW)
        _, err = second.communicate(timeout=300)
        assert second.returncode == 2, err[-2000:]
        assert f"run_dir {folder} is in use by another run (pid {first.pid} on " in err
        assert "Traceback" not in err
        _, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err[-2000:]
    lines = (folder / "records" / "edit.jsonl").read_text().splitlines()
    assert len(lines) == 10 and len({json.loads(x)["key"] for x in lines}) == 10
    assert not (folder / LOCK_FILE).exists()  # a run that ended leaves nothing
    assert not list((folder / ".hydra").glob("resume-*"))  # the refused start left no trace


def test_a_refused_resume_leaves_no_trace_while_the_holder_records(tmp_path):
    """Was (a flake of the test above): the refused start kept its ``.hydra/resume-*`` when the
    run holding the folder appended a record while it started (it took the growth for its own
    work, and a failed start that recorded something keeps its settings)."""
    import os
    import threading

    folder = tmp_path / "run"
    done = _reedit(folder, *SLOW[:5], "limit=2")
    _, err = done.communicate(timeout=300)
    assert done.returncode == 0, err[-2000:]
    stop = threading.Event()

    def holder_records() -> None:
        with open(folder / "records" / "edit.rank7.jsonl", "a", encoding="utf-8") as f:
            while not stop.wait(0.02):
                f.write('{"key": "another", "status": "ok"}\n')
                f.flush()

    writer = threading.Thread(target=holder_records)
    with RunLock(folder):
        writer.start()
        try:
            refused = _reedit(folder)
            _, err = refused.communicate(timeout=300)
        finally:
            stop.set()
            writer.join(timeout=30)
    assert refused.returncode == 2, err[-2000:]
    assert f"is in use by another run (pid {os.getpid()} on " in err, err[-2000:]
    assert not list((folder / ".hydra").glob("resume-*"))


def test_a_killed_run_leaves_no_lock_and_its_rerun_completes(tmp_path):
    folder = tmp_path / "run"
    first = _reedit(folder, *SLOW)
    edits = folder / "records" / "edit.jsonl"
    try:
        _wait_for(lambda: edits.is_file() and edits.read_text().count("\n") >= 1, 300, "edits")
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    holder = json.loads((folder / LOCK_FILE).read_text())
    assert holder["pid"] == first.pid  # the file stays, the kernel's lock went with the process
    rerun = _reedit(folder, f"hydra.searchpath=[{TEST_CONF}]")  # (hydra.* is not saved)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-2000:]
    assert len({json.loads(x)["key"] for x in edits.read_text().splitlines()}) == 10


def test_the_lock_is_the_holders_alone_in_one_process_too(tmp_path):
    with RunLock(tmp_path) as lock:
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == lock.holder()["pid"]
        with pytest.raises(FolderInUse, match=r"is in use by another run \(pid \d+ on "):
            RunLock(tmp_path).acquire()
    with RunLock(tmp_path):  # released: free again
        pass


def test_without_flock_a_dead_holder_is_taken_over_and_a_live_one_refuses(tmp_path, monkeypatch):
    import fcntl

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    import socket

    host = socket.gethostname()
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": int(dead.stdout), "host": host}))
    with RunLock(tmp_path):  # its holder is gone: taken over
        pass
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": sleeper.pid, "host": host}))
        with pytest.raises(FolderInUse, match=rf"pid {sleeper.pid} on {host}"):
            RunLock(tmp_path).acquire()
        (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "another-node"}))
        with pytest.raises(FolderInUse, match=r"pid 1 on another-node"):
            RunLock(tmp_path).acquire()  # another host's holder cannot be checked: trusted
    finally:
        sleeper.kill()
        sleeper.wait(timeout=30)
