"""The VLM judge: dimension verdict, IF, SC and PQ prompts, strict parsing, retries.

A reply that cannot be parsed after the retries is ``unscored`` (with every raw reply kept),
never "no" or 5.0; ``compat.upstream_failures`` applies the reference substitutions in the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reedit.models.vlm.base import VLM, Answer, ask, image, text
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
        self.decision = decision
        self.threshold = threshold
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
        }

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

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Answer]:
        """One answer per request; ``value`` is a :class:`reedit.parsing.JudgeValue` when ok."""
        out: list[Answer | None] = [None] * len(requests)
        for metric, kind in METRICS.items():
            idx = [i for i, r in enumerate(requests) if r.metric == metric]
            if not idx:
                continue
            logprob = self.uses_logprob(metric)
            answers = ask(
                self.vlm,
                [self.conversation(requests[i]) for i in idx],
                self._from_probabilities
                if logprob
                else (lambda reply_text, _reply, kind=kind: parse_judge_reply(reply_text, kind)),
                retries=0 if logprob else self.retries,  # nothing to re-ask: no parsing
                max_new_tokens=1 if logprob else self.max_new_tokens,
            )
            for i, a in zip(idx, answers):
                out[i] = a
        return [a for a in out if a is not None]
