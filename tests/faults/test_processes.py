"""Faults in the processes beside the run: a model's worker SIGKILLed mid-request, and one rank
of a two-rank run SIGKILLed (each at a counted moment). The run records what was lost, a rerun
completes it, and the result equals an uninterrupted run's."""

from __future__ import annotations

import pytest
from digest import digest

from faults.harness import (
    DEMO,
    IN_A_WORKER,
    KILLED,
    assert_kept,
    in_process,
    log_tail,
    record_lines,
)
from faults.injector import Fault

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("fault", [Fault("worker", 4, "after"), Fault("worker", 9)], ids=str)
def test_a_worker_killed_mid_stage_costs_its_requests_and_a_rerun_completes_the_run(
    runs, uninterrupted, tmp_path, fault
):
    folder = tmp_path / "run"
    code = runs(folder, *DEMO, IN_A_WORKER, fault=fault)
    log = log_tail(folder, 20000)
    assert code != KILLED, log  # the worker was killed, not the run
    assert "restarting the worker (1 of" in log and "killed by signal SIGKILL" in log, log
    refine = record_lines(folder)["refine.jsonl"].splitlines()
    lost = [line for line in refine if '"status": "error"' in line]
    assert len(lost) == 1 and "SIGKILL" in lost[0]  # the one request in flight, named
    assert code == 0, log  # 1 error in 10 re-edits: within max_error_rate=0.1
    before = record_lines(folder)
    assert runs(folder, "retry_errors=true") == 0, log_tail(folder)
    assert in_process(digest(folder)) == uninterrupted  # the worker's images, to the byte
    assert_kept(before, folder)


@pytest.mark.parametrize(
    "rank,fault", [(1, Fault("record", 3, "torn")), (0, Fault("load", 3))], ids=str
)
def test_a_rank_killed_at_a_counted_moment_fails_the_run_and_a_rerun_completes_it(
    runs, two_ranks, tmp_path, rank, fault
):
    folder = tmp_path / "run"
    code = runs(folder, *DEMO, "cpu_ranks=2", env=fault.for_rank(rank, folder))
    log = log_tail(folder, 20000)
    assert code == 2, log
    assert f"rank {rank} ended without finishing (killed" in log, log
    before = record_lines(folder)
    assert runs(folder) == 0, log_tail(folder)
    assert digest(folder) == two_ranks
    assert_kept(before, folder)
