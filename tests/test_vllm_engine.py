"""The vLLM backend: request building, one engine call per stage, result mapping, GPU selection.

vLLM cannot run on the CPU, so these tests drive the backend with :class:`StandInLLM`, a test
double with ``vllm.LLM``'s ``chat``/``generate`` signatures (as of vLLM 0.11+) that records every
call and answers objects shaped like vLLM's ``RequestOutput``. The real engine runs in the
``gpu``-marked test at the end (opt-in: ``-m gpu``), where vLLM and a GPU exist.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image

from reedit.config import instantiate
from reedit.judge import Judge, JudgeRequest
from reedit.models.vlm.base import image, text
from reedit.models.vlm.vllm_engine import VLLMEngineVLM, yes_no_probabilities

STAND_IN = f"{__name__}.StandInLLM"


# ----------------------------------------------------------------------------- the stand-in
@dataclass
class SamplingParams:
    """Stand-in for ``vllm.SamplingParams`` (the fields the backend sets)."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int | None = 16
    logprobs: int | None = None


@dataclass
class Logprob:
    """Shaped like ``vllm.logprobs.Logprob``."""

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    """Shaped like ``vllm.outputs.CompletionOutput``."""

    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None = "stop"
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    """Shaped like ``vllm.outputs.RequestOutput``."""

    request_id: str
    prompt: str | None
    prompt_token_ids: list[int] | None
    prompt_logprobs: Any
    outputs: list[CompletionOutput]
    finished: bool = True
    metrics: Any = None


# First-token candidates the stand-in reports (as vLLM: token id -> Logprob).
FIRST_TOKEN = {
    9: Logprob(math.log(0.6), 1, "Yes"),
    10: Logprob(math.log(0.2), 2, " yes"),
    11: Logprob(math.log(0.15), 3, "No"),
    12: Logprob(math.log(0.05), 4, "maybe"),
}


class StandInLLM:
    """Test double for ``vllm.LLM``: same constructor/``chat``/``generate`` signatures, records
    every construction and call, answers ``"reply <i>: <last user text>"`` per conversation."""

    instances: list[StandInLLM] = []

    def __init__(self, model: str, **kwargs: Any) -> None:
        self.model, self.kwargs = model, kwargs
        self.visible_devices = os.environ.get("CUDA_VISIBLE_DEVICES")
        self.calls: list[dict[str, Any]] = []
        self.shut_down = False
        self.request_counter = 0
        StandInLLM.instances.append(self)

    def chat(
        self,
        messages: list[dict[str, Any]] | Sequence[list[dict[str, Any]]],
        sampling_params: SamplingParams | list[SamplingParams] | None = None,
        use_tqdm: bool | Callable[..., Any] = True,
        lora_request: Any = None,
        chat_template: str | None = None,
        chat_template_content_format: str = "auto",
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        tools: list[dict[str, Any]] | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        tokenization_kwargs: dict[str, Any] | None = None,
        mm_processor_kwargs: dict[str, Any] | None = None,
    ) -> list[RequestOutput]:
        conversations = messages if messages and isinstance(messages[0], list) else [messages]
        limit = self.kwargs.get("limit_mm_per_prompt", {}).get("image", 1)
        for conv in conversations:  # vLLM refuses the call when a prompt has too many images
            n = sum(p["type"] == "image_pil" for m in conv for p in m["content"])
            if n > limit:
                raise ValueError(f"At most {limit} image(s) may be provided in one prompt.")
        self.calls.append(
            {
                "method": "chat",
                "messages": conversations,
                "sampling_params": sampling_params,
                "use_tqdm": use_tqdm,
                "chat_template_content_format": chat_template_content_format,
                "add_generation_prompt": add_generation_prompt,
            }
        )
        return self._answer(conversations, sampling_params)

    def generate(
        self,
        prompts: Any,
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        *,
        use_tqdm: bool | Callable[..., Any] = True,
        lora_request: Any = None,
        priority: list[int] | None = None,
        tokenization_kwargs: dict[str, Any] | None = None,
    ) -> list[RequestOutput]:
        prompts = prompts if isinstance(prompts, list) else [prompts]
        self.calls.append({"method": "generate", "prompts": prompts})
        convs = [[{"role": "user", "content": [{"type": "text", "text": str(p)}]}] for p in prompts]
        return self._answer(convs, sampling_params)

    def shutdown(self) -> None:
        self.shut_down = True

    def _answer(self, conversations: list, params: SamplingParams | None) -> list[RequestOutput]:
        params = params or SamplingParams()
        out = []
        for conv in conversations:
            question = [p["text"] for p in conv[-1]["content"] if p["type"] == "text"][-1]
            rid = str(self.request_counter)
            self.request_counter += 1
            words = f"reply {rid}: {question}"[: 4 * (params.max_tokens or 16)]
            logprobs = [dict(FIRST_TOKEN)] if params.logprobs else None
            completion = CompletionOutput(0, words, [1, 2, 3], None, logprobs)
            out.append(RequestOutput(rid, None, list(range(7)), None, [completion]))
        return sorted(out, key=lambda o: int(o.request_id))  # as vLLM: in request order


