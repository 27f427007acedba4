"""The judge cache: a second run that shares edits computes no judgement; changes invalidate."""

from __future__ import annotations

import pytest
from conftest import REAL_MODELS
from doubles import ScriptedVLM
from PIL import Image

from reedit.judge import Judge, JudgeRequest
from reedit.records import RecordStore
from reedit.run import run
from reedit.testing import locate


def test_second_run_sharing_edits_computes_no_judgement(compose, tmp_path):
    """On the real trained tiny judge: every judgement of a second run is replayed."""
    real = (*REAL_MODELS, "executor=identity", "report.bootstrap=50")
    cache = ("judge.cache=true", f"judge.cache_dir={tmp_path / 'cache'}")
    first = run(compose(*real, *cache), run_dir=tmp_path / "a")
    a = RecordStore(tmp_path / "a", "judge").load()
    assert len(a) == 60 and not any(r["cached"] for r in a.values())
    # one cache entry per distinct judgement: the identity executor's refined images are the
    # primary ones, so each sample's three refined judgements are the primary ones again
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 30
    second = run(compose(*real, *cache), run_dir=tmp_path / "b")
    b = RecordStore(tmp_path / "b", "judge").load()
    assert len(b) == 60 and all(r["cached"] for r in b.values())
    assert {k: (r["status"], r["raw"], r.get("value")) for k, r in b.items()} == {
        k: (r["status"], r["raw"], r.get("value")) for k, r in a.items()
    }
    assert second["scores"] == first["scores"]


def test_changing_the_prompt_or_judge_invalidates(tmp_path):
    src, edited = tmp_path / "s.png", tmp_path / "e.png"
    Image.new("RGB", (8, 8), "red").save(src)
    Image.new("RGB", (8, 8), "blue").save(edited)
    req = JudgeRequest("k", "if", "physical", str(src), str(edited), "make it blue")
    cache = str(tmp_path / "cache")

    def judge(vlm, **kw):
        return Judge(
            vlm=vlm,
            metrics=["if"],
            retries=1,
            max_new_tokens=16,
            batch_size=4,
            cache_dir=cache,
            **kw,
        )

    first = ScriptedVLM()
    (a,) = judge(first).judge([req])
    assert a.status == "ok" and not a.cached and len(first.calls) == 1
    again = ScriptedVLM()
    (b,) = judge(again).judge([req])
    assert b.cached and again.calls == [] and b.value == a.value
    other = ScriptedVLM()
    judge(other, threshold=0.3).judge([req])  # another judge configuration
    assert len(other.calls) == 1
    changed = ScriptedVLM()
    Image.new("RGB", (8, 8), "green").save(edited)  # another edited image
    judge(changed).judge([req])
    assert len(changed.calls) == 1
    text = ScriptedVLM()
    req.instruction = "make it green"
    judge(text).judge([req])
    assert len(text.calls) == 1


def test_backend_errors_are_not_cached_but_unscored_replies_are(tmp_path):
    src = tmp_path / "s.png"
    Image.new("RGB", (8, 8), "red").save(src)
    cache = str(tmp_path / "cache")
    req = JudgeRequest("k", "dimension", "physical", str(src), str(src), "Tip it over")

    def judge(vlm, retries):
        kw = dict(metrics=["dimension"], max_new_tokens=16, batch_size=4, cache_dir=cache)
        return Judge(vlm=vlm, retries=retries, **kw)

    failing = ScriptedVLM(fail=["Tip"])
    (a,) = judge(failing, 0).judge([req])
    assert a.status == "error"
    healthy = ScriptedVLM(fail=["Tip"])
    healthy.fail = []  # same fingerprint, the backend works again
    (b,) = judge(healthy, 0).judge([req])
    assert b.status == "ok" and not b.cached and len(healthy.calls) == 1
    garbage = ScriptedVLM(garbage=["Tip"])
    (c,) = judge(garbage, 1).judge([req])
    assert c.status == "unscored"
    replay = ScriptedVLM(garbage=["Tip"])
    (d,) = judge(replay, 1).judge([req])
    assert d.cached and d.status == "unscored" and d.raw == c.raw and replay.calls == []


@pytest.mark.parametrize("n", [1])
def test_cache_hit_returns_quickly_enough_to_count(tmp_path, n):
    """Functional check of the hit path (its timing is measured in benchmarks/)."""
    from reedit.judge_cache import JudgeCache

    c = JudgeCache(tmp_path)
    c.put("ab" + "0" * 14, {"raw": ["x"]})
    assert c.get("ab" + "0" * 14) == {"raw": ["x"]} and c.hits == n
    assert c.get("cd" + "0" * 14) is None and c.misses == 1


def test_a_model_retrained_in_place_misses_the_cache(tmp_path):
    import os

    from reedit.models.vlm.transformers_vl import TransformersVLM

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"v1")
    vlm = TransformersVLM(
        path=str(folder), dtype="float32", temperature=0.0, top_p=1.0, locate=locate
    )
    before = vlm.fingerprint()
    (folder / "model.safetensors").write_bytes(b"v2 weights")
    os.utime(folder / "model.safetensors", ns=(1, 1))
    assert vlm.fingerprint() != before
    hub = TransformersVLM(
        path="Qwen/Qwen3-VL-8B-Instruct", dtype="float32", temperature=0.0, top_p=1.0, locate=locate
    )
    assert hub.fingerprint()["weights"] is None


def test_a_cache_that_cannot_be_written_is_warned_about_once_and_the_answers_kept(tmp_path, caplog):
    """Was: the OSError of the cache's write (a full or read-only cache disk) lost the answers
    of the whole backend call, though the cache is only a shortcut."""
    src = tmp_path / "s.png"
    Image.new("RGB", (8, 8), "red").save(src)
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache's folders should be")
    reqs = [JudgeRequest(f"k{i}", "if", "physical", str(src), str(src), f"do {i}") for i in (1, 2)]
    vlm = ScriptedVLM()
    judge = Judge(vlm=vlm, metrics=["if"], max_new_tokens=16, batch_size=4, cache_dir=str(blocked))
    with caplog.at_level("WARNING"):
        answers = judge.judge(reqs)
    assert [a.status for a in answers] == ["ok", "ok"] and len(vlm.calls) == 2
    warnings = [r.getMessage() for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(warnings) == 1 and str(blocked) in warnings[0], warnings
    assert judge.cache.unwritable.startswith("NotADirectoryError")
