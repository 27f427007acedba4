"""EditRefine critique: prompt building, strict parsing of <CoT>/<Re_edit>, retries.

Backend-agnostic: the VLM is any :class:`reedit.models.vlm.base.VLM`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reedit.models.vlm.base import VLM, Answer, ask, image, text
from reedit.parsing import parse_critique
from reedit.prompts import load_prompt


@dataclass
class CritiqueRequest:
    key: str
    source_path: str
    edited_path: str
    instruction: str


class Refiner:
    def __init__(
        self,
        vlm: VLM,
        prompt_version: str,
        retries: int,
        max_new_tokens: int,
        batch_size: int,
    ) -> None:
        self.vlm = vlm
        self.prompt_version = prompt_version
        self.retries = retries
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        load_prompt(prompt_version, "critique_system")  # fail at set-up on a bad version

    def fingerprint(self) -> dict[str, Any]:
        return {
            "vlm": self.vlm.fingerprint(),
            "prompt_version": self.prompt_version,
            "retries": self.retries,
            "max_new_tokens": self.max_new_tokens,
        }

    def load(self) -> None:
        self.vlm.load()

    def close(self) -> None:
        self.vlm.close()

    def conversation(self, req: CritiqueRequest) -> list[dict[str, Any]]:
        v = self.prompt_version
        return [
            {"role": "system", "content": [text(load_prompt(v, "critique_system"))]},
            {
                "role": "user",
                "content": [
                    image(req.source_path),
                    image(req.edited_path),
                    text(load_prompt(v, "critique_user").format(instruction=req.instruction)),
                ],
            },
        ]

    def critique(self, requests: Sequence[CritiqueRequest]) -> list[Answer]:
        """One answer per request; ``value`` is a :class:`reedit.parsing.Critique` when ok."""

        return ask(
            self.vlm,
            [self.conversation(r) for r in requests],
            lambda reply_text, _reply: parse_critique(reply_text),
            retries=self.retries,
            max_new_tokens=self.max_new_tokens,
        )
