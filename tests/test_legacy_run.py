"""A run folder written before the stage-driver restructuring resumes without redoing finished
work, and what it does redo comes out the same.

``tests/data/legacy_run`` holds the records of ``+experiment=demo model=identity limit=1`` made
by commit 0761860 (the last main before the restructuring) and the digest of that run (record
values, image hashes, metrics); ``tests/data/README.md`` says how they were made.
"""

from __future__ import annotations

import json
import logging
import shutil

from conftest import TESTS
from digest import assert_same, digest, thumbnail

from reedit.run import run

LEGACY = TESTS / "data" / "legacy_run"
ORIGIN = "/tmp/legacy/legacy_run"  # where the legacy run was written (its records' paths)
CONFIG = ("+experiment=demo", "model=identity", "limit=1", "progress=false")
STAGES = ("edit", "analyze", "refine", "judge")


def legacy_folder(tmp_path, stages=STAGES):
    run_dir = tmp_path / "legacy"
    (run_dir / "records").mkdir(parents=True)
    for stage in stages:
        shutil.copy(LEGACY / "records" / f"{stage}.jsonl", run_dir / "records")
    return run_dir


def loaded(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("loading ")]


def test_a_finished_legacy_run_resumes_with_nothing_to_do(compose, tmp_path, caplog):
    run_dir = legacy_folder(tmp_path)
    before = {s: (run_dir / "records" / f"{s}.jsonl").read_bytes() for s in STAGES}
    with caplog.at_level(logging.INFO):
        run(compose(*CONFIG), run_dir=run_dir)
    assert loaded(caplog) == []  # no model was needed
    assert {s: (run_dir / "records" / f"{s}.jsonl").read_bytes() for s in STAGES} == before
    expected = json.loads((LEGACY / "digest.json").read_text())
    got = digest(run_dir, roots=(ORIGIN,))
    assert got["records"] == expected["records"]
    assert got["metrics"] == expected["metrics"]


def test_a_half_finished_legacy_run_redoes_only_what_is_missing(compose, tmp_path, caplog):
    """Edits and critiques were made; the refinements and judgements were not."""
    from reedit.cli import _package_file
    from reedit.data.re_edit import ReEditDataset
    from reedit.records import write_image_atomic

    expected = json.loads((LEGACY / "digest.json").read_text())
    run_dir = legacy_folder(tmp_path, stages=("edit", "analyze"))
    demo = ReEditDataset(path=_package_file("data/demo/re_edit_demo.json"), repo_id="", filename="")
    for s in demo.load(limit=1).samples:  # what the identity editor wrote: the decoded sources
        path = run_dir / "images" / s.category / s.id / "primary.png"
        write_image_atomic(s.image, path)
        # the same picture (the bytes depend on the PNG encoder: zlib then, ISA-L now)
        assert thumbnail(path) == expected["thumbnails"][str(path.relative_to(run_dir))]
    with caplog.at_level(logging.INFO):
        run(compose(*CONFIG), run_dir=run_dir)
    # neither the editor nor the refiner: the executor and the judge's backend only
    assert loaded(caplog) == ["loading editor Flux2Editor", "loading VLM TransformersVLM"]
    assert_same(digest(run_dir, roots=(ORIGIN,)), expected, run_dir)
