"""Tests for reedit.parsing: critique tags and judge JSON replies."""

from __future__ import annotations

import re

import pytest

from reedit.parsing import (
    Critique,
    JudgeValue,
    ParseError,
    extract_json_object,
    parse_critique,
    parse_judge_reply,
)

# --------------------------------------------------------------------------------------------
# Critiques
# --------------------------------------------------------------------------------------------

GOOD_CRITIQUES = [
    pytest.param(
        "<CoT>The shadow falls the wrong way.</CoT>\n"
        "<Re_edit>Move the shadow to the left.</Re_edit>",
        ["The shadow falls the wrong way."],
        ["Move the shadow to the left."],
        id="basic",
    ),
    pytest.param(
        "<cot>a</cot><COT>b</COT><re_edit>x</re_edit><RE_EDIT>y</RE_EDIT><Re_Edit>z</rE_eDiT>",
        ["a", "b"],
        ["x", "y", "z"],
        id="mixed-case-tags",
    ),
    pytest.param(
        "<CoT>\n  line one\n  line two\n</CoT>\n<Re_edit>\n  Add rain.\n</Re_edit>\n",
        ["line one\n  line two"],
        ["Add rain."],
        id="multi-line-contents",
    ),
    pytest.param(
        "<CoT>first\r\nsecond</CoT>\r\n<Re_edit>Fix it.\r\n</Re_edit>\r\n",
        ["first\nsecond"],
        ["Fix it."],
        id="crlf",
    ),
    pytest.param(
        "Here is my analysis:\n<CoT>Lighting is off.</CoT>\n<Re_edit>Dim the lamp.</Re_edit>",
        ["Lighting is off."],
        ["Dim the lamp."],
        id="preamble",
    ),
    pytest.param(
        "<CoT>a</CoT> some chatter <Re_edit>b</Re_edit> trailing words",
        ["a"],
        ["b"],
        id="text-between-and-after",
    ),
    pytest.param(
        "<Re_edit>Improve the image quality.</Re_edit>",
        [],
        ["Improve the image quality."],
        id="no-cot",
    ),
    pytest.param(
        "<Re_edit>one</Re_edit>\n<CoT>late reasoning</CoT>\n<Re_edit>two</Re_edit>",
        ["late reasoning"],
        ["one", "two"],
        id="interleaved-order-kept",
    ),
    pytest.param(
        "<CoT>  padded  </CoT><Re_edit>\t\tpadded too \n</Re_edit>",
        ["padded"],
        ["padded too"],
        id="items-stripped",
    ),
    pytest.param(
        "<CoT>uses <b>bold</b> and a < b > c</CoT><Re_edit>keep <cotton> as text</Re_edit>",
        ["uses <b>bold</b> and a < b > c"],
        ["keep <cotton> as text"],
        id="other-angle-brackets-are-text",
    ),
    pytest.param(
        "<CoT >spaced</CoT ><Re_edit >ok</Re_edit >",
        ["spaced"],
        ["ok"],
        id="whitespace-before-gt",
    ),
]


@pytest.mark.parametrize(("text", "cot", "re_edit"), GOOD_CRITIQUES)
def test_parse_critique_ok(text: str, cot: list[str], re_edit: list[str]) -> None:
    assert parse_critique(text) == Critique(cot=cot, re_edit=re_edit)


