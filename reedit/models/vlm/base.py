"""The VLM interface: chat conversations with images in, text (and optionally log-probs) out.

A conversation is a list of messages ``{"role": "system"|"user"|"assistant", "content": [...]}``
whose content items are ``{"type": "text", "text": str}`` or ``{"type": "image", "path": str}``:
images travel as files. Backends declare their ``Settings`` and implement :meth:`VLM._chat`;
:meth:`VLM.chat` batches, times and turns a per-conversation exception into an error reply.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from reedit.models.component import Model
from reedit.settings import output_fields

log = logging.getLogger(__name__)

Conversation = list[dict[str, Any]]


@dataclass
class VLMReply:
    text: str | None
    seconds: float = 0.0
    # P(token) for the first answer token, e.g. {"yes": 0.8, "no": 0.2}, where the backend can.
    logprobs: dict[str, float] | None = None
    model: str | None = None  # the exact model/snapshot that answered
    error_type: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # The model declined (a refusal or a content filter; the reason in `error`): an answer, not a
    # backend failure, so `ask` records it `unscored` at once instead of retrying it.
    refused: bool = False

    @property
    def ok(self) -> bool:
        return self.text is not None


class VLM(Model):
    """A vision-language model backend."""

    kind = "VLM"
    backend: ClassVar[str] = ""  # its name in fingerprints (default: the class name)
    supports_logprobs: bool = False  # read by the judge for decision=logprob

    def fingerprint(self) -> dict[str, Any]:
        """What determines this backend's answers (the judge cache's key): its output fields."""
        return {"backend": self.backend or type(self).__name__, **output_fields(self.settings)}

    @abc.abstractmethod
    def _chat(self, conversations: Sequence[Conversation], max_new_tokens: int) -> list[VLMReply]:
        """Answer a batch of conversations, one reply each, in order."""

    def chat(self, conversations: Sequence[Conversation], max_new_tokens: int) -> list[VLMReply]:
        if not self.loaded:
            self.load()
        out: list[VLMReply] = []
        for start in range(0, len(conversations), self.batch_size):
            out.extend(
                self._run_chunk(
                    list(conversations[start : start + self.batch_size]), max_new_tokens
                )
            )
        return out

    def _run_chunk(self, batch: list[Conversation], max_new_tokens: int) -> list[VLMReply]:
        t0 = time.perf_counter()
        try:
            replies = self._chat(batch, max_new_tokens)
            if len(replies) != len(batch):
                raise RuntimeError(f"{len(replies)} replies for {len(batch)} conversations")
        except Exception as exc:
            if len(batch) > 1:
                return [r for conv in batch for r in self._run_chunk([conv], max_new_tokens)]
            return [
                VLMReply(None, time.perf_counter() - t0, None, None, type(exc).__name__, str(exc))
            ]
        seconds = (time.perf_counter() - t0) / len(batch)
        for r in replies:
            r.seconds = r.seconds or seconds
        return replies


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def image(path: str) -> dict[str, Any]:
    return {"type": "image", "path": str(path)}


@dataclass
class Answer:
    """The outcome of asking one question with retries."""

    status: str  # ok | unscored (answered, never parseable) | error (the backend failed)
    value: Any = None
    raw: list[str] = field(default_factory=list)  # every reply text, in order
    attempts: int = 0
    seconds: float = 0.0
    model: str | None = None
    error_type: str | None = None
    error: str | None = None
    logprobs: dict[str, float] | None = None
    cached: bool = False  # replayed from the judge cache, not asked again


def ask(
    vlm: VLM,
    conversations: Sequence[Conversation],
    parse: Any,
    *,
    retries: int,
    max_new_tokens: int,
) -> list[Answer]:
    """Ask every conversation; re-ask those whose reply fails ``parse`` up to ``retries`` times.

    ``parse(text, reply) -> value`` raises ``ValueError`` for an unusable reply; a list gives
    one parser per conversation (several kinds of question in one backend call). A backend error
    is retried too; what is still failing after the retries is ``error`` (backend) or
    ``unscored`` (answered but unparseable) with the reason and every raw reply kept. A refused
    reply (``VLMReply.refused``: refusal, content filter) is ``unscored`` at once, not retried.
    """
    parsers = list(parse) if isinstance(parse, (list, tuple)) else [parse] * len(conversations)
    answers = [Answer("error") for _ in conversations]
    pending = list(range(len(conversations)))
    for _ in range(retries + 1):
        if not pending:
            break
        replies = vlm.chat([conversations[i] for i in pending], max_new_tokens)
        pending = [i for i, r in zip(pending, replies) if not take_reply(answers[i], r, parsers[i])]
    return answers


def take_reply(answer: Answer, reply: VLMReply, parse: Any) -> bool:
    """Record one reply in ``answer``; True when it is settled (ok, or refused), False when it
    is worth asking again (a backend error or an unparseable reply)."""
    answer.attempts += 1
    answer.seconds += reply.seconds
    answer.model = reply.model or answer.model
    if reply.refused:
        answer.status, answer.error_type, answer.error = "unscored", reply.error_type, reply.error
        return True
    if not reply.ok:
        answer.status, answer.error_type, answer.error = "error", reply.error_type, reply.error
        return False
    answer.raw.append(reply.text or "")
    try:
        answer.value = parse(reply.text or "", reply)
    except ValueError as exc:
        answer.status, answer.error_type, answer.error = "unscored", "ParseError", str(exc)
        return False
    answer.status, answer.error_type, answer.error = "ok", None, None
    answer.logprobs = reply.logprobs
    return True


def resolve_vlm_path(path: str) -> str:
    """A local model folder (checked) or a hub id."""
    from pathlib import Path

    local = Path(path).expanduser()
    if path.startswith(("/", ".", "~")) and not local.is_dir():
        raise FileNotFoundError(f"vlm.path: no such folder: {local}")
    return str(local) if local.is_dir() else path


def weights_signature(folder: str) -> str | None:
    """For a local model folder, a hash of its files' names, sizes and mtimes (a model retrained
    in place gets new judge-cache keys); None for a hub id."""
    import hashlib
    from pathlib import Path

    root = Path(folder)
    if not root.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
