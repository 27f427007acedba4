"""Parsers for model output: EditRefine critiques and VLM-judge JSON replies.

Both parsers are strict and raise :class:`ParseError` with a message that says exactly what was
wrong, so that failures can be recorded as failures (never silently turned into "no" or 5.0).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Critique",
    "JudgeValue",
    "ParseError",
    "extract_json_object",
    "parse_critique",
    "parse_judge_reply",
]

JUDGE_KINDS = ("verdict", "score", "pair")
SCORE_MIN = 0.0
SCORE_MAX = 10.0


class ParseError(ValueError):
    """Model output does not have the expected format; the message says what was wrong."""


# --------------------------------------------------------------------------------------------
# Critique (stage 2)
# --------------------------------------------------------------------------------------------

_CANONICAL_TAG = {"cot": "CoT", "re_edit": "Re_edit"}
# A tag of interest: `<cot>`, `</RE_EDIT>`, ... with anything up to `>` captured so that tags with
# attributes (`<CoT id=1>`) are reported instead of being silently ignored. `\b` keeps `<cotton>`
# and `<re_edits>` out.
_TAG_RE = re.compile(r"<(/?)(cot|re_edit)\b([^>]*)>", re.IGNORECASE)


@dataclass(frozen=True)
class Critique:
    """A parsed critique: reasoning points and re-edit instructions, in order, stripped."""

    cot: list[str]
    re_edit: list[str]


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def parse_critique(text: str) -> Critique:
    """Parse `<CoT>...</CoT>` and `<Re_edit>...</Re_edit>` items from a critique.

    Tag names are case-insensitive; contents may span lines (CRLF is normalised to LF) and are
    stripped. Text outside tags is ignored. Raises ParseError on empty text, a tag with
    attributes, nested / unclosed / unopened tags, an empty item, or no `<Re_edit>` item.
    """
    if not isinstance(text, str):
        raise ParseError(f"critique must be a string, got {type(text).__name__}")
    if not text.strip():
        raise ParseError("empty critique text")
    text = text.replace("\r\n", "\n").replace("\r", "\n")

    items: dict[str, list[str]] = {"cot": [], "re_edit": []}
    open_name: str | None = None  # lower-case name of the currently open tag
    open_end = 0  # index just after the open tag
    open_line = 0
    for m in _TAG_RE.finditer(text):
        closing, name, extra = m.group(1) == "/", m.group(2).lower(), m.group(3)
        canon = _CANONICAL_TAG[name]
        line = _line_of(text, m.start())
        if extra.strip():
            raise ParseError(
                f"tag {m.group(0)!r} has attributes or extra text (line {line}); "
                f"expected a bare <{'/' if closing else ''}{canon}>"
            )
        if not closing:
            if open_name is not None:
                raise ParseError(
                    f"nested <{canon}> tag inside <{_CANONICAL_TAG[open_name]}> (line {line}; "
                    f"the <{_CANONICAL_TAG[open_name]}> opened on line {open_line} is not closed)"
                )
            open_name, open_end, open_line = name, m.end(), line
            continue
        if open_name is None:
            raise ParseError(f"closing </{canon}> tag without opening <{canon}> (line {line})")
        if open_name != name:
            raise ParseError(
                f"closing </{canon}> tag without opening <{canon}> (line {line}; inside "
                f"<{_CANONICAL_TAG[open_name]}> opened on line {open_line})"
            )
        content = text[open_end : m.start()].strip()
        if not content:
            raise ParseError(f"empty <{canon}> item (line {open_line})")
        items[name].append(content)
        open_name = None
    if open_name is not None:
        raise ParseError(f"unclosed <{_CANONICAL_TAG[open_name]}> tag (line {open_line})")
    if not items["re_edit"]:
        raise ParseError("no <Re_edit> tag")
    return Critique(cot=items["cot"], re_edit=items["re_edit"])


# --------------------------------------------------------------------------------------------
# Judge replies (stage 4)
# --------------------------------------------------------------------------------------------

_FENCED_JSON_RE = re.compile(r"```json\s*(.*?)```", re.IGNORECASE | re.DOTALL)
_NUMERIC_STR_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


@dataclass(frozen=True)
class JudgeValue:
    """A parsed judge answer: "yes"/"no", a 0..10 score, or a pair of 0..10 scores."""

    value: str | float | tuple[float, float]
    reasoning: str
    # What lenient parsing had to do: repaired_json, rescaled_0_1, clamped (empty when strict).
    flags: tuple[str, ...] = ()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _loads_object(s: str) -> dict | None:
    """Strict json.loads of `s`; the dict, or None when it is not a JSON object."""
    try:
        obj = _DECODER.decode(s)
    except (ValueError, RecursionError):  # RecursionError: very deep nesting
        return None
    return obj if isinstance(obj, dict) else None


def extract_json_object(text: str) -> dict:
    """Return the JSON object in a judge reply.

    Order: the longest `{...}` substring that parses (strictly) as a JSON object, else the
    contents of a fenced ```json block, else the whole reply. Raises ParseError otherwise.
    """
    if not isinstance(text, str):
        raise ParseError(f"judge reply must be a string, got {type(text).__name__}")
    best: dict | None = None
    best_len = -1
    first_error: str | None = None  # why the first '{' did not start an object
    # raw_decode from each '{' finds the (unique) JSON object starting there, at any nesting
    # depth and with braces inside strings handled; this is exactly the set of `{...}`
    # substrings that parse as objects.
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        try:
            obj, end = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError) as exc:  # RecursionError: very deep nesting
            if first_error is None:
                first_error = getattr(exc, "msg", type(exc).__name__)
                first_error += f" at character {getattr(exc, 'pos', start)}"
            continue
        if isinstance(obj, dict) and end - start > best_len:
            best, best_len = obj, end - start
    if best is not None:
        return best
    for m in _FENCED_JSON_RE.finditer(text):
        obj = _loads_object(m.group(1))
        if obj is not None:
            return obj
    obj = _loads_object(text)
    if obj is not None:
        return obj
    if first_error is None:
        raise ParseError("no JSON object found (no '{' in the reply)")
    hint = ""
    if _TRAILING_COMMA_RE.search(text):
        hint = "; it has a trailing comma before '}' or ']' (judge.parse=lenient repairs that)"
    raise ParseError(f"no JSON object found: {first_error}{hint}")


_TRAILING_COMMA_RE = re.compile(r",\s*([}\]])")


def _close_truncated(s: str) -> str:
    """Close an unterminated string and the brackets left open by a cut-off reply."""
    stack, in_string, escaped = [], False, False
    for ch in s:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    tail = s.rstrip()
    if in_string:
        tail += '"'
    elif tail.endswith(","):
        tail = tail[:-1]
    elif tail.endswith(":"):
        tail += " null"  # a key whose value was cut off
    return tail + "".join(reversed(stack))


def extract_json_lenient(text: str) -> tuple[dict, tuple[str, ...]]:
    """Like :func:`extract_json_object`, then repairs what real models produce: single quotes,
    trailing commas, a reply cut off mid-object. Returns the object and ("repaired_json",) when
    a repair was needed."""
    try:
        return extract_json_object(text), ()
    except ParseError:
        pass
    start = text.find("{") if isinstance(text, str) else -1
    if start < 0:
        raise ParseError("no JSON object found")
    candidate = text[start:]
    fence = candidate.find("```")
    if fence > 0:
        candidate = candidate[:fence]
    variants = [candidate]
    if "'" in candidate and '"' not in candidate:
        variants.append(candidate.replace("'", '"'))
    for v in list(variants):
        variants.append(_TRAILING_COMMA_RE.sub(r"\1", v))
    for v in list(variants):
        variants.append(_TRAILING_COMMA_RE.sub(r"\1", _close_truncated(v)))
    for v in variants:
        try:
            obj, _ = _DECODER.raw_decode(v)
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict):
            return obj, ("repaired_json",)
    raise ParseError("no JSON object found (not even after repairs)")


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


