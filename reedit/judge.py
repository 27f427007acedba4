"""The VLM judge: dimension verdict, IF, SC and PQ prompts, strict parsing, retries.

A reply that cannot be parsed after the retries is ``unscored`` (with every raw reply kept),
never "no" or 5.0; ``compat.upstream_failures`` applies the reference substitutions in the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reedit.data.base import Sample
from reedit.judge_cache import JudgeCache
from reedit.models.vlm.base import VLM, Answer, VLMReply, ask, image, take_reply, text
from reedit.parsing import JudgeValue, parse_judge_reply
from reedit.prompts import load_prompt
from reedit.settings import SettingsBase, check_choice, component, runtime_field, setting

# metric -> reply kind for the parser
METRICS = {"dimension": "verdict", "if": "score", "sc": "pair", "pq": "pair"}


@dataclass
class JudgeRequest:
    key: str
    metric: str
    category: str
    source_path: str
    edited_path: str
    instruction: str
    description: str = ""
    rationale: str = ""

    @classmethod
    def of(cls, key: str, metric: str, sample: Sample, edited: str | Path) -> JudgeRequest:
        """A judgement of ``edited`` as an edit of ``sample``."""
        s = sample
        return cls(
            key,
            metric,
            s.category,
            str(s.source_path),
            str(edited),
            s.instruction,
            s.description,
            s.rationale,
        )


def criteria(version: str, category: str) -> str:
    for line in load_prompt(version, "criteria").splitlines():
        name, _, items = line.partition(":")
        if name.strip() == category:
            return "\n".join(f"- {c.strip()}" for c in items.split("|"))
    raise KeyError(f"prompt_version '{version}' has no criteria for category '{category}'")


class Judge:
    """Asks a VLM backend (``vlm``) every judgement of a stage and parses the replies."""

    @dataclass
    class Settings(SettingsBase):
        vlm: Any = component()  # a VLM backend node (its own _target_)
        prompt_version: str = "v1"
        # Which judgements to make: dimension (yes/no on the sample's own category), if, sc, pq.
        # Not in the unit fingerprint: each judgement's key names its metric.
        metrics: list[str] = setting(factory=lambda: ["dimension", "if", "sc"], output=False)
        # generate: JSON verdict with reasoning (reference) | logprob: P(yes) of the first token
        decision: str = "generate"
        threshold: float = 0.5  # logprob: yes when P(yes) >= threshold
        # Judgements shared by runs, keyed by judge, prompt, images and texts (null: user cache).
        cache: bool = runtime_field(True)
        cache_dir: str | None = runtime_field(None)
        # lenient: repair broken JSON, rescale 0..1 answers, clamp (all flagged) | strict
        parse: str = "lenient"
        retries: int = 2  # re-ask an unparseable reply, then record it unscored
        max_new_tokens: int = 512
        batch_size: int = runtime_field(8)  # requests per judge call

        def __post_init__(self) -> None:
            super().__post_init__()
            unknown = [m for m in self.metrics if m not in METRICS]
            if unknown:
                raise ValueError(f"metrics: unknown {unknown}; choose from {list(METRICS)}")
            check_choice("decision", self.decision, ("generate", "logprob"))
            check_choice("parse", self.parse, ("lenient", "strict"))

    def __init__(
        self,
        settings: Any = None,
        *,
        vlm: VLM | None = None,  # None: it only builds prompts
        gpus: Any = (),
        locate: Any = None,
        **values: Any,
    ) -> None:
        s = settings if settings is not None else self.Settings(**values)
        logprobs = vlm is None or getattr(vlm, "supports_logprobs", False)
        if s.decision == "logprob" and not logprobs:
            raise ValueError(
                f"judge.decision=logprob needs a backend that exposes token probabilities; "
                f"{type(vlm).__name__} does not: use judge.decision=generate"
            )
        self.settings = s
        self.vlm = vlm
        self.prompt_version = s.prompt_version
        self.metrics = list(s.metrics)
        self.decision, self.threshold = s.decision, s.threshold
        self.strict = s.parse == "strict"
        self.retries, self.max_new_tokens = s.retries, s.max_new_tokens
        self.batch_size = s.batch_size
        self.cache = JudgeCache(s.cache_dir) if s.cache else None
        for m in self.metrics:  # fail at set-up on a bad prompt version
            load_prompt(s.prompt_version, f"judge_{m}_system")

    def fingerprint(self) -> dict[str, Any]:
        return {
            "vlm": self.vlm.fingerprint(),
            "prompt_version": self.prompt_version,
            "retries": self.retries,
            "max_new_tokens": self.max_new_tokens,
            "decision": self.decision,
            "threshold": self.threshold,
        }  # the parse mode is not part of it: cached replies are parsed again on a hit

    def load(self) -> None:
        if self.vlm is None:
            raise RuntimeError("judge.vlm is not set: this judge only builds prompts")
        self.vlm.load()

    def close(self) -> None:
        if self.vlm is not None:
            self.vlm.close()

    def record_fields(self, metric: str, answer: Answer) -> dict[str, Any]:
        """What a judgement record holds of the judge's answer (the stage adds the unit's)."""
        out: dict[str, Any] = {
            "attempts": answer.attempts,
            "cached": answer.cached,
            "raw": answer.raw,
            "prompt_version": self.prompt_version,
        }
        if answer.logprobs and self.uses_logprob(metric):
            out["token_probs"] = answer.logprobs
        if answer.status == "ok":
            out |= {
                "value": answer.value.value,
                "reasoning": answer.value.reasoning,
                "flags": list(answer.value.flags),
            }
        return out

    def conversation(self, req: JudgeRequest) -> list[dict[str, Any]]:
        v = self.prompt_version
        fields = {
            "dimension": req.category,
            "criteria": criteria(v, req.category) if req.metric == "dimension" else "",
            "instruction": req.instruction,
            "description": req.description or "(none)",
            "rationale": req.rationale or "(none)",
        }
        name = f"judge_{req.metric}"
        if self.uses_logprob(req.metric):
            name += "_logprob"
        system = load_prompt(v, f"{name}_system").format(**fields)
        user = load_prompt(v, f"{name}_user").format(**fields)
        return [
            {"role": "system", "content": [text(system)]},
            {
                "role": "user",
                "content": [image(req.source_path), image(req.edited_path), text(user)],
            },
        ]

    def uses_logprob(self, metric: str) -> bool:
        """The yes/no verdict is read from token probabilities in ``decision=logprob`` mode."""
        return self.decision == "logprob" and METRICS[metric] == "verdict"

    def _from_probabilities(self, _text: str, reply: Any) -> JudgeValue:
        probs = reply.logprobs or {}
        mass = probs.get("yes", 0.0) + probs.get("no", 0.0)
        if mass <= 0:
            raise ValueError("the backend returned no probability for 'yes' or 'no'")
        p_yes = probs.get("yes", 0.0) / mass
        verdict = "yes" if p_yes >= self.threshold else "no"
        return JudgeValue(verdict, f"P(yes)={p_yes:.4f} (threshold {self.threshold})")

    def parser(self, metric: str) -> Any:
        """``parse(text, reply) -> JudgeValue`` for a metric (raises ValueError)."""
        if self.uses_logprob(metric):
            return self._from_probabilities
        kind, strict = METRICS[metric], self.strict
        return lambda reply_text, _reply: parse_judge_reply(reply_text, kind, strict=strict)

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Answer]:
        """One answer per request; ``value`` is a :class:`reedit.parsing.JudgeValue` when ok.

        Cached judgements are replayed (their raw replies parsed again, so a parser fix takes
        effect); the rest are asked, and what the model answered (ok or unscored) is cached.
        """
        fp = self.fingerprint()
        keys = [self.cache.key(fp, r) if self.cache else None for r in requests]
        out: list[Answer | None] = [None] * len(requests)
        todo = []
        for i, r in enumerate(requests):
            hit = self.cache.get(keys[i]) if keys[i] else None
            if hit is None:
                todo.append(i)
            else:
                out[i] = _replay(hit, self.parser(r.metric))
        # Every metric asked in one backend call (one more per retry round); yes/no read from
        # token probabilities is a second call of one-token answers.
        for logprob in (False, True):
            idx = [i for i in todo if self.uses_logprob(requests[i].metric) == logprob]
            if not idx:
                continue
            answers = ask(
                self.vlm,
                [self.conversation(requests[i]) for i in idx],
                [self.parser(requests[i].metric) for i in idx],
                retries=0 if logprob else self.retries,  # nothing to re-ask: no parsing
                max_new_tokens=1 if logprob else self.max_new_tokens,
            )
            for i, a in zip(idx, answers):
                out[i] = a
                if keys[i] and a.status in ("ok", "unscored"):  # backend errors are not cached
                    self.cache.put(
                        keys[i],
                        {
                            "raw": a.raw,
                            "logprobs": a.logprobs,
                            "model": a.model,
                            "seconds": a.seconds,
                            "error_type": a.error_type,
                            "error": a.error,
                        },
                    )
        return [a for a in out if a is not None]


def _replay(hit: dict[str, Any], parse: Any) -> Answer:
    """A cached judgement: the stored replies parsed again, in order, as when first asked."""
    answer = Answer("unscored", cached=True)
    model, logprobs = hit.get("model"), hit.get("logprobs")
    if not hit["raw"]:  # a refusal or content filter: no text to parse
        error_type, error = hit.get("error_type"), hit.get("error")
        take_reply(answer, VLMReply(None, 0.0, None, model, error_type, error, refused=True), parse)
        return answer
    for reply_text in hit["raw"]:
        if take_reply(answer, VLMReply(reply_text, logprobs=logprobs, model=model), parse):
            break
    return answer
