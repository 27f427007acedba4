"""Any OpenAI-compatible ``/v1/chat/completions`` endpoint as a VLM: OpenAI (GPT-4o, GPT-4.1),
Azure OpenAI, ``vllm serve``, ``transformers serve``.

The transport is the ``openai`` package's client (imported in ``load()``): kept-alive connections,
timeouts, retries of 408, 409, 429, 5xx, timeouts and dropped connections with its exponential
backoff (0.5 s doubling to 8 s, jittered), ``Retry-After`` / ``retry-after-ms`` honoured up to two
minutes. Around it, reedit keeps what the client does not do: at most ``max_concurrency`` requests
in flight (a thread pool), a 200 whose body is not a usable completion retried like a failed
request, and a refusal or a content-filter answer turned into a reply with ``refused=True``
(recorded ``unscored`` with its reason, not retried). Images travel as PNG data URIs, optionally
downscaled to ``max_side``. The API key is read from the environment variable named by
``api_key_env`` (never from the config, never recorded); without one, or for Azure (the key in an
``api-key`` header), no ``Authorization`` header is sent. With ``logprobs: true`` the first answer
token's ``top_logprobs`` give ``{"yes": P, "no": P}`` for ``judge.decision=logprob``. Each reply's
``model`` is the ``model`` string the server returned (the exact snapshot, e.g.
``gpt-4o-2024-08-06``).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import os
import random
import time
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from reedit.models.vlm.base import VLM, Conversation, VLMReply
from reedit.settings import MISSING, runtime_field

log = logging.getLogger(__name__)

# HTTP statuses the client retries (every 5xx too): a reply that still carries one gave up.
RETRY_STATUSES = frozenset({408, 409, 429})
# Error codes of a 4xx body that mean the input was filtered (Azure, OpenAI image moderation).
FILTER_CODES = frozenset({"content_filter", "content_policy_violation"})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class OpenAIVLM(VLM):
    """A chat-completions endpoint. Every knob comes from YAML (``conf/judge/openai.yaml``)."""

    uses_gpus = False  # the model runs behind the endpoint

    backend = "openai"

    @dataclass
    class Settings(VLM.Settings):
        # What decides the answers (the fingerprint); transport settings and the key stay out.
        base_url: str = MISSING  # up to /v1
        model: str = MISSING  # a dated snapshot; records keep the model the server names
        api_version: str | None = None  # Azure: sent as ?api-version=
        temperature: float | None = 0.0  # null: not sent (the server's default)
        top_p: float | None = None
        max_side: int | None = None  # downscale a longer side above this; null: as is
        image_detail: str | None = None  # OpenAI image detail: low | high | auto
        logprobs: bool = False  # ask for top_logprobs (decision=logprob needs them)
        top_logprobs: int = 20
        api_key_env: str | None = runtime_field("OPENAI_API_KEY")  # env var with the key
        max_concurrency: int = runtime_field(8)
        timeout: float = runtime_field(120.0)
        max_retries: int = runtime_field(6)
        # the backoff of the retries reedit makes itself (a 200 whose body is no completion);
        # the client's own retries follow its schedule
        backoff_base: float = runtime_field(1.0)
        backoff_max: float = runtime_field(60.0)
        max_tokens_param: str = runtime_field("max_tokens")
        extra_headers: dict[str, str] = runtime_field(factory=dict)
        azure: bool = runtime_field(False)  # the key in an `api-key` header, not Bearer
        batch_size: int = runtime_field(32)

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.max_concurrency < 1:
                raise ValueError(f"max_concurrency must be >= 1, got {self.max_concurrency}")
            if self.max_retries < 0:
                raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
            if self.max_side is not None and self.max_side < 1:
                raise ValueError(
                    f"max_side must be a positive pixel count or null, got {self.max_side}"
                )
            if not 0 <= self.top_logprobs <= 20:
                raise ValueError(f"top_logprobs must be within 0..20, got {self.top_logprobs}")

    def __init__(self, settings: Any = None, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        s = self.settings
        self.base_url = str(s.base_url).rstrip("/")
        self.supports_logprobs = s.logprobs  # judge.decision=logprob needs `logprobs: true`
        self._key: str | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._client: Any = None
        self._headers: dict[str, Any] = {}
        self._warned_logprobs = False

    def __repr__(self) -> str:
        return f"OpenAIVLM(base_url={self.base_url!r}, model={self.settings.model!r})"

    def fingerprint(self) -> dict[str, Any]:
        out = super().fingerprint()
        if not self.settings.logprobs:  # top_logprobs is not sent then
            out["top_logprobs"] = None
        return out

    # -- life cycle ------------------------------------------------------------------------------
    def _load(self) -> None:
        env = self.settings.api_key_env
        if env:
            key = os.environ.get(env, "")
            if not key:
                raise RuntimeError(
                    f"vlm.api_key_env: the environment variable {env} is not set "
                    f"(it must hold the API key for {self.base_url}); set api_key_env: null for "
                    "a local server without a key"
                )
            self._key = key
        import openai

        s = self.settings
        host = urllib.parse.urlsplit(self.base_url).hostname or ""
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=self._key or "no-key",  # the client wants one; it is not sent (headers)
            timeout=s.timeout,
            max_retries=s.max_retries,
            default_query={"api-version": s.api_version} if s.api_version else None,
            # a local server is never reached through an HTTP(S)_PROXY from the environment
            http_client=openai.DefaultHttpxClient(trust_env=False) if host in LOOPBACK else None,
        )
        headers: dict[str, Any] = dict(s.extra_headers)
        given = {k.lower() for k in headers}
        if (not self._key or s.azure) and "authorization" not in given:
            headers["Authorization"] = openai.Omit()  # the client's Bearer header: not sent
        if self._key and s.azure:
            headers["api-key"] = self._key
        for name in ("OpenAI-Organization", "OpenAI-Project"):  # from OPENAI_ORG_ID/PROJECT_ID
            if name.lower() not in given:
                headers[name] = openai.Omit()  # only what the config says is sent
        self._headers = headers
        self._pool = ThreadPoolExecutor(s.max_concurrency, thread_name_prefix="openai-vlm")

    def _close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._client is not None:
            self._client.close()
        self._pool = self._client = self._key = None

    # -- chat ------------------------------------------------------------------------------------
    def _chat(self, conversations: Sequence[Conversation], max_new_tokens: int) -> list[VLMReply]:
        assert self._pool is not None
        futures = [self._pool.submit(self._ask_one, c, max_new_tokens) for c in conversations]
        return [f.result() for f in futures]

    def _ask_one(self, conv: Conversation, max_new_tokens: int) -> VLMReply:
        """One conversation, retried; never raises (one bad request must not re-send others)."""
        t0 = time.perf_counter()
        try:
            reply = self._request(self.payload(conv, max_new_tokens))
        except Exception as exc:
            reply = VLMReply(None, error_type=type(exc).__name__, error=self._redact(str(exc)))
        reply.seconds = time.perf_counter() - t0
        return reply

    def payload(self, conv: Conversation, max_new_tokens: int) -> dict[str, Any]:
        """The request body for one conversation."""
        body: dict[str, Any] = {
            "model": self.settings.model,
            "messages": [self._message(m) for m in conv],
            self.settings.max_tokens_param: max_new_tokens,
        }
        if self.settings.temperature is not None:
            body["temperature"] = self.settings.temperature
        if self.settings.top_p is not None:
            body["top_p"] = self.settings.top_p
        if self.settings.logprobs:
            body |= {"logprobs": True, "top_logprobs": self.settings.top_logprobs}
        return body

    def _message(self, msg: dict[str, Any]) -> dict[str, Any]:
        items = msg["content"]
        if isinstance(items, str):
            return {"role": msg["role"], "content": items}
        if len(items) == 1 and items[0]["type"] == "text":  # plain string: every server takes it
            return {"role": msg["role"], "content": items[0]["text"]}
        parts = []
        for c in items:
            if c["type"] == "text":
                parts.append({"type": "text", "text": c["text"]})
            elif c["type"] == "image":
                url: dict[str, Any] = {"url": png_data_uri(c["path"], self.settings.max_side)}
                if self.settings.image_detail:
                    url["detail"] = self.settings.image_detail
                parts.append({"type": "image_url", "image_url": url})
            else:
                raise ValueError(f"unknown content item type {c['type']!r}")
        return {"role": msg["role"], "content": parts}

    def _request(self, body: dict[str, Any]) -> VLMReply:
        """One conversation through the client (which retries what HTTP says is transient); a
        200 whose body is no usable completion is asked again, up to ``max_retries`` times."""
        s = self.settings
        tries = s.max_retries + 1
        for attempt in range(tries):
            reply, malformed = self._attempt(body)
            if malformed is None:
                return reply
            if attempt + 1 < tries:
                delay = min(s.backoff_max, s.backoff_base * 2**attempt) * random.uniform(0.75, 1)
                log.warning(
                    "%s: %s; retry %d/%d in %.2f s",
                    s.model,
                    malformed,
                    attempt + 1,
                    tries - 1,
                    delay,
                )
                time.sleep(delay)
        return VLMReply(
            None,
            error_type="MalformedResponse",
            error=f"{malformed} (gave up after {tries} attempts)",
        )

    def _attempt(self, body: dict[str, Any]) -> tuple[VLMReply | None, str | None]:
        """The reply, or (None, why the body was unusable)."""
        import openai

        gave_up = f"given up: max_retries={self.settings.max_retries}"
        try:
            raw = self._client.chat.completions.with_raw_response.create(
                **body, extra_headers=self._headers
            )
        except openai.APITimeoutError:
            error = f"no answer within timeout={self.settings.timeout:g} s ({gave_up})"
            return VLMReply(None, error_type="Timeout", error=error), None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            error = f"{type(cause).__name__}: {self._redact(str(cause))} ({gave_up})"
            return VLMReply(None, error_type="ConnectionError", error=error), None
        except openai.APIStatusError as exc:
            status, content = exc.status_code, exc.response.content
            text = self._redact(content[:500].decode("utf-8", "replace"))
            filtered = _filter_error(content)
            if filtered is not None:
                return VLMReply(
                    None, error_type="ContentFilter", error=filtered, refused=True
                ), None
            error = f"HTTP {status}: {text}"
            if status in RETRY_STATUSES or status >= 500:
                error += f" ({gave_up})"
            return VLMReply(None, error_type=f"HTTP{status}", error=error), None
        content = raw.http_response.content
        try:
            return self.parse_reply(json.loads(content)), None
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            shown = self._redact(content[:200].decode("utf-8", "replace"))
            return None, f"unusable response body ({type(exc).__name__}: {exc}): {shown!r}"

    def _redact(self, s: str) -> str:
        return s.replace(self._key, "***") if self._key else s

    # -- replies ---------------------------------------------------------------------------------
    def parse_reply(self, data: dict[str, Any]) -> VLMReply:
        """A chat-completions response body as a reply (a refusal is ``refused=True``)."""
        choice = data["choices"][0]
        msg = choice.get("message") or {}
        finish = choice.get("finish_reason")
        model = data.get("model") or self.settings.model
        extra = {
            k: v
            for k, v in (
                ("id", data.get("id")),
                ("finish_reason", finish),
                ("system_fingerprint", data.get("system_fingerprint")),
                ("usage", data.get("usage")),
            )
            if v is not None
        }
        if msg.get("refusal"):
            return VLMReply(
                None,
                model=model,
                error_type="Refusal",
                error=str(msg["refusal"]),
                extra=extra,
                refused=True,
            )
        if finish == "content_filter":
            return VLMReply(
                None,
                model=model,
                error_type="ContentFilter",
                error=_filter_reason(choice),
                extra=extra,
                refused=True,
            )
        content = msg.get("content")
        if isinstance(content, list):  # some servers answer with content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if content is not None and not isinstance(content, str):
            raise TypeError(f"message.content is {type(content).__name__}")
        probs = None
        if self.settings.logprobs:
            probs = yes_no_probabilities(choice.get("logprobs"))
            if probs is None and not self._warned_logprobs:
                self._warned_logprobs = True
                log.warning(
                    "%s at %s returned no logprobs although asked: judge.decision=logprob "
                    "will record every verdict unscored",
                    model,
                    self.base_url,
                )
        return VLMReply((content or "").strip(), logprobs=probs, model=model, extra=extra)


def yes_no_probabilities(logprobs: Any) -> dict[str, float] | None:
    """``{"yes": P, "no": P}`` from the first token's ``top_logprobs`` (plus the sampled token),
    summing case and leading-space variants; None when the response carries no log-probs."""
    content = (logprobs or {}).get("content") if isinstance(logprobs, dict) else None
    if not content:
        return None
    first = content[0]
    candidates: dict[str, float] = {}
    for item in first.get("top_logprobs") or []:
        candidates.setdefault(item["token"], item["logprob"])
    if "token" in first and first.get("logprob") is not None:
        candidates.setdefault(first["token"], first["logprob"])
    out = {"yes": 0.0, "no": 0.0}
    for token, lp in candidates.items():
        word = token.strip().lower()
        if word in out and lp is not None:
            out[word] += math.exp(lp)
    return out


def png_data_uri(path: str, max_side: int | None = None) -> str:
    """The image at ``path`` (any format Pillow reads) as an RGB PNG data URI, its longer side
    downscaled to ``max_side`` when larger (aspect ratio kept)."""
    from PIL import Image

    from reedit.data.images import to_rgb

    with Image.open(path) as img:
        img.load()
        rgb = to_rgb(img)
    if max_side and max(rgb.size) > max_side:
        scale = max_side / max(rgb.size)
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    rgb.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _filter_reason(choice: dict[str, Any]) -> str:
    """Why a choice was filtered: the flagged categories where the server says (Azure)."""
    results = choice.get("content_filter_results") or {}
    flagged = sorted(k for k, v in results.items() if isinstance(v, dict) and v.get("filtered"))
    return "finish_reason=content_filter" + (f" ({', '.join(flagged)})" if flagged else "")


def _filter_error(raw: bytes) -> str | None:
    """The message of a 4xx body that reports filtered input, else None."""
    try:
        err = json.loads(raw).get("error") or {}
    except (ValueError, AttributeError):
        return None
    if not isinstance(err, dict) or err.get("code") not in FILTER_CODES:
        return None
    return f"{err.get('code')}: {err.get('message', '')}".strip()