def _number(raw: Any, what: str) -> float:
    if isinstance(raw, bool):
        raise ParseError(f"{what} {raw!r} is not a number")
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str) and _NUMERIC_STR_RE.fullmatch(raw.strip()):
        return float(raw.strip())
    raise ParseError(f"{what} {raw!r} is not a number")


def _lenient_scores(raws: list[Any], whats: list[str], flags: list[str]) -> list[float]:
    """Numbers on 0..10: a 0..1 answer (all <= 1, one fractional) is rescaled, values outside
    the range are clamped; both are flagged."""
    xs = [_number(r, w) for r, w in zip(raws, whats)]
    if all(0 <= x <= 1 for x in xs) and any(not x.is_integer() for x in xs):
        xs = [10 * x for x in xs]
        flags.append("rescaled_0_1")
    if any(not SCORE_MIN <= x <= SCORE_MAX for x in xs):
        xs = [min(SCORE_MAX, max(SCORE_MIN, x)) for x in xs]
        flags.append("clamped")
    return xs


def _as_score(raw: Any, what: str) -> float:
    """A 0..10 number from an int/float or a numeric string; `what` names it in errors."""
    if isinstance(raw, bool):
        raise ParseError(f"{what} {raw!r} is not a number")
    if isinstance(raw, (int, float)):
        x = float(raw)
    elif isinstance(raw, str) and _NUMERIC_STR_RE.fullmatch(raw.strip()):
        x = float(raw.strip())
    else:
        raise ParseError(f"{what} {raw!r} is not a number")
    if not SCORE_MIN <= x <= SCORE_MAX:
        raise ParseError(f"{what} {_fmt(x)} outside 0..10")
    return x


