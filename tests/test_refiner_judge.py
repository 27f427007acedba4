"""Refiner and judge logic on the VLM interface (scripted VLM): prompts, parsing, retries."""

from __future__ import annotations

import pytest
from doubles import ScriptedVLM
from PIL import Image

from reedit.judge import Judge, JudgeRequest, criteria
from reedit.prompts import load_prompt
from reedit.refiner import CritiqueRequest, Refiner


@pytest.fixture
def images(tmp_path):
    src, edited = tmp_path / "src.png", tmp_path / "edited.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(src)
    Image.new("RGB", (8, 8), (0, 0, 255)).save(edited)
    return str(src), str(edited)


def refiner(vlm, retries=2):
    return Refiner(vlm=vlm, retries=retries, max_new_tokens=64, batch_size=2)


def judge(vlm, retries=2):
    return Judge(
        vlm=vlm,
        metrics=["dimension", "if", "sc", "pq"],
        retries=retries,
        max_new_tokens=64,
        batch_size=4,
        cache=False,
    )


def test_critique_conversation_has_source_then_edit(images):
    r = refiner(ScriptedVLM())
    conv = r.conversation(CritiqueRequest("k", *images, "Move the lamp"))
    assert conv[0]["role"] == "system"
    user = conv[1]["content"]
    assert [c["path"] for c in user if c["type"] == "image"] == list(images)
    assert user[-1]["type"] == "text" and "Move the lamp" in user[-1]["text"]


def test_critique_retries_then_parses(images):
    vlm = ScriptedVLM(replies=["no tags at all", "<CoT>a</CoT><Re_edit>Fix it</Re_edit>"])
    (ans,) = refiner(vlm).critique([CritiqueRequest("k", *images, "x")])
    assert ans.status == "ok" and ans.attempts == 2
    assert ans.value.re_edit == ["Fix it"] and ans.raw == ["no tags at all", ans.raw[1]]


def test_critique_unparseable_after_retries_is_unscored_with_raw(images):
    vlm = ScriptedVLM(replies=["junk 1", "junk 2", "junk 3"])
    (ans,) = refiner(vlm, retries=2).critique([CritiqueRequest("k", *images, "x")])
    assert ans.status == "unscored" and ans.attempts == 3
    assert ans.raw == ["junk 1", "junk 2", "junk 3"] and ans.error_type == "ParseError"
    assert "Re_edit" in ans.error


def test_backend_failure_is_an_error_not_unscored(images):
    vlm = ScriptedVLM(fail=["Move"])
    (ans,) = refiner(vlm, retries=1).critique([CritiqueRequest("k", *images, "Move it")])
    assert ans.status == "error" and ans.error_type == "RuntimeError" and ans.attempts == 2


def test_judge_prompts_per_metric(images):
    j = judge(ScriptedVLM())
    req = JudgeRequest("k", "dimension", "cultural", *images, "Set the table", "A table", "Japan")
    system = j.conversation(req)[0]["content"][0]["text"]
    assert "cultural" in system and "attire and objects" in system and '"score"' in system
    user = j.conversation(req)[1]["content"][-1]["text"]
    assert "A table" in user and "Set the table" in user and "Task challenge: Japan" in user
    assert criteria("v1", "referential").count("\n") == 4


def test_judge_values_and_retry_per_metric(images):
    # every metric goes to the backend in one call; the retry round re-asks only the failures
    vlm = ScriptedVLM(
        replies=[
            '{"score": "Yes."}',  # round 1: dimension
            '{"score": "high"}',  # round 1: if (unparseable)
            '{"score": ["8", 6]}',  # round 1: sc
            '{"score": [1, 2, 3]}',  # round 1: pq (wrong length)
            '{"score": 7, "reason": "ok"}',  # round 2: if
            '{"score": [9, 9]}',  # round 2: pq
        ],
        batch_size=8,
    )
    reqs = [
        JudgeRequest(f"k{m}", m, "physical", *images, "x") for m in ("dimension", "if", "sc", "pq")
    ]
    dim, if_, sc, pq = judge(vlm).judge(reqs)
    assert dim.value.value == "yes" and dim.attempts == 1
    assert if_.value.value == 7.0 and if_.attempts == 2 and if_.value.reasoning == "ok"
    assert sc.value.value == (8.0, 6.0)
    assert pq.value.value == (9.0, 9.0) and pq.attempts == 2
    assert len(vlm.calls) == 6 and vlm.chunks == [4, 2]  # two backend calls in all


def test_judge_never_turns_a_failure_into_no(images):
    vlm = ScriptedVLM(replies=["maybe", "I think not", "{'score': 'perhaps'}"])
    (ans,) = judge(vlm).judge([JudgeRequest("k", "dimension", "physical", *images, "x")])
    assert ans.status == "unscored" and ans.value is None and len(ans.raw) == 3


def test_unknown_metric_and_prompt_version_fail_at_setup():
    with pytest.raises(ValueError, match=r"metrics: unknown \['aesthetics'\]"):
        Judge(
            vlm=ScriptedVLM(),
            metrics=["dimension", "aesthetics"],
            retries=1,
            max_new_tokens=8,
            batch_size=1,
        )
    with pytest.raises(FileNotFoundError, match="prompt_version 'v9'"):
        Refiner(vlm=ScriptedVLM(), prompt_version="v9", retries=1, max_new_tokens=8, batch_size=1)
    assert "{instruction}" in load_prompt("v1", "critique_user")


def test_lenient_by_default_strict_on_request(images):
    req = [JudgeRequest("k", "if", "physical", *images, "x")]
    (lenient,) = judge(ScriptedVLM(replies=['{"score": 12, "reason": "wow",}'])).judge(req)
    assert lenient.status == "ok" and lenient.value.value == 10.0
    assert lenient.value.flags == ("repaired_json", "clamped")
    strict = Judge(
        vlm=ScriptedVLM(replies=['{"score": 12}'] * 3),
        metrics=["if"],
        max_new_tokens=64,
        batch_size=4,
        cache=False,
        parse="strict",
    )
    (ans,) = strict.judge(req)
    assert ans.status == "unscored" and "outside 0..10" in ans.error