@pytest.fixture(autouse=True)
def _fresh_instances():
    StandInLLM.instances.clear()
    yield
    StandInLLM.instances.clear()


# ----------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pictures")
    paths = []
    for i, (size, color) in enumerate(
        [((64, 48), "red"), ((40, 120), "blue"), ((30, 30), "green")]
    ):
        paths.append(str(folder / f"{i}.png"))
        Image.new("RGB", size, color).save(paths[-1])
    return paths


def conversation(src: str, edited: str, words: str):
    return [
        {"role": "system", "content": [text("You are a judge.")]},
        {"role": "user", "content": [image(src), image(edited), text(words)]},
    ]


def backend(**overrides: Any) -> VLLMEngineVLM:
    kwargs: dict[str, Any] = dict(
        path="Qwen/Qwen3-VL-30B-A3B-Instruct",
        dtype="bfloat16",
        temperature=0.0,
        top_p=1.0,
        max_model_len=32768,
        gpu_memory_utilization=0.8,
        min_pixels=1024,
        max_pixels=1003520,
        engine_factory=STAND_IN,
        gpus=[0],
    )
    kwargs.update(overrides)
    return VLLMEngineVLM(**kwargs)


# ----------------------------------------------------------------------------- tests
def test_one_engine_per_backend_with_the_knobs_passed_through():
    vlm = backend()
    vlm.load()
    vlm.load()
    assert len(StandInLLM.instances) == 1
    engine = StandInLLM.instances[0]
    assert engine.model == "Qwen/Qwen3-VL-30B-A3B-Instruct"
    assert engine.kwargs == {
        "dtype": "bfloat16",
        "tensor_parallel_size": 1,
        "gpu_memory_utilization": 0.8,
        "max_model_len": 32768,
        "limit_mm_per_prompt": {"image": 2, "video": 0},
        "mm_processor_kwargs": {"min_pixels": 1024, "max_pixels": 1003520},
    }
    vlm.close()
    assert engine.shut_down and vlm.engine is None and not vlm.loaded
    vlm.load()  # a new run stage may load it again: a fresh engine
    assert len(StandInLLM.instances) == 2


def test_a_whole_stage_goes_to_the_engine_in_one_call_in_order(pictures):
    vlm = backend()
    convs = [conversation(pictures[i % 3], pictures[(i + 1) % 3], f"q{i}") for i in range(50)]
    replies = vlm.chat(convs, max_new_tokens=64)
    calls = StandInLLM.instances[0].calls
    assert len(calls) == 1 and calls[0]["method"] == "chat"
    assert len(calls[0]["messages"]) == 50
    sent = [conv[-1]["content"][-1]["text"] for conv in calls[0]["messages"]]
    assert sent == [f"q{i}" for i in range(50)]
    assert [r.text for r in replies] == [f"reply {i}: q{i}" for i in range(50)]
    assert all(r.ok and r.model == "Qwen/Qwen3-VL-30B-A3B-Instruct" for r in replies)
    assert replies[0].extra == {"finish_reason": "stop", "prompt_tokens": 7, "completion_tokens": 3}
    # the chat template stays vLLM's (the model's own), content as typed parts
    assert calls[0]["chat_template_content_format"] == "openai"
    assert calls[0]["add_generation_prompt"] is True and calls[0]["use_tqdm"] is False


