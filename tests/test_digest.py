"""The stored-expectation comparison: exact bytes, or (for noise whose rounding depends on the
CPU's kernels) a thumbnail within tolerance — never an image of another seed or model."""

from __future__ import annotations

import numpy as np
import pytest
from digest import assert_same, digest, thumbnail
from PIL import Image


def noise(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (64, 48, 3), dtype=np.uint8)


def run_with(tmp_path, pixels: np.ndarray, name: str = "run"):
    run = tmp_path / name
    (run / "images" / "physical" / "s0").mkdir(parents=True)
    (run / "records").mkdir()
    Image.fromarray(pixels).save(run / "images" / "physical" / "s0" / "primary.png")
    return run


def rounded_elsewhere(pixels: np.ndarray) -> np.ndarray:
    """What another CPU's kernels make of the same computation: 0.15 % of the values off by 1."""
    out = pixels.astype(int)
    flat = out.reshape(-1)
    idx = np.random.default_rng(1).choice(flat.size, max(1, flat.size * 15 // 10000), replace=False)
    flat[idx] = np.clip(flat[idx] + 1, 0, 255)
    return out.astype(np.uint8)


def stored(run) -> dict:
    expected = digest(run)
    expected["thumbnails"] = {
        "images/physical/s0/primary.png": thumbnail(
            run / "images" / "physical" / "s0" / "primary.png"
        )
    }
    return expected


def test_other_rounding_of_the_same_noise_is_the_same_image(tmp_path):
    expected = stored(run_with(tmp_path, noise(0), "here"))
    there = run_with(tmp_path, rounded_elsewhere(noise(0)), "there")
    assert digest(there)["images"] != expected["images"]  # the bytes differ
    assert_same(digest(there), expected, there)


def test_noise_of_another_seed_is_another_image(tmp_path):
    expected = stored(run_with(tmp_path, noise(0), "here"))
    other = run_with(tmp_path, noise(1), "other")
    with pytest.raises(AssertionError, match="images images/physical/s0/primary.png"):
        assert_same(digest(other), expected, other)


def test_without_the_run_folder_or_thumbnails_bytes_must_match(tmp_path):
    expected = stored(run_with(tmp_path, noise(0), "here"))
    there = run_with(tmp_path, rounded_elsewhere(noise(0)), "there")
    differs = "differs from the stored expectation: images images/physical/s0/primary.png"
    with pytest.raises(AssertionError, match=differs):
        assert_same(digest(there), expected)  # no run folder: no thumbnails to compare
    del expected["thumbnails"]
    with pytest.raises(AssertionError, match=differs):
        assert_same(digest(there), expected, there)


def _judged(answers: dict[str, str], analyze: str = "tagged") -> dict:
    judge = {
        k: {"key": k, "sample_id": k.split("/")[0], "status": "ok", "raw": v, "value": v}
        for k, v in answers.items()
    }
    stages = {"judge": {"ok": len(answers)}, "edit": {"ok": 20}}
    metrics = {"scores": dict(answers), "stages": stages, "judge_health": {}, "bad_records": []}
    records = {"judge": judge, "analyze": {"s0/r1": {"key": "s0/r1", "raw": analyze}}}
    return {"records": records, "images": {}, "metrics": metrics}


def test_a_judgement_near_a_tie_may_answer_otherwise_on_another_cpu_but_not_many():
    stored = _judged({f"s{i}/primary/if": "8" for i in range(40)})
    one = _judged({**{f"s{i}/primary/if": "8" for i in range(40)}, "s3/primary/if": "7"})
    assert_same(one, stored)  # 1 of 40: another CPU's rounding near a tie
    three = _judged(
        {**{f"s{i}/primary/if": "8" for i in range(40)}}
        | {f"s{i}/primary/if": "1" for i in range(3)}
    )
    with pytest.raises(AssertionError, match="judge: 3 of 40 answers differ"):
        assert_same(three, stored)  # 3 of 40 > 5 %: not rounding
    with pytest.raises(AssertionError, match="analyze s0/r1"):
        assert_same(_judged({f"s{i}/primary/if": "8" for i in range(40)}, "other"), stored)
    missing = _judged({f"s{i}/primary/if": "8" for i in range(39)})
    with pytest.raises(AssertionError, match="judge s39/primary/if"):
        assert_same(missing, stored)  # a judgement that is not there is never excused
    other_edits = _judged({**{f"s{i}/primary/if": "8" for i in range(40)}, "s3/primary/if": "7"})
    other_edits["metrics"]["stages"]["edit"]["ok"] = 19
    with pytest.raises(AssertionError, match="metrics"):
        assert_same(other_edits, stored)  # what does not follow the answers must still agree