BAD_CRITIQUES = [
    pytest.param("", "empty critique text", id="empty"),
    pytest.param("  \n\t\r\n ", "empty critique text", id="whitespace-only"),
    pytest.param("The image looks fine.", "no <Re_edit> tag", id="no-tags"),
    pytest.param("<CoT>only reasoning</CoT>", "no <Re_edit> tag", id="only-cot"),
    pytest.param("<CoT>a</CoT><Re_edit>   </Re_edit>", "empty <Re_edit> item", id="empty-re-edit"),
    pytest.param("<Re_edit></Re_edit>", "empty <Re_edit> item", id="empty-re-edit-tight"),
    pytest.param("<CoT>\n</CoT><Re_edit>x</Re_edit>", "empty <CoT> item", id="empty-cot"),
    pytest.param("<CoT>a</CoT><Re_edit>x", "unclosed <Re_edit> tag", id="unclosed-re-edit"),
    pytest.param(
        "<CoT>a\n<Re_edit>x</Re_edit>", "nested <Re_edit> tag inside <CoT>", id="unclosed-cot"
    ),
    pytest.param(
        "<Re_edit>x</Re_edit>\n<CoT>trailing", "unclosed <CoT> tag (line 2)", id="unclosed-last"
    ),
    pytest.param(
        "a</CoT><Re_edit>x</Re_edit>", "closing </CoT> tag without opening <CoT>", id="stray-close"
    ),
    pytest.param(
        "<Re_edit>x</Re_edit></Re_edit>",
        "closing </Re_edit> tag without opening <Re_edit>",
        id="double-close",
    ),
    pytest.param(
        "<CoT>a</Re_edit>",
        "closing </Re_edit> tag without opening <Re_edit>",
        id="mismatched-close",
    ),
    pytest.param(
        "<CoT>outer <CoT>inner</CoT></CoT><Re_edit>x</Re_edit>",
        "nested <CoT> tag inside <CoT>",
        id="nested-same",
    ),
    pytest.param(
        "<Re_edit>do <CoT>why</CoT> this</Re_edit>",
        "nested <CoT> tag inside <Re_edit>",
        id="nested-other",
    ),
    pytest.param(
        "<CoT id=1>a</CoT><Re_edit>x</Re_edit>", "'<CoT id=1>' has attributes", id="attributes"
    ),
    pytest.param(
        '<CoT>a</CoT><Re_edit class="x">b</Re_edit>',
        "'<Re_edit class=\"x\">' has attributes",
        id="attributes-re-edit",
    ),
    pytest.param("<CoT>a</CoT><Re_edit/>", "'<Re_edit/>' has attributes", id="self-closing"),
    pytest.param(
        "<CoT>a</CoT x><Re_edit>b</Re_edit>", "'</CoT x>' has attributes", id="close-attr"
    ),
]


@pytest.mark.parametrize(("text", "fragment"), BAD_CRITIQUES)
def test_parse_critique_errors(text: str, fragment: str) -> None:
    with pytest.raises(ParseError, match=re.escape(fragment)):
        parse_critique(text)


def test_parse_critique_error_reports_line() -> None:
    with pytest.raises(ParseError, match=r"empty <Re_edit> item \(line 3\)"):
        parse_critique("<CoT>a</CoT>\n\n<Re_edit> \n</Re_edit>")


def test_parse_error_is_value_error() -> None:
    with pytest.raises(ValueError, match="empty critique text"):
        parse_critique("")


def test_critique_is_frozen() -> None:
    c = parse_critique("<Re_edit>x</Re_edit>")
    with pytest.raises(AttributeError, match="cannot assign to field 're_edit'"):
        c.re_edit = []  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# extract_json_object
# --------------------------------------------------------------------------------------------

GOOD_JSON = [
    pytest.param('{"score": "yes"}', {"score": "yes"}, id="plain"),
    pytest.param('  \n{"score": 7, "reason": "ok"}\n ', {"score": 7, "reason": "ok"}, id="padded"),
    pytest.param(
        'Sure! Here is my answer: {"score": "no", "reasoning": "bad"} Hope this helps.',
        {"score": "no", "reasoning": "bad"},
        id="inside-prose",
    ),
    pytest.param(
        'Draft {"score": 1} final {"score": 8, "reason": "much better"}',
        {"score": 8, "reason": "much better"},
        id="two-objects-longest-wins",
    ),
    pytest.param(
        '{"score": 8, "reason": "longer one first"} then {"score": 1}',
        {"score": 8, "reason": "longer one first"},
        id="two-objects-longest-first",
    ),
    pytest.param(
        '{"score": [7, 9], "detail": {"success": 7, "overediting": 9}}',
        {"score": [7, 9], "detail": {"success": 7, "overediting": 9}},
        id="nested-object",
    ),
    pytest.param(
        '```json\n{"score": "yes", "reasoning": "fine"}\n```',
        {"score": "yes", "reasoning": "fine"},
        id="fenced-json",
    ),
    pytest.param(
        '{"score": "no", "reasoning": "the {left} brace } is text"}',
        {"score": "no", "reasoning": "the {left} brace } is text"},
        id="braces-in-strings",
    ),
    pytest.param(
        'broken {"score": 3, "reason": "x",} but fine {"score": 4}',
        {"score": 4},
        id="skips-invalid-candidate",
    ),
    pytest.param("{}", {}, id="empty-object"),
]


@pytest.mark.parametrize(("text", "expected"), GOOD_JSON)
def test_extract_json_object_ok(text: str, expected: dict) -> None:
    assert extract_json_object(text) == expected


