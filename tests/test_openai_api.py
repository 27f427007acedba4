"""The OpenAI-compatible backend against servers on 127.0.0.1 only.

(a) A minimal threaded HTTP server speaking the chat-completions wire format, scripted per test,
    for what a real server will not do on demand: 429 with Retry-After, 5xx, slow answers,
    malformed bodies, refusals, content filters, log-probs; plus concurrency and request identity.
(b) A real ``transformers serve`` (the ``transformers[serving]`` extra) serving the tiny random
    Qwen3-VL built locally.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from openai_server import SNAPSHOT, FakeServer, Response, completion, sequence
from PIL import Image

from reedit.config import instantiate
from reedit.judge import Judge, JudgeRequest
from reedit.models.vlm.base import image, text
from reedit.models.vlm.openai_api import OpenAIVLM


@pytest.fixture
def serve():
    servers: list[FakeServer] = []

    def start(responder: Callable[[int, dict], Response]) -> FakeServer:
        servers.append(FakeServer(responder))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def backend(server: FakeServer, **kwargs: Any) -> OpenAIVLM:
    options: dict[str, Any] = {
        "base_url": server.url,
        "model": "gpt-4o",
        "api_key_env": None,
        "timeout": 5.0,
        "max_retries": 2,
        "backoff_base": 0.01,  # a malformed body's retry (the client's own: 0.5 s and up)
    }
    vlm = OpenAIVLM(**(options | kwargs))
    vlm.load()
    return vlm


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pictures")
    red, gradient = folder / "red.png", folder / "gradient.jpg"
    Image.new("RGB", (64, 48), "red").save(red)
    grad = Image.linear_gradient("L").resize((200, 100)).convert("RGB")
    grad.save(gradient, quality=95)
    return str(red), str(gradient)


def conv(pictures, words: str = "Is it red?"):
    return [
        {"role": "system", "content": [text("You are a judge.")]},
        {"role": "user", "content": [image(pictures[0]), text(words)]},
    ]


def request(pictures, key: str = "k0") -> JudgeRequest:
    return JudgeRequest(key, "dimension", "physical", pictures[0], pictures[0], "make it red")


def decoded_images(body: dict) -> list[Image.Image]:
    out = []
    for msg in body["messages"]:
        if isinstance(msg["content"], str):
            continue
        for part in msg["content"]:
            if part["type"] == "image_url":
                url = part["image_url"]["url"]
                assert url.startswith("data:image/png;base64,")
                data = base64.b64decode(url.removeprefix("data:image/png;base64,"))
                assert data.startswith(b"\x89PNG\r\n\x1a\n")
                out.append(Image.open(io.BytesIO(data)))
    return out


# ----------------------------------------------------------------------------- the wire format
def test_request_shape_images_as_png_data_uris_and_reply_fields(serve, pictures):
    server = serve(sequence(Response(body=completion("  an answer  "))))
    vlm = backend(server, temperature=0.0, top_p=0.9)
    convs = [
        [
            {"role": "system", "content": [text("You are a judge.")]},
            {"role": "user", "content": [image(pictures[0]), image(pictures[1]), text("Q?")]},
        ]
    ]
    (reply,) = vlm.chat(convs, max_new_tokens=7)
    assert reply.ok and reply.text == "an answer"
    assert reply.model == SNAPSHOT  # the server's string, not the configured "gpt-4o"
    assert reply.extra["finish_reason"] == "stop" and reply.extra["system_fingerprint"] == "fp_test"
    assert reply.logprobs is None and reply.seconds > 0
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions"
    body = req["body"]
    assert body["model"] == "gpt-4o" and body["max_tokens"] == 7
    assert body["temperature"] == 0.0 and body["top_p"] == 0.9
    assert "logprobs" not in body and "authorization" not in req["headers"]
    assert body["messages"][0] == {"role": "system", "content": "You are a judge."}
    user = body["messages"][1]["content"]
    assert [p["type"] for p in user] == ["image_url", "image_url", "text"]
    red, grad = decoded_images(body)
    assert red.size == (64, 48) and red.getpixel((5, 5)) == (255, 0, 0)
    with Image.open(pictures[1]) as jpeg:  # a JPEG file travels as a PNG of the same pixels
        assert grad.size == jpeg.size and grad.convert("RGB").tobytes() == jpeg.tobytes()
    vlm.close()


def test_max_side_downscales_keeping_the_aspect_ratio(serve, pictures):
    server = serve(sequence(Response(body=completion())))
    vlm = backend(server, max_side=50, image_detail="low")
    convs = [[{"role": "user", "content": [image(pictures[0]), image(pictures[1]), text("Q")]}]]
    assert vlm.chat(convs, 4)[0].ok
    body = server.requests[0]["body"]
    assert [im.size for im in decoded_images(body)] == [(50, 38), (50, 25)]
    assert body["messages"][0]["content"][0]["image_url"]["detail"] == "low"
    vlm.close()


def test_api_key_from_the_env_var_only_and_never_in_replies_or_records(
    serve, pictures, monkeypatch
):
    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("REEDIT_TEST_OPENAI_KEY", secret)
    # The server echoes the Authorization header back in an error body.
    server = serve(
        lambda n, _b: (
            Response(body=completion('{"score": "yes", "reasoning": "ok"}'))
            if n == 0
            else Response(401, {"error": {"message": f"bad key {secret}"}})
        )
    )
    vlm = backend(server, api_key_env="REEDIT_TEST_OPENAI_KEY")
    judge = Judge(vlm=vlm, metrics=["dimension"], retries=0, max_new_tokens=64, cache=False)
    (ok,) = judge.judge([request(pictures)])
    (denied,) = judge.judge([request(pictures)])
    assert ok.status == "ok" and ok.value.value == "yes" and ok.model == SNAPSHOT
    assert denied.status == "error" and denied.error_type == "HTTP401" and "***" in denied.error
    assert [r["headers"]["authorization"] for r in server.requests] == [f"Bearer {secret}"] * 2
    seen = repr([ok, denied]) + json.dumps(judge.fingerprint()) + repr(vlm)
    assert secret not in seen and "REEDIT_TEST_OPENAI_KEY" not in json.dumps(vlm.fingerprint())
    vlm.close()


def test_a_missing_key_variable_is_named(monkeypatch):
    monkeypatch.delenv("REEDIT_NO_SUCH_KEY", raising=False)
    vlm = OpenAIVLM(
        base_url="http://127.0.0.1:9/v1", model=SNAPSHOT, api_key_env="REEDIT_NO_SUCH_KEY"
    )
    with pytest.raises(RuntimeError, match="REEDIT_NO_SUCH_KEY"):
        vlm.load()


def test_azure_style_url_and_headers(serve, pictures, monkeypatch):
    monkeypatch.setenv("REEDIT_TEST_AZURE_KEY", "azure-key")
    server = serve(sequence(Response(body=completion())))
    vlm = OpenAIVLM(
        base_url=server.url.removesuffix("/v1") + "/openai/deployments/gpt4o/",
        model="gpt-4o",
        api_key_env="REEDIT_TEST_AZURE_KEY",
        api_version="2024-10-21",
        azure=True,
        extra_headers={"X-Team": "reedit"},
        max_tokens_param="max_completion_tokens",
        temperature=None,
    )
    assert vlm.chat([conv(pictures)], 9)[0].ok
    (req,) = server.requests
    assert req["path"] == "/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
    assert req["headers"]["api-key"] == "azure-key" and "authorization" not in req["headers"]
    assert req["headers"]["x-team"] == "reedit"
    assert req["body"]["max_completion_tokens"] == 9 and "max_tokens" not in req["body"]
    assert "temperature" not in req["body"]
    vlm.close()


def test_headers_the_config_gives_are_sent_and_the_environment_adds_none(
    serve, pictures, monkeypatch
):
    """An Authorization header in extra_headers (an Entra ID token, a gateway's) is sent as
    given; the client's OPENAI_ORG_ID / OPENAI_PROJECT_ID are not sent to any endpoint."""
    monkeypatch.setenv("OPENAI_ORG_ID", "org-from-env")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-from-env")
    server = serve(sequence(Response(body=completion())))
    vlm = backend(server, azure=True, extra_headers={"Authorization": "Bearer entra-token"})
    assert vlm.chat([conv(pictures)], 4)[0].ok
    headers = server.requests[0]["headers"]
    assert headers["authorization"] == "Bearer entra-token"
    assert "openai-organization" not in headers and "openai-project" not in headers
    vlm.close()


# ----------------------------------------------------------------------------- faults
@pytest.mark.parametrize(
    ("header", "value", "wait"), [("Retry-After", "2", 2.0), ("retry-after-ms", "1500", 1.5)]
)
def test_429_honours_retry_after(serve, pictures, header, value, wait):
    server = serve(
        sequence(
            Response(429, {"error": {"message": "slow down"}}, {header: value}),
            Response(body=completion()),
        )
    )
    vlm = backend(server)
    (reply,) = vlm.chat([conv(pictures)], 4)
    assert reply.ok and len(server.requests) == 2
    waited = server.arrivals[1] - server.arrivals[0]
    assert wait <= waited < wait + 3.0  # the hint (slack for a loaded machine)
    vlm.close()


def test_500_then_success_and_persistent_500_gives_up(serve, pictures):
    server = serve(sequence(Response(500, "oops"), Response(body=completion("fine"))))
    vlm = backend(server)
    (reply,) = vlm.chat([conv(pictures)], 4)
    assert reply.text == "fine" and len(server.requests) == 2
    vlm.close()

    server = serve(sequence(Response(503, {"error": {"message": "overloaded"}})))
    vlm = backend(server, max_retries=2)
    (reply,) = vlm.chat([conv(pictures)], 4)
    assert not reply.ok and reply.error_type == "HTTP503" and "max_retries=2" in reply.error
    assert len(server.requests) == 3
    vlm.close()


def test_a_client_error_is_not_retried(serve, pictures):
    server = serve(sequence(Response(400, {"error": {"message": "bad request"}})))
    vlm = backend(server)
    (reply,) = vlm.chat([conv(pictures)], 4)
    assert reply.error_type == "HTTP400" and "bad request" in reply.error
    assert len(server.requests) == 1
    vlm.close()


def test_a_slow_answer_times_out_and_is_retried(serve, pictures):
    server = serve(
        sequence(Response(body=completion("late"), delay=1.5), Response(body=completion("on time")))
    )
    vlm = backend(server, timeout=0.3)
    (reply,) = vlm.chat([conv(pictures)], 4)
    assert reply.text == "on time" and len(server.requests) == 2
    # gave up on the slow one: the retry arrived before the slow answer was even sent
    assert server.arrivals[1] - server.arrivals[0] < 1.5

    server = serve(sequence(Response(body=completion(), delay=1.0)))
    vlm = backend(server, timeout=0.2, max_retries=1)
    (reply,) = vlm.chat([conv(pictures)], 4)
    assert reply.error_type == "Timeout" and len(server.requests) == 2
    vlm.close()


def test_malformed_json_is_retried_then_reported(serve, pictures):
    server = serve(sequence(Response(body="{not json"), Response(body=completion("good"))))
    vlm = backend(server)
    assert vlm.chat([conv(pictures)], 4)[0].text == "good" and len(server.requests) == 2

    server = serve(sequence(Response(body={"unexpected": True})))
    vlm = backend(server, max_retries=1)
    (reply,) = vlm.chat([conv(pictures)], 4)
    assert reply.error_type == "MalformedResponse" and len(server.requests) == 2
    vlm.close()


def test_a_dead_server_is_a_connection_error(pictures):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    vlm = OpenAIVLM(
        base_url=f"http://127.0.0.1:{port}/v1",
        model=SNAPSHOT,
        api_key_env=None,
        max_retries=1,
    )
    (reply,) = vlm.chat([conv(pictures)], 4)
    assert reply.error_type == "ConnectionError"


# ----------------------------------------------------------------------------- refusals
def test_a_refusal_is_unscored_with_its_reason_not_retried(serve, pictures):
    server = serve(
        sequence(Response(body=completion(None, message={"refusal": "I can't help with that."})))
    )
    judge = Judge(vlm=backend(server), metrics=["dimension", "if"], max_new_tokens=64, cache=False)
    reqs = [request(pictures, "a"), JudgeRequest("b", "if", "physical", *pictures, "x")]
    answers = judge.judge(reqs)
    for a in answers:
        assert a.status == "unscored" and a.error_type == "Refusal"
        assert a.error == "I can't help with that." and a.attempts == 1 and a.model == SNAPSHOT
    assert len(server.requests) == 2


def test_a_content_filter_answer_is_unscored_with_the_categories(serve, pictures):
    filtered = completion(
        None,
        finish="content_filter",
        content_filter_results={
            "violence": {"filtered": True, "severity": "medium"},
            "hate": {"filtered": False, "severity": "safe"},
        },
    )
    server = serve(sequence(Response(body=filtered)))
    (a,) = Judge(vlm=backend(server), metrics=["dimension"], max_new_tokens=64, cache=False).judge(
        [request(pictures)]
    )
    assert a.status == "unscored" and a.error_type == "ContentFilter"
    assert a.error == "finish_reason=content_filter (violence)" and a.attempts == 1

    # Azure filters a prompt with HTTP 400 and error.code content_filter.
    body = {"error": {"code": "content_filter", "message": "The prompt was filtered."}}
    server = serve(sequence(Response(400, body)))
    (a,) = Judge(vlm=backend(server), metrics=["dimension"], max_new_tokens=64, cache=False).judge(
        [request(pictures)]
    )
    assert a.status == "unscored" and a.error_type == "ContentFilter"
    assert "prompt was filtered" in a.error and len(server.requests) == 1


# ----------------------------------------------------------------------------- log-probs
def logprob_reply(probs: dict[str, float]) -> dict:
    top = [
        {"token": t, "logprob": math.log(p), "bytes": list(t.encode())} for t, p in probs.items()
    ]
    first = {"token": top[0]["token"], "logprob": top[0]["logprob"], "top_logprobs": top}
    return completion(top[0]["token"], finish="length", logprobs={"content": [first]})


def test_logprobs_feed_the_logprob_decision(serve, pictures):
    probs = {"Yes": 0.5, " yes": 0.1, "YES": 0.05, "No": 0.2, " no": 0.05, "Maybe": 0.1}
    server = serve(sequence(Response(body=logprob_reply(probs))))
    vlm = backend(server, logprobs=True)
    assert vlm.supports_logprobs
    judge = Judge(
        vlm=vlm,
        metrics=["dimension"],
        max_new_tokens=64,
        decision="logprob",
        threshold=0.7,
        cache=False,
    )
    (a,) = judge.judge([request(pictures)])
    assert a.status == "ok" and a.value.value == "yes" and a.model == SNAPSHOT
    assert a.logprobs == pytest.approx({"yes": 0.65, "no": 0.25})
    assert "P(yes)=0.7222" in a.value.reasoning
    body = server.requests[0]["body"]
    assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["max_tokens"] == 1
    vlm.close()


def test_logprob_decision_needs_logprobs_in_the_config(serve):
    server = serve(sequence(Response(body=completion())))
    with pytest.raises(ValueError, match="logprob"):
        Judge(
            vlm=backend(server),
            metrics=["dimension"],
            max_new_tokens=64,
            decision="logprob",
            cache=False,
        )


def test_an_endpoint_without_logprobs_leaves_the_verdict_unscored(serve, pictures):
    server = serve(sequence(Response(body=completion("yes"))))
    judge = Judge(
        vlm=backend(server, logprobs=True),
        metrics=["dimension"],
        max_new_tokens=64,
        decision="logprob",
        cache=False,
    )
    (a,) = judge.judge([request(pictures)])
    assert a.status == "unscored" and "no probability" in a.error and a.raw == ["yes"]


# ----------------------------------------------------------------------------- concurrency
MARKER = re.compile(r"request-marker-(\d+)")


def test_concurrency_is_bounded_and_every_request_arrives_exactly_once(serve, pictures):
    def respond(_n: int, body: dict) -> Response:
        (marker,) = MARKER.findall(json.dumps(body))
        delay = random.Random(int(marker)).uniform(0.01, 0.06)  # answers finish out of order
        return Response(body=completion(f"answer {marker}"), delay=delay)

    server = serve(respond)
    vlm = backend(server, max_concurrency=3, batch_size=16)
    convs = [conv(pictures, f"request-marker-{i}") for i in range(40)]
    replies = vlm.chat(convs, 4)
    assert [r.text for r in replies] == [f"answer {i}" for i in range(40)]
    seen = Counter(int(MARKER.findall(json.dumps(r["body"]))[0]) for r in server.requests)
    assert seen == Counter(range(40))  # none lost, none duplicated
    assert 2 <= server.max_inflight <= 3
    vlm.close()


def test_retries_under_concurrency_lose_and_duplicate_nothing(serve, pictures):
    failed: set[str] = set()
    lock = threading.Lock()

    def respond(_n: int, body: dict) -> Response:
        (marker,) = MARKER.findall(json.dumps(body))
        with lock:
            first = marker not in failed
            failed.add(marker)
        if first and int(marker) % 3 == 0:  # every third fails once
            return Response(500, "transient")
        return Response(body=completion(f"answer {marker}"), delay=0.01)

    server = serve(respond)
    vlm = backend(server, max_concurrency=4)
    replies = vlm.chat([conv(pictures, f"request-marker-{i}") for i in range(12)], 4)
    assert [r.text for r in replies] == [f"answer {i}" for i in range(12)]
    seen = Counter(int(MARKER.findall(json.dumps(r["body"]))[0]) for r in server.requests)
    assert seen == Counter({i: 2 if i % 3 == 0 else 1 for i in range(12)})
    assert server.max_inflight <= 4
    vlm.close()


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize("group", ["judge", "refiner"])
def test_the_yaml_builds_the_backend(compose, group, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-used")
    cfg = compose(f"{group}=openai", f"{group}.vlm.max_side=768")
    obj = instantiate(cfg[group], what=group)
    vlm = obj.vlm
    assert isinstance(vlm, OpenAIVLM) and vlm.settings.max_side == 768
    assert vlm.base_url == "https://api.openai.com/v1" and vlm.settings.model == SNAPSHOT
    assert vlm.settings.api_key_env == "OPENAI_API_KEY" and vlm.settings.max_concurrency == 8
    assert not vlm.supports_logprobs and vlm.fingerprint()["backend"] == "openai"


# ----------------------------------------------------------------------------- a real server
SERVED_ID = "Qwen/Qwen3-VL-2B-Instruct"  # the tiny model, under a realistic id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def transformers_serve(tmp_path_factory):
    # transformers serve needs the transformers[serving] extra (in reedit's [dev] extras): a
    # missing install must fail here, not skip
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401

    from reedit.testing.vlms import ensure_vlm

    work = tmp_path_factory.mktemp("serve")
    (work / "Qwen").mkdir()
    (work / SERVED_ID).symlink_to(ensure_vlm("qwen3_vl"), target_is_directory=True)
    port = free_port()
    log = open(work / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "transformers.cli.transformers", "serve", SERVED_ID]
        + ["--device", "cpu", "--host", "127.0.0.1", "--port", str(port)],
        cwd=work,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (work / "serve.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"transformers serve did not come up (rc={proc.poll()}):\n{tail}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        log.close()


def test_a_real_transformers_serve_answers_through_the_judge(transformers_serve, pictures):
    vlm = OpenAIVLM(
        base_url=transformers_serve,
        model=SERVED_ID,
        api_key_env=None,
        max_concurrency=2,
        timeout=30,
        max_retries=1,
        max_side=32,
    )
    replies = vlm.chat([conv(pictures, "Is it red?"), conv(pictures[::-1], "Is it blue?")], 8)
    for r in replies:
        assert r.ok and isinstance(r.text, str), r  # random weights: any text, often empty
        assert r.model == SERVED_ID and r.extra["usage"]["completion_tokens"] <= 8
    judge = Judge(
        vlm=vlm, metrics=["dimension", "if"], retries=0, max_new_tokens=8, batch_size=4, cache=False
    )
    reqs = [request(pictures, "a"), JudgeRequest("b", "if", "physical", *pictures, "x")]
    for a in judge.judge(reqs):
        # Garbage from random weights is unscored (never an error), with the model recorded.
        assert a.status in ("ok", "unscored") and a.error_type != "HTTP400", a
        assert a.model == SERVED_ID and a.attempts == 1 and len(a.raw) == 1
    vlm.close()


def test_transformers_serve_ignores_logprobs(transformers_serve, pictures):
    vlm = OpenAIVLM(
        base_url=transformers_serve, model=SERVED_ID, api_key_env=None, logprobs=True, timeout=30
    )
    judge = Judge(
        vlm=vlm,
        metrics=["dimension"],
        retries=0,
        max_new_tokens=8,
        batch_size=4,
        decision="logprob",
        cache=False,
    )
    (a,) = judge.judge([request(pictures)])
    assert a.status == "unscored" and "no probability" in a.error and a.model == SERVED_ID
    vlm.close()
