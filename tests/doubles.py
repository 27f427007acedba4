"""Test doubles, named as such, for fault injection: the happy paths run on the real tiny models
(the trained demo refiner and judge, the tiny diffusers pipelines).

:class:`ScriptedVLM` speaks the real :class:`VLM` interface and fails, or answers garbage, on
demand; it also gives the one reply the tiny models cannot: a critique with two re-edit
instructions (for ``refine.mode=sequential``). :class:`SlowIdentityEditor` is the identity
editor with a delay (to interrupt a run mid-stage) and failures on demand.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reedit.models.base import EditRequest
from reedit.models.editors.identity import IdentityEditor
from reedit.models.vlm.base import VLM, Conversation, VLMReply
from reedit.settings import runtime_field, setting

# Which question a conversation asks, recognised from the v1 system prompts.
ROUTES = {
    "review the result": "critique",
    "strict evaluator": "dimension",
    "follows its edit instruction": "if",
    "editing success": "sc",
    "perceptual quality": "pq",
}


def _texts(conv: Conversation) -> str:
    return "\n".join(c["text"] for m in conv for c in m["content"] if c["type"] == "text")


def _images(conv: Conversation) -> list[str]:
    return [c["path"] for m in conv for c in m["content"] if c["type"] == "image"]


class ScriptedVLM(VLM):
    """Answers deterministically from the images' bytes and the question asked.

    ``garbage``: substrings of the prompt that make it answer unparseable text;
    ``fail``: substrings that make it raise (a backend error); ``fail_file``: a file whose lines
    are such substrings while it exists (outside the config, so a test can "fix the cause" by
    deleting it without changing the fingerprint); ``delay``: seconds per answer;
    ``replies``: a queue of literal replies used first (for unit tests of retries).
    """

    uses_gpus = False

    instances: list[ScriptedVLM] = []

    @dataclass
    class Settings(VLM.Settings):
        garbage: list[str] = setting(factory=list)
        fail: list[str] = setting(factory=list)
        fail_file: str | None = None
        delay: float = 0.0
        batch_size: int = runtime_field(4)

    def __init__(self, settings: Any = None, *, replies: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        s = self.settings
        self.garbage, self.fail, self.delay = list(s.garbage), list(s.fail), s.delay
        self.fail_file = Path(s.fail_file) if s.fail_file else None
        self.replies = list(replies)
        self.calls: list[Conversation] = []
        self.chunks: list[int] = []  # conversations per backend call
        self.loads = 0
        ScriptedVLM.instances.append(self)

    def _load(self) -> None:
        self.loads += 1

    def _chat(self, conversations: Sequence[Conversation], max_new_tokens: int) -> list[VLMReply]:
        out = []
        self.chunks.append(len(conversations))
        for conv in conversations:
            self.calls.append(conv)
            if self.delay:
                time.sleep(self.delay)
            prompt = _texts(conv)
            failing = list(self.fail)
            if self.fail_file and self.fail_file.is_file():
                failing += [line for line in self.fail_file.read_text().splitlines() if line]
            if any(s in prompt for s in failing):
                raise RuntimeError("scripted backend failure")
            if self.replies:
                out.append(VLMReply(self.replies.pop(0), model="scripted"))
                continue
            if any(s in prompt for s in self.garbage):
                out.append(VLMReply("I cannot answer that { in JSON", model="scripted"))
                continue
            out.append(VLMReply(self.answer(conv), model="scripted"))
        return out

    @staticmethod
    def answer(conv: Conversation) -> str:
        prompt = _texts(conv)
        kind = next((k for s, k in ROUTES.items() if s in prompt), None)
        h = hashlib.sha256(kind.encode() if kind else b"")
        for path in _images(conv):
            h.update(Path(path).read_bytes())
        n = int(h.hexdigest()[:8], 16)
        if kind == "critique":
            return (
                "<CoT>The edit keeps the scene layout.</CoT>\n"
                f"<CoT>Check {n % 7} details.</CoT>\n"
                "<Re_edit>Fix the lighting direction.</Re_edit>\n"
                "<Re_edit>Improve the overall image quality.</Re_edit>"
            )
        if kind == "dimension":
            verdict = "yes" if n % 3 else "no"
            return json.dumps({"score": verdict, "reasoning": "scripted"})
        if kind == "if":
            return json.dumps({"score": n % 11, "reason": "scripted"})
        if kind in ("sc", "pq"):
            return json.dumps({"score": [n % 11, (n >> 8) % 11], "reasoning": "scripted"})
        return "unrecognised question"


class SlowIdentityEditor(IdentityEditor):
    """Identity with a delay per image; the sample ids listed in ``fail_file`` (one per line,
    when the file exists) fail, so a test can "fix the cause" by deleting the file."""

    @dataclass
    class Settings(IdentityEditor.Settings):
        delay: float = 0.0
        fail_file: str | None = None

    def __init__(self, settings: Any = None, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.delay = self.settings.delay
        fail_file = self.settings.fail_file
        self.fail_file = Path(fail_file) if fail_file else None

    def info(self) -> dict[str, Any]:
        """Where it ran: the devices its process was given (a launcher's isolation)."""
        return {"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "gpus": self.gpus}

    def _edit(self, requests: Sequence[EditRequest]) -> list[Any]:
        failing = set()
        if self.fail_file and self.fail_file.is_file():
            failing = set(self.fail_file.read_text().split())
        for req in requests:
            if req.sample_id in failing:
                raise RuntimeError(f"scripted failure for {req.sample_id}")
            time.sleep(self.delay)
        return super()._edit(requests)


class MisbehavingEditor(IdentityEditor):
    """Identity that misbehaves on demand, for the worker runtime's fault tests: ``delay`` per
    call, prints to stdout from Python and through fd 1 (as C code does), floods stderr with
    ``stderr_flood_mb`` MB, exits with ``exit_on_load`` while loading; ``info()`` tells which of
    Hydra, OmegaConf and W&B its interpreter can import."""

    @dataclass
    class Settings(IdentityEditor.Settings):  # how it misbehaves, never what it makes
        delay: float = runtime_field(0.0)
        stdout_noise: bool = runtime_field(False)
        stderr_flood_mb: int = runtime_field(0)
        exit_on_load: int | None = runtime_field(None)

    def _load(self) -> None:
        if self.settings.exit_on_load is not None:
            print("about to exit while loading", file=sys.stderr, flush=True)  # noqa: T201
            os._exit(self.settings.exit_on_load)

    def _edit(self, requests: Sequence[EditRequest]) -> list[Any]:
        if self.settings.stdout_noise:
            print("noise from python's print")  # noqa: T201 - the point
            sys.stdout.flush()
            os.write(1, b"noise written to fd 1, as C code does\n")
        if self.settings.stderr_flood_mb:
            chunk = "x" * (1 << 20)  # 1 MB lines, then one with a newline
            for _ in range(self.settings.stderr_flood_mb):
                sys.stderr.write(chunk)
            sys.stderr.write("\nflood done\n")
            sys.stderr.flush()
        time.sleep(self.settings.delay)
        return super()._edit(requests)

    def info(self) -> dict[str, Any]:
        import importlib.util

        found = {
            m: importlib.util.find_spec(m) is not None for m in ("hydra", "omegaconf", "wandb")
        }
        seen = {"gpus": self.gpus, "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
        return {**super().info(), "importable": found, "python": sys.executable, **seen}
