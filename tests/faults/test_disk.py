"""The disk filling up while a run writes an image or a record: a clear error naming the file,
no corrupt record, and a plain rerun (after space is freed) completes the run to the result of
an uninterrupted one. Two runs started on one folder at once: the second refuses."""

from __future__ import annotations

import json
import subprocess

import pytest
from digest import digest, stage_files

from faults.harness import (
    DEMO,
    IN_A_WORKER,
    assert_kept,
    in_process,
    log_tail,
    record_lines,
)
from faults.injector import Fault

pytestmark = pytest.mark.faults

FULL = [
    Fault("rename", 3, pattern="0000*", action="enospc"),  # a source put in the run folder
    Fault("rename", 4, pattern="primary.png", action="enospc"),  # an edit's image
    Fault("rename", 2, pattern="refined.png", action="enospc"),  # a re-edit's image
    Fault("record", 15, "torn", action="enospc"),  # an analysis record, half written
    Fault("record", 40, action="enospc"),  # a judgement record
    Fault("stage_log", 2, action="enospc"),
    Fault("rename", 1, pattern="metrics.json", action="enospc"),
]


@pytest.mark.parametrize("fault", FULL, ids=str)
def test_a_full_disk_stops_the_run_clearly_and_a_rerun_completes_it(
    runs, uninterrupted, tmp_path, fault
):
    folder = tmp_path / "run"
    code = runs(folder, *DEMO, fault=fault)
    log = log_tail(folder, 20000)
    assert code == 2, log
    assert "No space left on device" in log and "Traceback" not in log, log
    assert f"rerun with run_dir={folder}" in log, log
    for path in stage_files(folder):  # every complete line is a record
        for line in record_lines(folder)[path.name].splitlines():
            assert json.loads(line)["status"] == "ok", line
    before = record_lines(folder)
    assert runs(folder) == 0, log_tail(folder)
    assert digest(folder) == uninterrupted
    assert_kept(before, folder)


def test_a_ranks_full_disk_stops_the_run_clearly_and_a_rerun_completes_it(
    runs, two_ranks, tmp_path
):
    """Rank 1's third record write fails with ENOSPC: the run's error says the disk is full
    (not a bare 'rank 1 failed' with a traceback), and a plain rerun completes the run."""
    folder = tmp_path / "run"
    fault = Fault("record", 3, action="enospc")
    code = runs(folder, *DEMO, "cpu_ranks=2", env=fault.for_rank(1, folder))
    log = log_tail(folder, 20000)
    assert code == 2, log
    assert "rank 1 failed: OSError: the disk is full: writing " in log, log
    assert f"rerun with run_dir={folder}" in log, log
    rank_log = (folder / "ranks" / "rank1.log").read_text(encoding="utf-8")
    assert "the disk is full" in rank_log and "Traceback" not in rank_log, rank_log
    before = record_lines(folder)
    assert runs(folder) == 0, log_tail(folder)
    assert digest(folder) == two_ranks
    assert_kept(before, folder)


WAYS = {"in-process": (), "executor-in-a-worker": (IN_A_WORKER,), "two-ranks": ("cpu_ranks=2",)}


@pytest.mark.parametrize("way", list(WAYS))
def test_a_real_full_file_system_stops_the_run_and_a_rerun_after_growing_it_completes(
    runs, uninterrupted, request, tmp_path, way
):
    """The same on a real 1.2 MB tmpfs (the demo's run folder needs about 2 MB): the kernel's
    own ENOSPC, where the re-edits are written (by the run, by the executor's worker, or by a
    rank, whose log and outcome may not fit either)."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if made.returncode != 0:  # the injected faults above stand for it
        pytest.skip(f"this machine does not let the tests mount a tmpfs: {made.stderr.strip()}")
    try:
        folder = mount / "run"
        assert runs(folder, *DEMO, *WAYS[way]) == 2, log_tail(folder)
        log = log_tail(folder, 20000)
        assert "the disk is full" in log or "a full disk?" in log, log
        for lines in record_lines(folder).values():
            assert all(json.loads(line)["status"] == "ok" for line in lines.splitlines())
        before = record_lines(folder)
        remount = ["mount", "-o", "remount,size=64m", str(mount)]
        subprocess.run(remount, check=True, timeout=30)
        assert runs(folder) == 0, log_tail(folder)
        if way == "two-ranks":
            assert digest(folder) == request.getfixturevalue("two_ranks")
        elif way == "executor-in-a-worker":
            assert in_process(digest(folder)) == uninterrupted
        else:
            assert digest(folder) == uninterrupted
        assert_kept(before, folder)
    finally:
        subprocess.run(["umount", "-l", str(mount)], timeout=30)
