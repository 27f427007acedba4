"""EditRefine critique: prompt building, strict parsing of <CoT>/<Re_edit>, retries.

Backend-agnostic: the VLM is any :class:`reedit.models.vlm.base.VLM`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reedit.data.base import Sample
from reedit.models.vlm.base import VLM, Answer, ask, image, text
from reedit.parsing import parse_critique
from reedit.prompts import load_prompt
from reedit.settings import SettingsBase, component, runtime_field


@dataclass
class CritiqueRequest:
    key: str
    source_path: str
    edited_path: str
    instruction: str

    @classmethod
    def of(cls, key: str, sample: Sample, edited: str | Path) -> CritiqueRequest:
        """A critique of ``edited`` as an edit of ``sample``."""
        return cls(key, str(sample.source_path), str(edited), sample.instruction)


class Refiner:
    """Asks a VLM backend (``vlm``) to critique each edit and write re-edit instructions."""

    @dataclass
    class Settings(SettingsBase):
        vlm: Any = component()  # a VLM backend node (its own _target_)
        prompt_version: str = "v1"
        retries: int = 2  # re-ask an unparseable reply, then record it unscored
        max_new_tokens: int = 512  # reference
        batch_size: int = runtime_field(8)  # requests per refiner call

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
        self.settings = s
        self.vlm = vlm
        self.prompt_version = s.prompt_version
        self.retries, self.max_new_tokens = s.retries, s.max_new_tokens
        self.batch_size = s.batch_size
        load_prompt(s.prompt_version, "critique_system")  # fail at set-up on a bad version

    def fingerprint(self) -> dict[str, Any]:
        return {
            "vlm": self.vlm.fingerprint(),
            "prompt_version": self.prompt_version,
            "retries": self.retries,
            "max_new_tokens": self.max_new_tokens,
        }

    def load(self) -> None:
        if self.vlm is None:
            raise RuntimeError("refiner.vlm is not set: this refiner only builds prompts")
        self.vlm.load()

    def close(self) -> None:
        if self.vlm is not None:
            self.vlm.close()

    def record_fields(self, answer: Answer) -> dict[str, Any]:
        """What a critique record holds of the refiner's answer."""
        out: dict[str, Any] = {
            "attempts": answer.attempts,
            "raw": answer.raw,
            "prompt_version": self.prompt_version,
        }
        if answer.status == "ok":
            out |= {"cot": answer.value.cot, "re_edit": answer.value.re_edit}
        return out

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