def test_images_reach_the_engine_as_images_in_order_and_text_in_its_role(pictures):
    vlm = backend()
    vlm.chat([conversation(pictures[0], pictures[1], "Is it red?")], max_new_tokens=8)
    (sent,) = StandInLLM.instances[0].calls[0]["messages"]
    assert [m["role"] for m in sent] == ["system", "user"]
    assert sent[0]["content"] == [{"type": "text", "text": "You are a judge."}]
    parts = sent[1]["content"]
    assert [p["type"] for p in parts] == ["image_pil", "image_pil", "text"]
    source, edited = parts[0]["image_pil"], parts[1]["image_pil"]
    assert isinstance(source, Image.Image) and source.mode == "RGB"
    assert (source.size, edited.size) == ((64, 48), (40, 120))  # source first, then edited
    assert parts[2] == {"type": "text", "text": "Is it red?"}


def test_a_file_shared_by_requests_is_decoded_once_per_call(pictures):
    vlm = backend()
    vlm.chat([conversation(pictures[0], pictures[i], f"q{i}") for i in (1, 2)], 8)
    first, second = StandInLLM.instances[0].calls[0]["messages"]
    assert first[1]["content"][0]["image_pil"] is second[1]["content"][0]["image_pil"]


def test_sampling_params_carry_the_generation_knobs(pictures):
    vlm = backend(temperature=0.7, top_p=0.8, logprobs=5)
    vlm.chat([conversation(pictures[0], pictures[1], "q")], max_new_tokens=33)
    params = StandInLLM.instances[0].calls[0]["sampling_params"]
    assert isinstance(params, SamplingParams)  # the class next to the factory
    assert (params.temperature, params.top_p, params.max_tokens, params.logprobs) == (
        0.7,
        0.8,
        33,
        5,
    )
    plain = backend(logprobs=0)
    plain.chat([conversation(pictures[0], pictures[1], "q")], max_new_tokens=4)
    assert StandInLLM.instances[-1].calls[0]["sampling_params"].logprobs is None
    assert plain.chat([conversation(pictures[0], pictures[1], "q")], 4)[0].logprobs is None
    assert not plain.supports_logprobs and vlm.supports_logprobs


def test_first_token_logprobs_map_to_yes_and_no(pictures):
    assert yes_no_probabilities(FIRST_TOKEN) == pytest.approx({"yes": 0.8, "no": 0.15})
    assert yes_no_probabilities({}) == {"yes": 0.0, "no": 0.0}
    reply = backend().chat([conversation(pictures[0], pictures[1], "q")], 1)[0]
    assert reply.logprobs == pytest.approx({"yes": 0.8, "no": 0.15})


def test_judge_logprob_decision_sends_one_call_per_metric(pictures):
    vlm = backend()
    judge = Judge(
        vlm=vlm,
        metrics=["dimension"],
        batch_size=100000,
        decision="logprob",
        threshold=0.5,
        cache=False,
    )
    reqs = [
        JudgeRequest(f"k{i}", "dimension", "physical", pictures[0], pictures[1], f"x{i}")
        for i in range(50)
    ]
    answers = judge.judge(reqs)
    calls = StandInLLM.instances[0].calls
    assert len(calls) == 1 and len(calls[0]["messages"]) == 50
    assert calls[0]["sampling_params"].max_tokens == 1
    assert all(a.status == "ok" and a.value.value == "yes" for a in answers)
    assert answers[0].logprobs == pytest.approx({"yes": 0.8, "no": 0.15})


def test_every_metric_of_a_stage_goes_in_one_engine_call(pictures):
    judge = Judge(
        vlm=backend(),
        metrics=["dimension", "if", "sc"],
        retries=0,
        max_new_tokens=64,
        batch_size=100000,
        cache=False,
    )
    reqs = [
        JudgeRequest(f"k{i}/{m}", m, "physical", pictures[0], pictures[1], f"x{i}")
        for i in range(20)
        for m in ("dimension", "if", "sc")
    ]
    answers = judge.judge(reqs)
    (engine,) = StandInLLM.instances
    assert len(engine.calls) == 1 and len(engine.calls[0]["messages"]) == 60
    assert len(answers) == 60  # the stand-in's text is no JSON: unscored, nothing re-asked
    assert all(a.status == "unscored" and a.attempts == 1 for a in answers)


def test_a_refused_call_falls_back_to_one_reply_per_request(pictures):
    vlm = backend()
    three = conversation(pictures[0], pictures[1], "three")
    three[1]["content"].insert(0, image(pictures[2]))
    replies = vlm.chat([conversation(pictures[0], pictures[1], "ok"), three], 8)
    assert replies[0].ok and replies[0].text.endswith(": ok")
    assert not replies[1].ok and replies[1].error_type == "ValueError"
    assert "At most 2 image(s)" in replies[1].error