BAD_JSON = [
    pytest.param("", id="empty"),
    pytest.param("I think the answer is yes.", id="no-braces"),
    pytest.param("{'score': 'yes', 'reasoning': 'fine'}", id="single-quotes"),
    pytest.param('{"score": 7, "reason": "ok",}', id="trailing-comma"),
    pytest.param('{"score": "yes", "reasoning": "the edit is cor', id="truncated"),
    pytest.param('{"score": [7, 9], "reasoning": "trunc', id="truncated-after-list"),
    pytest.param("[1, 2]", id="top-level-list"),
    pytest.param('```json\n["yes"]\n```', id="fenced-non-object"),
    pytest.param('{"score": NaN}', id="nan-constant"),
    pytest.param("{score: 5}", id="unquoted-key"),
]


@pytest.mark.parametrize("text", BAD_JSON)
def test_extract_json_object_errors(text: str) -> None:
    with pytest.raises(ParseError, match="no JSON object found"):
        extract_json_object(text)


# --------------------------------------------------------------------------------------------
# parse_judge_reply
# --------------------------------------------------------------------------------------------

GOOD_REPLIES = [
    # verdicts
    pytest.param('{"score": "yes", "reasoning": "ok"}', "verdict", "yes", "ok", id="v-yes"),
    pytest.param('{"score": "no", "reasoning": "bad"}', "verdict", "no", "bad", id="v-no"),
    pytest.param('{"score": "Yes"}', "verdict", "yes", "", id="v-capital"),
    pytest.param('{"score": "Yes."}', "verdict", "yes", "", id="v-trailing-dot"),
    pytest.param('{"score": "NO!"}', "verdict", "no", "", id="v-trailing-bang"),
    pytest.param('{"score": "**YES**"}', "verdict", "yes", "", id="v-bold"),
    pytest.param('{"score": "_no_"}', "verdict", "no", "", id="v-underscore"),
    pytest.param('{"score": "**Yes.**"}', "verdict", "yes", "", id="v-bold-dot-inside"),
    pytest.param('{"score": "**No**."}', "verdict", "no", "", id="v-bold-dot-outside"),
    pytest.param('{"score": " no "}', "verdict", "no", "", id="v-spaces"),
    pytest.param(
        'Verdict:\n```json\n{"score": "no", "reason": "shadow"}\n```',
        "verdict",
        "no",
        "shadow",
        id="v-fenced-reason-key",
    ),
    # scores
    pytest.param('{"score": 7, "reason": "minor issue"}', "score", 7.0, "minor issue", id="s-int"),
    pytest.param('{"score": 7.5}', "score", 7.5, "", id="s-float"),
    pytest.param('{"score": "7"}', "score", 7.0, "", id="s-numeric-string"),
    pytest.param('{"score": " 7.5 "}', "score", 7.5, "", id="s-numeric-string-float"),
    pytest.param('{"score": 10}', "score", 10.0, "", id="s-upper-bound"),
    pytest.param('{"score": 0}', "score", 0.0, "", id="s-lower-bound"),
    pytest.param('{"score": "10.0"}', "score", 10.0, "", id="s-upper-bound-string"),
    pytest.param('{"score": 0.0}', "score", 0.0, "", id="s-zero-float"),
    # pairs
    pytest.param('{"score": [7, 9], "reasoning": "r"}', "pair", (7.0, 9.0), "r", id="p-ints"),
    pytest.param('{"score": [0, 10]}', "pair", (0.0, 10.0), "", id="p-bounds"),
    pytest.param('{"score": ["8", 6.5]}', "pair", (8.0, 6.5), "", id="p-string-number"),
    pytest.param(
        'The scores: {"score": [3.5, "4"], "reasoning": "  over-edited  "} done',
        "pair",
        (3.5, 4.0),
        "over-edited",
        id="p-in-prose",
    ),
]


@pytest.mark.parametrize(("text", "kind", "value", "reasoning"), GOOD_REPLIES)
def test_parse_judge_reply_ok(text: str, kind: str, value: object, reasoning: str) -> None:
    # well-formed replies parse the same in strict (reference) and lenient mode, unflagged
    assert parse_judge_reply(text, kind, strict=True) == parse_judge_reply(text, kind)
    result = parse_judge_reply(text, kind)
    assert result.flags == ()
    assert result == JudgeValue(value=value, reasoning=reasoning)  # type: ignore[arg-type]
    assert type(result.value) is type(value)


