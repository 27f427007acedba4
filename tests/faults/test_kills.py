"""The demo pipeline SIGKILLed at 25 moments spread over every stage, each rerun to completion:
the final records, images and metrics equal an uninterrupted run's, and nothing recorded before
the kill is computed again."""

from __future__ import annotations

import pytest
from digest import digest

from faults.harness import (
    DEMO,
    KILLED,
    assert_kept,
    log_tail,
    record_lines,
)
from faults.injector import Fault

pytestmark = pytest.mark.faults

# The demo's records: 1-10 edit, 11-20 analyze, 21-30 refine, 31-90 judge; its model loads:
# 1 editor, 2 refiner, 3 executor, 4 judge.

KILLS = [
    Fault("rename", 3, pattern="0000*"),  # a source being put in the run folder
    Fault("load", 1),  # the first model loading: nothing recorded yet
    Fault("record", 1),  # the first edit's image on disk, its record not yet
    Fault("record", 4, "torn"),
    Fault("rename", 3, pattern="primary.png"),  # an image written, not yet in place
    Fault("record", 10, "after"),  # the edit stage's last record, before its summary
    Fault("stage_log", 1, "after"),  # the edit stage summarised
    Fault("load", 2),  # the refiner loading
    Fault("record", 12),
    Fault("record", 16, "torn"),
    Fault("record", 20, "after"),
    Fault("load", 3, "after"),  # the executor loaded, nothing re-edited
    Fault("record", 21),
    Fault("rename", 5, pattern="refined.png"),
    Fault("record", 27, "torn"),
    Fault("stage_log", 3),  # every re-edit recorded, the stage not summarised
    Fault("load", 4),  # the judge loading
    Fault("record", 31),
    Fault("record", 55, "torn"),
    Fault("record", 73),
    Fault("record", 90, "after"),  # the last judgement
    Fault("stage_log", 4, "after"),  # every stage done, no report yet
    Fault("rename", 1, pattern="metrics.json"),
    Fault("rename", 1, pattern="report.md", when="after"),
    Fault("rename", 1, pattern="report.html"),
]


@pytest.mark.parametrize("fault", KILLS, ids=str)
def test_a_run_killed_at_any_moment_resumes_to_the_uninterrupted_result(
    runs, uninterrupted, tmp_path, fault
):
    folder = tmp_path / "run"
    assert runs(folder, *DEMO, fault=fault) == KILLED, log_tail(folder)
    before = record_lines(folder)
    assert runs(folder) == 0, log_tail(folder)
    assert digest(folder) == uninterrupted
    assert_kept(before, folder)