def _normalise_verdict(raw: str) -> str:
    s = raw.strip().lower().strip("*_ \t\n")
    if s[-1:] in (".", "!"):
        s = s[:-1]
    return s.strip("*_ \t\n")


def parse_judge_reply(text: str, kind: str, strict: bool = False) -> JudgeValue:
    """Parse a judge reply of `kind` "verdict" (yes/no), "score" (0..10) or "pair" (2 x 0..10).

    ``strict``: the reference's rules (strict JSON, values inside 0..10). Otherwise (default)
    broken JSON is repaired, 0..1 answers rescaled and out-of-range values clamped, each
    recorded in ``flags``. Reasoning comes from "reasoning", else "reason" ("" when absent).
    """
    if kind not in JUDGE_KINDS:
        raise ValueError(f"unknown judge reply kind {kind!r}; expected one of {JUDGE_KINDS}")
    flags: list[str] = []
    if strict:
        obj = extract_json_object(text)
    else:
        obj, repaired = extract_json_lenient(text)
        flags.extend(repaired)
    if "score" not in obj:
        raise ParseError("'score' missing")
    raw = obj["score"]

    value: str | float | tuple[float, float]
    if kind == "verdict":
        if not isinstance(raw, str):
            raise ParseError(f"verdict {raw!r} is not a string")
        value = _normalise_verdict(raw)
        if value not in ("yes", "no"):
            raise ParseError(f"verdict {raw!r} is neither yes nor no")
    elif kind == "score":
        value = _as_score(raw, "score") if strict else _lenient_scores([raw], ["score"], flags)[0]
    else:
        if not isinstance(raw, list):
            raise ParseError(f"expected a list of 2 scores, got {raw!r}")
        if len(raw) != 2:
            raise ParseError(f"expected 2 scores, got {len(raw)}")
        whats = ["first score", "second score"]
        if strict:
            value = (_as_score(raw[0], whats[0]), _as_score(raw[1], whats[1]))
        else:
            a, b = _lenient_scores(raw, whats, flags)
            value = (a, b)

    reasoning = ""
    for key in ("reasoning", "reason"):
        if obj.get(key) is not None:
            reasoning = str(obj[key]).strip()
            break
    return JudgeValue(value=value, reasoning=reasoning, flags=tuple(flags))
