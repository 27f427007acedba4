"""Record fingerprints: the same settings give the fingerprints the previous version wrote (or
ones it recognises), and a setting marked as runtime never changes them.

``tests/data/legacy_fingerprints.json``: every unit kind's fingerprint for a dozen configs (all
editors, VLM backends and roles, rounds, seed modes), computed by commit 0761860.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from conftest import TESTS

from reedit.config import spec_of
from reedit.run import MODEL_GROUPS
from reedit.seeds import SeedRule
from reedit.stages.resume import ResumePlan, unit_fingerprints

CASES = json.loads((TESTS / "data" / "legacy_fingerprints.json").read_text())


@dataclass
class Parts:  # what the fingerprints are made of (set-up's checks of paths are not the point)
    specs: dict
    seeds: SeedRule
    mode: str
    rounds: int


def fingerprints(cfg, legacy=False):
    specs = {g: spec_of(cfg[g], g) for g in MODEL_GROUPS}
    s = Parts(specs, SeedRule(cfg.seed, cfg.seed_mode), cfg.refine.mode, cfg.refine.rounds)
    return unit_fingerprints(s.specs, s.seeds, s.mode, s.rounds, legacy=legacy), s


def produced(kind: str, s) -> bool:
    """Whether a run of this configuration has units (or images) of this kind."""
    if s.specs["refiner"] is None and ("/r" in kind or kind.startswith(("refined", "judge/ref"))):
        return False
    return not (kind.startswith("judge/") and s.specs["judge"] is None)


@pytest.mark.parametrize("case", CASES, ids=lambda c: " ".join(c["overrides"]))
def test_old_fingerprints_are_recognised(compose, tmp_path, case):
    cfg = compose(*case["overrides"])
    current, s = fingerprints(cfg)
    legacy, _ = fingerprints(cfg, legacy=True)
    kinds = [k for k in case["fingerprints"] if produced(k, s)]
    assert kinds and set(kinds) <= set(current)
    assert {k: legacy[k] for k in kinds} == {k: case["fingerprints"][k] for k in kinds}
    plan = ResumePlan(tmp_path, current, legacy)
    for kind in kinds:
        if "/" in kind:  # a unit kind (edit, analyze/r1, ...; not an image label)
            assert plan.accepts(kind, None, case["fingerprints"][kind])
            assert plan.accepts(kind, None, current[kind])


def test_unchanged_marks_keep_the_same_fingerprints(compose):
    """Where the settings' runtime marks name what the old list named, nothing changes."""
    for case in CASES:
        if "judge=scripted" in case["overrides"] or case["overrides"] == ["dataset=demo"]:
            current, s = fingerprints(compose(*case["overrides"]))
            kinds = [k for k in case["fingerprints"] if produced(k, s)]
            assert {k: current[k] for k in kinds} == {k: case["fingerprints"][k] for k in kinds}


@pytest.mark.parametrize(
    "overrides,runtime",
    [
        (["judge=qwen3_vl_vllm", "gpus=[0,1]"], "judge.vlm.tensor_parallel_size=2"),
        (["judge=qwen3_vl_vllm"], "judge.vlm.gpu_memory_utilization=0.5"),
        (["judge=openai"], "judge.vlm.max_retries=1"),
        (["refiner=openai", "executor=identity"], "refiner.vlm.timeout=5"),
        (["judge=qwen3_vl"], "judge.vlm.device_map=auto"),
        (["model=flux2_dev"], "model.use_cpu_offload=false"),
        (["judge=qwen3_vl"], "judge.cache_dir=/elsewhere"),
    ],
)
def test_runtime_settings_do_not_change_fingerprints(compose, overrides, runtime):
    before, _ = fingerprints(compose(*overrides))
    after, _ = fingerprints(compose(*overrides, runtime))
    assert after == before


@pytest.mark.parametrize(
    "overrides,output",
    [
        (["judge=qwen3_vl_vllm"], "judge.vlm.temperature=0.5"),
        (["judge=openai"], "judge.vlm.model=gpt-4.1"),
        (["model=flux2_dev"], "model.guidance_scale=3.0"),
        (["judge=qwen3_vl"], "judge.parse=strict"),
    ],
)
def test_output_settings_change_fingerprints(compose, overrides, output):
    before, _ = fingerprints(compose(*overrides))
    after, _ = fingerprints(compose(*overrides, output))
    assert after != before