def test_gpus_become_the_engines_visible_devices_and_the_env_is_restored(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    backend(gpus=[2, 3], tensor_parallel_size=2).load()
    engine = StandInLLM.instances[0]
    assert engine.visible_devices == "2,3" and engine.kwargs["tensor_parallel_size"] == 2
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    # ids count within what this process already sees, as cuda:N does elsewhere
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    backend(gpus=[2, 3], tensor_parallel_size=2).load()
    assert StandInLLM.instances[1].visible_devices == "6,7"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "4,5,6,7"


@pytest.mark.parametrize("gpus,tp", [([0], 2), ([], 1), ([1, 2], 3)])
def test_more_tensor_parallel_ranks_than_gpus_is_an_error_naming_both_keys(monkeypatch, gpus, tp):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    vlm = backend(gpus=gpus, tensor_parallel_size=tp)
    with pytest.raises(ValueError, match="tensor_parallel_size") as err:
        vlm.load()
    assert "gpus=" in str(err.value)
    assert not StandInLLM.instances and "CUDA_VISIBLE_DEVICES" not in os.environ


def test_bad_gpu_ids_and_a_missing_factory_are_clear_errors(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with pytest.raises(ValueError, match="must be below 2"):
        backend(gpus=[3]).load()
    with pytest.raises(ValueError, match="distinct"):
        backend(gpus=[1, 1]).load()
    with pytest.raises(RuntimeError, match="no callable 'NoSuchLLM'"):
        backend(engine_factory=f"{__name__}.NoSuchLLM").load()
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"


def test_fingerprint_follows_the_answers_not_the_layout():
    base = backend().fingerprint()
    assert base["backend"] == "vllm" and base["path"] == "Qwen/Qwen3-VL-30B-A3B-Instruct"
    assert (
        backend(gpu_memory_utilization=0.5, gpus=[1, 2], tensor_parallel_size=2).fingerprint()
        == base
    )
    assert backend(temperature=0.5).fingerprint() != base
    assert backend(max_pixels=4096).fingerprint() != base


def test_the_yaml_composes_and_builds_without_vllm(compose):
    cfg = compose("judge=qwen3_vl_vllm", f"judge.vlm.engine_factory={STAND_IN}")
    judge = instantiate(cfg.judge, what="judge")
    vlm = judge.vlm
    assert isinstance(vlm, VLLMEngineVLM) and not vlm.loaded and not StandInLLM.instances
    assert judge.batch_size >= 100000 and vlm.batch_size >= judge.batch_size
    s = vlm.settings
    assert (s.tensor_parallel_size, s.limit_mm_per_prompt, s.logprobs) == (1, 2, 20)
    assert vlm.path == "Qwen/Qwen3-VL-30B-A3B-Instruct" and s.dtype == "bfloat16"
    assert s.temperature == 0.0 and judge.decision == "generate"


# ----------------------------------------------------------------------------- the real engine
@pytest.mark.gpu
def test_real_vllm_engine_on_a_tiny_model(pictures):
    """The real ``vllm.LLM`` on the tiny random-weight Qwen3-VL (or REEDIT_VLLM_TEST_MODEL, a
    local folder or a downloaded hub id): it starts, answers every request and gives yes/no
    probabilities. Random weights answer gibberish; this checks the plumbing, not the words."""
    pytest.importorskip("vllm")  # the optional [vllm] extra: GPU machines only
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    vlm = VLLMEngineVLM(
        path=os.environ.get("REEDIT_VLLM_TEST_MODEL", "tiny:qwen3_vl"),
        dtype="bfloat16",
        temperature=0.0,
        gpu_memory_utilization=0.3,
        max_model_len=4096,
        logprobs=5,
        engine_kwargs={"enforce_eager": True, "max_num_seqs": 8},
        gpus=[0],
    )
    try:
        convs = [
            conversation(pictures[i % 3], pictures[(i + 1) % 3], f"Is it red? {i}")
            for i in range(6)
        ]
        replies = vlm.chat(convs, max_new_tokens=4)
        assert len(replies) == 6 and all(r.ok for r in replies), [r.error for r in replies]
        assert all(set(r.logprobs) == {"yes", "no"} for r in replies)
        assert all(0.0 <= p <= 1.0 for r in replies for p in r.logprobs.values())
        again = vlm.chat(convs[:1], max_new_tokens=4)  # greedy: the same answer
        assert again[0].text == replies[0].text
    finally:
        vlm.close()
