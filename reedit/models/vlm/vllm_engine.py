"""A VLM through an offline vLLM engine (``vllm.LLM``): started once per run, and every request
of a stage handed to it in one call, so that vLLM's scheduler batches them (continuous batching,
prefix and multi-modal caches) instead of us cutting the stage into sequential chunks.

Requests go through ``LLM.chat``: vLLM renders each conversation with the model's own chat
template (for Qwen-VL one ``<|vision_start|><|image_pad|><|vision_end|>`` per image, at the
image's place in the message, the system message first) and expands each image's placeholder to
its token count with the model's processor. ``LLM.generate`` would make us render the template
ourselves (a second processor, and its placeholders kept in step with vLLM's by hand).

``engine_factory`` (a dotted path, default ``vllm.LLM``) is the seam: tests inject a stand-in
engine with vLLM's ``chat`` signature, and a worker runtime can move this class, unchanged, into
an environment of its own. The sampling parameters are built with the ``SamplingParams`` class
found next to the factory (``vllm.SamplingParams`` for ``vllm.LLM``), so a stand-in engine ships
its own and the backend never needs vLLM to build a request.

Heavy imports (vllm, torch) happen in :meth:`VLLMEngineVLM._load` and :meth:`_close`, never at
import time.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reedit import hub
from reedit.models.component import physical_gpus
from reedit.models.vlm.base import (
    VLM,
    Conversation,
    VLMReply,
    resolve_vlm_path,
    weights_signature,
)
from reedit.settings import MISSING, check_choice, runtime_field, setting

log = logging.getLogger(__name__)

# The base `chat()` cuts its input into chunks of `batch_size` and calls `_chat` once per chunk,
# one after the other. For this backend a chunk must never split the stage: the point is that
# vLLM sees every request at once and schedules them itself. So the default chunk is unbounded
# and a stage's whole list goes into one `LLM.chat` call (the stage's own chunk, e.g.
# `judge.batch_size`, is the only bound left; set it large too).
WHOLE_STAGE = 1_000_000_000

VISIBLE = "CUDA_VISIBLE_DEVICES"
VLLM_DTYPES = ("auto", "bfloat16", "float16", "half", "float32", "float")  # vllm.LLM's dtype


class VLLMEngineVLM(VLM):
    """Qwen-VL (any vLLM multi-modal chat model) through an offline ``vllm.LLM`` engine.

    ``temperature: 0`` is greedy decoding. ``logprobs`` is the number of top log-probabilities
    vLLM returns per generated token (0: none); the first position gives ``reply.logprobs =
    {"yes": P, "no": P}`` for ``judge.decision=logprob``. ``gpus`` is the run's top-level
    ``gpus`` (the stage sets it): the engine sees exactly those devices.
    """

    requires = ("vllm",)

    backend = "vllm"

    @dataclass
    class Settings(VLM.Settings):
        # What determines the answers (hashed into the judge's fingerprint); the GPU layout,
        # the memory share, the context cap and the factory change speed or failures only.
        path: str = MISSING  # hub id (downloaded first when offline) or local folder
        dtype: str = MISSING
        temperature: float = MISSING  # 0: greedy
        top_p: float = 1.0
        min_pixels: int | None = None
        max_pixels: int | None = None
        logprobs: int = 20  # top log-probs per token (0: none; > 0 for decision=logprob)
        engine_kwargs: dict[str, Any] = setting(factory=dict)  # other vllm.LLM arguments
        tensor_parallel_size: int = runtime_field(1)  # GPUs one engine spreads over
        gpu_memory_utilization: float = runtime_field(0.9)
        max_model_len: int | None = runtime_field(None)  # context cap per request
        limit_mm_per_prompt: int = runtime_field(2)  # images per request
        progress: bool = runtime_field(False)  # vLLM's own bar over the one big call
        engine_factory: str = runtime_field("vllm.LLM")  # dotted path (tests: a stand-in)
        batch_size: int = runtime_field(WHOLE_STAGE)

        def __post_init__(self) -> None:
            super().__post_init__()
            check_choice("dtype", self.dtype, VLLM_DTYPES)
            if self.logprobs < 0:
                raise ValueError(f"logprobs must be >= 0 (0: none), got {self.logprobs}")
            if self.tensor_parallel_size < 1:
                raise ValueError(
                    f"tensor_parallel_size must be >= 1, got {self.tensor_parallel_size}"
                )

    def __init__(self, settings: Any = None, **kwargs: Any) -> None:
        factory = kwargs.pop("engine_factory", None)
        if callable(factory):  # a factory object (tests) rather than a dotted path
            kwargs["engine_factory"] = f"{factory.__module__}.{factory.__qualname__}"
        elif factory is not None:
            kwargs["engine_factory"] = factory
        super().__init__(settings, **kwargs)
        self.factory_object = factory if callable(factory) else None
        self.engine: Any = None
        self.sampling_params_cls: Any = None

    @classmethod
    def copy_gpus(cls, settings: Any) -> int | None:
        return settings.tensor_parallel_size  # one engine over that many GPUs

    @property
    def path(self) -> str:
        return self.settings.path

    @property
    def supports_logprobs(self) -> bool:  # read by the judge for decision=logprob
        return self.settings.logprobs > 0

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "weights": weights_signature(self.resolve_path())}

    # -- engine life -----------------------------------------------------------------------
    def engine_devices(self) -> str:
        """The ``CUDA_VISIBLE_DEVICES`` value the engine gets: exactly the ids in ``gpus``.

        Ids count within the devices this process already sees (as ``cuda:N`` does elsewhere in
        the run): with ``CUDA_VISIBLE_DEVICES=4,5,6,7`` set, ``gpus=[0,1]`` gives ``4,5``.
        """
        gpus, tp = self.gpus, self.settings.tensor_parallel_size
        if tp > len(gpus):
            raise ValueError(
                f"vlm.tensor_parallel_size={tp} needs that many GPUs, but "
                f"gpus={gpus} lists {len(gpus)}: list more ids in gpus (e.g. gpus="
                f"[{','.join(str(i) for i in range(tp))}]) or lower "
                "vlm.tensor_parallel_size (vLLM does not run on the CPU here)"
            )
        if len(set(gpus)) != len(gpus) or any(int(g) < 0 for g in gpus):
            raise ValueError(f"gpus={gpus}: GPU ids must be distinct and >= 0")
        return ",".join(physical_gpus(gpus))

    def resolve_path(self) -> str:
        return resolve_vlm_path(self.locate(self.path))

    def engine_arguments(self, path: str) -> dict[str, Any]:
        """Keyword arguments of the engine factory (``vllm.LLM``)."""
        s = self.settings
        kwargs: dict[str, Any] = {
            "model": path,
            "dtype": s.dtype,
            "tensor_parallel_size": s.tensor_parallel_size,
            "gpu_memory_utilization": s.gpu_memory_utilization,
            # The judge sends no video: 0 keeps vLLM from reserving encoder memory for one.
            "limit_mm_per_prompt": {"image": s.limit_mm_per_prompt, "video": 0},
        }
        if s.max_model_len is not None:
            kwargs["max_model_len"] = int(s.max_model_len)
        pixels = (("min_pixels", s.min_pixels), ("max_pixels", s.max_pixels))
        pixels = {k: v for k, v in pixels if v is not None}
        if pixels:  # engine-wide, so that vLLM's memory profiling sees the real image size
            kwargs["mm_processor_kwargs"] = pixels
        if s.logprobs > 20:  # vLLM refuses more than max_logprobs (default 20) per token
            kwargs["max_logprobs"] = s.logprobs
        kwargs.update(s.engine_kwargs)
        return kwargs

    def _load(self) -> None:
        devices = self.engine_devices()  # fails before anything heavy is imported
        path = self.resolve_path()
        if not Path(path).is_dir():
            hub.offline()  # an unreachable hub: the engine (and its processes) look offline
        with _environment(VISIBLE, devices):
            # vLLM (and torch under it) is imported only now, with the devices set, so that
            # the engine's processes start with them; the variable is put back afterwards.
            _warn_if_cuda_started(devices)
            factory = self._factory()
            kwargs = self.engine_arguments(path)
            log.info("starting vLLM engine for %s on %s=%s", path, VISIBLE, devices)
            try:
                self.engine = factory(**kwargs)
            except Exception as exc:
                first = (str(exc).splitlines() or [""])[0][:300]
                hint = ""
                if not Path(path).is_dir():
                    hint = f"; a hub id must be downloaded first (`hf download {path}`) offline"
                raise RuntimeError(
                    f"vlm: vLLM could not start '{path}' on {VISIBLE}={devices} "
                    f"({type(exc).__name__}: {first}){hint}"
                ) from exc

    def _factory(self) -> Callable[..., Any]:
        """The engine factory and, next to it, the ``SamplingParams`` class requests use."""
        spec = self.factory_object or self.settings.engine_factory
        if callable(spec):
            factory, module = spec, sys.modules.get(getattr(spec, "__module__", ""), None)
        else:
            name, _, attr = str(spec).rpartition(".")
            try:
                module = importlib.import_module(name)
            except ImportError as exc:
                raise RuntimeError(
                    f"vlm.engine_factory={spec}: cannot import '{name}': {exc} (the default, "
                    "vllm.LLM, comes with pip install 'reedit[vllm]')"
                ) from exc
            factory = getattr(module, attr, None)
            if not callable(factory):
                raise RuntimeError(f"vlm.engine_factory={spec}: '{name}' has no callable '{attr}'")
        self.sampling_params_cls = getattr(module, "SamplingParams", None)
        if self.sampling_params_cls is None:
            raise RuntimeError(
                f"vlm.engine_factory={spec}: its module must also provide SamplingParams "
                "(as vllm does), which requests are built with"
            )
        return factory

    def _close(self) -> None:
        engine, self.engine = self.engine, None
        if engine is not None:
            # vLLM's V1 engine runs in its own process(es): shut them down explicitly, then drop
            # the last reference so that the weights and the KV cache go with it.
            core = getattr(getattr(engine, "llm_engine", None), "engine_core", None)
            for owner in (engine, core):
                shutdown = getattr(owner, "shutdown", None)
                if callable(shutdown):
                    with _logged("vLLM shutdown"):
                        shutdown()
                    break
            del engine, core
        gc.collect()
        if "vllm" in sys.modules:
            with _logged("vLLM distributed cleanup"):
                from vllm.distributed.parallel_state import (
                    destroy_distributed_environment,
                    destroy_model_parallel,
                )

                destroy_model_parallel()
                destroy_distributed_environment()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_initialized():
            torch.cuda.empty_cache()

    # -- requests ----------------------------------------------------------------------------
    def sampling_params(self, max_new_tokens: int) -> Any:
        s = self.settings
        return self.sampling_params_cls(
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=max_new_tokens,
            logprobs=s.logprobs or None,
        )

    def _chat(self, conversations: Sequence[Conversation], max_new_tokens: int) -> list[VLMReply]:
        images: dict[str, Any] = {}  # a file used by several requests is decoded once
        messages = [to_vllm_messages(c, images) for c in conversations]
        outputs = self.engine.chat(
            messages,
            sampling_params=self.sampling_params(max_new_tokens),
            use_tqdm=self.settings.progress,
            # Content stays a list of typed parts: the Qwen-VL templates place each image's
            # vision tokens where its part is (source, then edited, then the question).
            chat_template_content_format="openai",
            add_generation_prompt=True,
        )
        if len(outputs) != len(conversations):
            raise RuntimeError(f"vLLM gave {len(outputs)} outputs for {len(conversations)}")
        return [self.reply(out) for out in outputs]  # vLLM returns them in request order

    def reply(self, output: Any) -> VLMReply:
        """A vLLM ``RequestOutput`` as a :class:`VLMReply`."""
        completions = getattr(output, "outputs", None) or []
        if not completions or completions[0].text is None:
            return VLMReply(None, model=self.path, error_type="EmptyOutput", error="no completion")
        first = completions[0]
        probs = None
        if self.settings.logprobs and first.logprobs:
            probs = yes_no_probabilities(first.logprobs[0])
        prompt_ids = getattr(output, "prompt_token_ids", None)
        extra = {
            "finish_reason": getattr(first, "finish_reason", None),
            "prompt_tokens": len(prompt_ids) if prompt_ids is not None else None,
            "completion_tokens": len(getattr(first, "token_ids", None) or ()),
        }
        return VLMReply(first.text.strip(), logprobs=probs, model=self.path, extra=extra)


def yes_no_probabilities(position: Mapping[int, Any]) -> dict[str, float]:
    """P("yes") and P("no") at one position: the summed probabilities of the returned tokens
    whose text is yes/no (any case, surrounding spaces ignored), e.g. "Yes", " yes"."""
    out = {"yes": 0.0, "no": 0.0}
    for logprob in position.values():
        word = (getattr(logprob, "decoded_token", None) or "").strip().lower()
        if word in out and not math.isnan(logprob.logprob):
            out[word] += math.exp(logprob.logprob)
    return out


def to_vllm_messages(conv: Conversation, images: dict[str, Any]) -> list[dict[str, Any]]:
    """Our conversation (images as file paths) as OpenAI-style chat messages for ``LLM.chat``,
    each image as vLLM's ``{"type": "image_pil", "image_pil": PIL.Image}`` part (decoded here:
    no base64 round trip, no local-media permission for the engine)."""
    from PIL import Image

    from reedit.data.images import to_rgb

    out = []
    for msg in conv:
        content = []
        for part in msg["content"]:
            if part["type"] == "image":
                path = str(part["path"])
                if path not in images:
                    with Image.open(path) as img:
                        img.load()
                        images[path] = to_rgb(img)
                content.append({"type": "image_pil", "image_pil": images[path]})
            else:
                content.append({"type": "text", "text": part["text"]})
        out.append({"role": msg["role"], "content": content})
    return out


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _warn_if_cuda_started(devices: str) -> None:
    # is_initialized() starts nothing (is_available() would, and fix the devices too early).
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        log.warning(
            "CUDA is already initialised in this process: %s=%s reaches only the processes "
            "vLLM starts (its default); an in-process engine would use this process's devices",
            VISIBLE,
            devices,
        )


@contextlib.contextmanager
def _logged(what: str) -> Iterator[None]:
    """Closing must not fail: a clean-up step that raises is logged and skipped."""
    try:
        yield
    except Exception as exc:
        log.debug("%s skipped: %s: %s", what, type(exc).__name__, exc)
