"""Record fingerprints of the same settings are those the previous version wrote.

``tests/data/legacy_fingerprints.json``: every unit kind's fingerprint for a dozen configs (all
editors, VLM backends and roles, rounds, seed modes), computed by commit 0761860.
"""

from __future__ import annotations

import json

import pytest
from conftest import TESTS

from reedit.stages.common import stage_fingerprints

CASES = json.loads((TESTS / "data" / "legacy_fingerprints.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=lambda c: " ".join(c["overrides"]))
def test_the_same_settings_give_the_same_fingerprints(compose, case):
    cfg = compose(*case["overrides"])
    assert stage_fingerprints(cfg, int(cfg.refine.rounds)) == case["fingerprints"]