BAD_REPLIES = [
    pytest.param("no json here", "verdict", "no JSON object found (no '{'", id="no-json"),
    pytest.param(
        "{'score': 'yes'}",
        "verdict",
        "no JSON object found: Expecting property name enclosed in double quotes at character 1",
        id="single-quotes",
    ),
    pytest.param(
        '{"score": 5,}',
        "score",
        "at character 12; it has a trailing comma before '}' or ']' (judge.parse=lenient",
        id="trailing-comma",
    ),
    pytest.param(
        '{"score": [5, 6], "reasoning": "cut o',
        "pair",
        "no JSON object found: Unterminated string",
        id="trunc",
    ),
    pytest.param('{"reasoning": "forgot"}', "verdict", "'score' missing", id="missing-score"),
    pytest.param('{"Score": 5}', "score", "'score' missing", id="score-key-case"),
    pytest.param(
        '{"score": "maybe"}', "verdict", "verdict 'maybe' is neither yes nor no", id="maybe"
    ),
    pytest.param(
        '{"score": "yes, mostly"}',
        "verdict",
        "verdict 'yes, mostly' is neither yes nor no",
        id="yes-mostly",
    ),
    pytest.param('{"score": "y"}', "verdict", "neither yes nor no", id="y"),
    pytest.param('{"score": "yes.."}', "verdict", "neither yes nor no", id="double-dot"),
    pytest.param('{"score": ""}', "verdict", "neither yes nor no", id="empty-string"),
    pytest.param('{"score": true}', "verdict", "verdict True is not a string", id="true"),
    pytest.param('{"score": 1}', "verdict", "verdict 1 is not a string", id="int-verdict"),
    pytest.param('{"score": 10.5}', "score", "score 10.5 outside 0..10", id="above-10"),
    pytest.param('{"score": -1}', "score", "score -1 outside 0..10", id="negative"),
    pytest.param('{"score": 12}', "score", "score 12 outside 0..10", id="twelve"),
    pytest.param('{"score": "11"}', "score", "score 11 outside 0..10", id="string-out-of-range"),
    pytest.param('{"score": true}', "score", "score True is not a number", id="bool-score"),
    pytest.param('{"score": "seven"}', "score", "score 'seven' is not a number", id="word"),
    pytest.param('{"score": "7/10"}', "score", "score '7/10' is not a number", id="fraction"),
    pytest.param('{"score": "nan"}', "score", "score 'nan' is not a number", id="nan-string"),
    pytest.param('{"score": null}', "score", "score None is not a number", id="null"),
    pytest.param('{"score": [7]}', "score", "score [7] is not a number", id="list-as-score"),
    pytest.param('{"score": [7, 8, 9]}', "pair", "expected 2 scores, got 3", id="pair-three"),
    pytest.param('{"score": [7]}', "pair", "expected 2 scores, got 1", id="pair-one"),
    pytest.param('{"score": []}', "pair", "expected 2 scores, got 0", id="pair-empty"),
    pytest.param('{"score": 7}', "pair", "expected a list of 2 scores, got 7", id="pair-scalar"),
    pytest.param(
        '{"score": [7, "high"]}', "pair", "second score 'high' is not a number", id="pair-word"
    ),
    pytest.param('{"score": [11, 5]}', "pair", "first score 11 outside 0..10", id="pair-range"),
    pytest.param('{"score": [5, -0.5]}', "pair", "second score -0.5 outside 0..10", id="pair-neg"),
    pytest.param(
        '{"score": [true, 5]}', "pair", "first score True is not a number", id="pair-bool"
    ),
]


@pytest.mark.parametrize(("text", "kind", "fragment"), BAD_REPLIES)
def test_parse_judge_reply_errors(text: str, kind: str, fragment: str) -> None:
    with pytest.raises(ParseError, match=re.escape(fragment)):
        parse_judge_reply(text, kind, strict=True)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param('"reasoning": "A", "reason": "B"', "A", id="reasoning-wins"),
        pytest.param('"reason": "B"', "B", id="reason-fallback"),
        pytest.param('"reasoning": null, "reason": "B"', "B", id="null-reasoning-skipped"),
        pytest.param('"reasoning": 42', "42", id="non-string-str"),
        pytest.param('"reasoning": "  spaced\\n"', "spaced", id="stripped"),
        pytest.param('"explanation": "ignored"', "", id="absent"),
    ],
)
def test_reasoning_keys(obj: str, expected: str) -> None:
    result = parse_judge_reply('{"score": 5, ' + obj + "}", "score")
    assert result.reasoning == expected
    assert result.value == 5.0


def test_unknown_kind_is_value_error_not_parse_error() -> None:
    with pytest.raises(ValueError, match="unknown judge reply kind 'dimension'") as exc_info:
        parse_judge_reply('{"score": "yes"}', "dimension")
    assert not isinstance(exc_info.value, ParseError)


def test_extract_json_object_deep_nesting_is_parse_error() -> None:
    # Without care, json raises RecursionError (not a ValueError) on very deep nesting.
    with pytest.raises(ParseError, match="no JSON object found"):
        extract_json_object('{"a": [' * 3000)
