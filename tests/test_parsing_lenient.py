"""Lenient judge parsing (the default): what real models produce, repaired and flagged."""

from __future__ import annotations

import pytest

from reedit.parsing import ParseError, parse_judge_reply


@pytest.mark.parametrize(
    "text,kind,value,flags",
    [
        ("{'score': 'Yes', 'reasoning': 'ok'}", "verdict", "yes", ("repaired_json",)),
        ('{"score": 7, "reason": "fine",}', "score", 7.0, ("repaired_json",)),
        ('{"score": [8, 6], "reasoning": "cut off mid-sen', "pair", (8.0, 6.0), ("repaired_json",)),
        ('{"score": "7",', "score", 7.0, ("repaired_json",)),
        ('{"score": 7, "reason":', "score", 7.0, ("repaired_json",)),
        ('```json\n{"score": 5,}\n```', "score", 5.0, ("repaired_json",)),
        ('Sure! {"score": "**NO**", "reasoning": "x"} Hope this helps.', "verdict", "no", ()),
        ('{"score": 0.7}', "score", 7.0, ("rescaled_0_1",)),
        ('{"score": [0.5, 0.9]}', "pair", (5.0, 9.0), ("rescaled_0_1",)),
        ('{"score": 1}', "score", 1.0, ()),  # an integer 1 is on the 0..10 scale
        ('{"score": [1, 0]}', "pair", (1.0, 0.0), ()),
        ('{"score": 12}', "score", 10.0, ("clamped",)),
        ('{"score": -2}', "score", 0.0, ("clamped",)),
        ('{"score": ["11", 4]}', "pair", (10.0, 4.0), ("clamped",)),
        ("{'score': 12,", "score", 10.0, ("repaired_json", "clamped")),
    ],
)
def test_lenient_repairs_and_flags(text, kind, value, flags):
    result = parse_judge_reply(text, kind)
    assert result.value == value and result.flags == flags
    if flags and "repaired_json" in flags:
        with pytest.raises(ParseError, match="no JSON object found"):
            parse_judge_reply(text, kind, strict=True)


@pytest.mark.parametrize(
    "text,kind,fragment",
    [
        ("no json here", "score", "no JSON object"),
        ('{"score": [8,', "pair", "expected 2 scores, got 1"),
        ('{"score": [1, 2, 3]}', "pair", "expected 2 scores, got 3"),
        ('{"score": "maybe"}', "verdict", "neither yes nor no"),
        ('{"score": "high"}', "score", "not a number"),
        ('{"reasoning": "forgot the score"}', "score", "'score' missing"),
    ],
)
def test_lenient_still_refuses_what_it_cannot_know(text, kind, fragment):
    with pytest.raises(ParseError, match=fragment):
        parse_judge_reply(text, kind)
