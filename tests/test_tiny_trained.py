"""The demo's trained tiny judge and refiner (reedit/tiny_trained.py): the texts never give the
answer away, and the trained models answer in the real formats from what the edited image is."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

import pytest

from reedit.testing import locate
from reedit.testing import trained as tiny_trained
from reedit.testing.trained import ensure_trained
from reedit.testing.vlms import MARKER

DEMO_JSON = Path(tiny_trained.__file__).parent.parent / "data" / "demo" / "re_edit_demo.json"


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> list[tuple[dict, str, str, bool]]:
    """(demo record, source, edited, is_noise): each demo scene kept as its own edit (the identity
    editor), a fresh drawn scene, and two noise images never seen in training."""
    from reedit.data.re_edit import ReEditDataset

    folder = tmp_path_factory.mktemp("cases")
    rng = random.Random(2024)  # training draws from the recipes' seeds, 0-2
    out = []
    for i, sample in enumerate(ReEditDataset(path=str(DEMO_JSON)).load().samples):
        source = sample.source_path
        record = {
            "subset": sample.category,
            "edit_instruction_en": sample.instruction,
            "original_description_en": sample.description,
            "rationale_short_en": sample.rationale,
        }
        made = {}
        for kind, draw in (("scene", tiny_trained.scene), ("noise", tiny_trained.noise)):
            made[kind] = folder / f"{kind}{i}.png"
            draw(rng, (256, 256)).save(made[kind])
        small_noise = folder / f"small_noise{i}.png"
        tiny_trained.noise(rng, (192, 256)).save(small_noise)
        out += [
            (record, str(source), str(source), False),
            (record, str(source), str(made["scene"]), False),
            (record, str(source), str(made["noise"]), True),
            (record, str(source), str(small_noise), True),
        ]
    return out


def _texts(conversation: list[dict]) -> str:
    return json.dumps(
        [[p for p in m["content"] if p.get("type") == "text"] for m in conversation],
        sort_keys=True,
    )


@pytest.mark.parametrize("kind", ["judge", "refiner"])
def test_training_texts_never_tell_the_answer(kind, tmp_path):
    pairs = tiny_trained.pairs(kind, tmp_path, random.Random(0), groups=6)
    targets = defaultdict(set)
    for conversation, target in pairs:
        targets[_texts(conversation)].add(target)
    assert len(targets) >= 6
    # every prompt text is trained with a scene and with a noise edit: only the image decides
    assert all(len(t) == 2 for t in targets.values()), targets
    edited = {c[1]["content"][1]["image"].tobytes() for c, _ in pairs}  # PIL images
    assert len(edited) >= 12 - 2  # each group's own scene and noise (identity edits reuse one)


def test_recipes_are_cached_with_their_signature():
    folder = ensure_trained("qwen3_vl_judge")
    marker = json.loads((folder / MARKER).read_text())
    assert marker["name"] == "qwen3_vl_judge" and marker["base"] == "qwen3_vl"
    assert marker["recipe_version"] == tiny_trained.signature("qwen3_vl_judge")
    assert [f["steps"] for f in marker["finetunes"]] == [
        tiny_trained.WARMUP_STEPS,
        tiny_trained.RECIPES["qwen3_vl_judge"].steps,
    ]
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert ensure_trained("qwen3_vl_judge") == folder  # cached: not trained again
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert tiny_trained.signature("qwen3_vl_judge") != tiny_trained.signature("qwen25_vl_refiner")


def _vlm(name: str):
    from reedit.models.vlm.transformers_vl import TransformersVLM

    return TransformersVLM(
        path=f"tiny:{name}",
        dtype="float32",
        temperature=0.0,
        top_p=1.0,
        batch_size=8,
        locate=locate,
    )


def test_trained_judge_scores_what_the_edit_is(cases):
    from reedit.judge import Judge, JudgeRequest

    judge = Judge(
        vlm=_vlm("qwen3_vl_judge"),
        metrics=["dimension", "if", "sc"],
        retries=0,
        max_new_tokens=32,
        cache=False,
    )
    requests, truth = [], []
    for i, (record, source, edited, is_noise) in enumerate(cases):
        for metric in ("dimension", "if", "sc"):
            requests.append(
                JudgeRequest(
                    f"{i}/{metric}",
                    metric,
                    record["subset"],
                    source,
                    edited,
                    record["edit_instruction_en"],
                    record["original_description_en"],
                    record["rationale_short_en"],
                )
            )
            truth.append(is_noise)
    try:
        answers = judge.judge(requests)
    finally:
        judge.close()
    # every reply is one of the trained answers, exactly (no repair by the lenient parser)
    assert [a.status for a in answers] == ["ok"] * len(answers)
    assert all(not a.value.flags for a in answers)
    good = {"dimension": "yes", "if": 8.0, "sc": (8.0, 9.0)}
    bad = {"dimension": "no", "if": 1.0, "sc": (1.0, 0.0)}
    values = [a.value.value for a in answers]
    allowed = [{good[r.metric], bad[r.metric]} for r in requests]
    assert all(v in ok for v, ok in zip(values, allowed)), values
    said_bad = [v == bad[r.metric] for v, r in zip(values, requests)]
    right = sum(s == t for s, t in zip(said_bad, truth))
    assert right >= 0.9 * len(truth), f"{right}/{len(truth)} right"
    noise = [s for s, t in zip(said_bad, truth) if t]
    assert all(noise), "a noise edit was judged a good picture"


def test_trained_refiner_critiques_what_the_edit_is(cases):
    from reedit.refiner import CritiqueRequest, Refiner

    refiner = Refiner(vlm=_vlm("qwen25_vl_refiner"), retries=0, max_new_tokens=96)
    requests = [
        CritiqueRequest(str(i), source, edited, record["edit_instruction_en"])
        for i, (record, source, edited, _) in enumerate(cases)
    ]
    try:
        answers = refiner.critique(requests)
    finally:
        refiner.close()
    assert [a.status for a in answers] == ["ok"] * len(answers)
    restore, polish = ("Restore the original scene.",), ("Improve the overall image quality.",)
    re_edits = [tuple(a.value.re_edit) for a in answers]
    assert set(re_edits) <= {restore, polish}
    truth = [is_noise for *_, is_noise in cases]
    said_restore = [r == restore for r in re_edits]
    right = sum(s == t for s, t in zip(said_restore, truth))
    assert right >= 0.9 * len(truth), f"{right}/{len(truth)} right"
