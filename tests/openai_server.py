"""A minimal threaded HTTP server on 127.0.0.1 speaking the chat-completions wire format, scripted
per test (tests/test_openai_api.py, and a run's judge in tests/test_tracking.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SNAPSHOT = "gpt-4o-2024-08-06"


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict: JSON; bytes/str: sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def completion(content: str | None = "hello", finish: str = "stop", **extra: Any) -> dict:
    message = {"role": "assistant", "content": content, **extra.pop("message", {})}
    choice = {"index": 0, "message": message, "finish_reason": finish, **extra}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": SNAPSHOT,
        "system_fingerprint": "fp_test",
        "choices": [choice],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
    }


class FakeServer:
    """Records every request (path, headers, JSON body) and answers ``responder(n, body)``,
    n being the 0-based arrival index; counts requests being processed at once."""

    def __init__(self, responder: Callable[[int, dict], Response]) -> None:
        self.responder = responder
        self.requests: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self.inflight = self.max_inflight = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw)
                with fake.lock:
                    n = len(fake.requests)
                    fake.requests.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                        }
                    )
                    fake.arrivals.append(time.monotonic())
                    fake.inflight += 1
                    fake.max_inflight = max(fake.max_inflight, fake.inflight)
                try:
                    resp = fake.responder(n, body)
                    time.sleep(resp.delay)
                finally:
                    with fake.lock:  # before answering: the client may send its next one at once
                        fake.inflight -= 1
                payload = resp.body
                if isinstance(payload, dict):
                    payload = json.dumps(payload)
                if isinstance(payload, str):
                    payload = payload.encode()
                try:
                    self.send_response(resp.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload or b"")))
                    for k, v in resp.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload or b"")
                except OSError:  # the client gave up (timeout)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def sequence(*responses: Response) -> Callable[[int, dict], Response]:
    """The n-th request gets the n-th response (the last one repeats)."""
    return lambda n, _body: responses[min(n, len(responses) - 1)]
