"""The VLM judge: dimension verdict, IF, SC and PQ prompts, strict parsing, retries.

A reply that cannot be parsed after the retries is ``unscored`` (with every raw reply kept),
never "no" or 5.0; ``compat.upstream_failures`` applies the reference substitutions in the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reedit.judge_cache import JudgeCache
from reedit.models.vlm.base import VLM, Answer, VLMReply, ask, image, take_reply, text
from reedit.parsing import JudgeValue, parse_judge_reply
from reedit.prompts import load_prompt

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


def criteria(version: str, category: str) -> str:
    for line in load_prompt(version, "criteria").splitlines():
        name, _, items = line.partition(":")
        if name.strip() == category:
            return "\n".join(f"- {c.strip()}" for c in items.split("|"))
    raise KeyError(f"prompt_version '{version}' has no criteria for category '{category}'")


class Judge:
    def __init__(
        self,
        vlm: VLM,
        prompt_version: str,
        metrics: Sequence[str],
        retries: int,
        max_new_tokens: int,
        batch_size: int,
        decision: str = "generate",
        threshold: float = 0.5,
        cache: bool = True,
        cache_dir: str | None = None,
        parse: str = "lenient",
    ) -> None:
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"judge.metrics: unknown {unknown}; choose from {list(METRICS)}")
        if decision not in ("generate", "logprob"):
            raise ValueError(f"judge.decision must be 'generate' or 'logprob', got '{decision}'")
        if decision == "logprob" and not getattr(vlm, "supports_logprobs", False):
            raise ValueError(
                f"judge.decision=logprob needs a backend that exposes token probabilities; "
                f"{type(vlm).__name__} does not: use judge.decision=generate"
            )
        if parse not in ("lenient", "strict"):
            raise ValueError(f"judge.parse must be 'lenient' or 'strict', got '{parse}'")
        self.decision = decision
        self.threshold = threshold
        self.strict = parse == "strict"
        self.cache = JudgeCache(cache_dir) if cache else None
        self.vlm = vlm
        self.prompt_version = prompt_version
        self.metrics = list(metrics)
        self.retries = retries
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        for m in self.metrics:  # fail at set-up on a bad prompt version
            load_prompt(prompt_version, f"judge_{m}_system")

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
        self.vlm.load()

    def close(self) -> None:
        self.vlm.close()

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
