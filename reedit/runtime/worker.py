"""``python -m reedit.runtime.worker``: one model (an editor or a VLM backend) in its own
interpreter, serving the parent over JSON lines. Standard library only at import: the model's
environment needs neither reedit installed (``PYTHONPATH`` finds it) nor Hydra, OmegaConf or W&B.

Protocol (one JSON object per line; version :data:`PROTOCOL`):

- parent → worker ``{"op": "hello", "version", "target", "settings", "gpus", "paths"}``; the worker
  builds the class with those settings (``paths`` resolves ``tiny:`` names the parent resolved),
  loads it and answers ``{"op": "ready", "version", "load_seconds", "pid", "info"}`` or
  ``{"op": "failed", "error_type", "error"}``.
- ``{"op": "edit" | "edit_steps", "id", "requests": [...], "out_dir"}`` → ``{"op": "result", "id",
  "results": [{"path", "size", "seconds", "error_type", "error", "details"}]}``: images cross as
  file paths; an output is written to a temporary name in ``out_dir`` and renamed before it is
  reported; ``details`` is what the model said about the edit (``Edited``), or null.
- ``{"op": "chat", "id", "conversations", "max_new_tokens"}`` → ``{"op": "result", "id",
  "replies": [...]}`` (images in the conversations are file paths).
- ``{"op": "close"}``: close the model and exit 0. End of stdin (the parent died): exit at once.

File descriptor 1 is pointed at stderr at the OS level before the model is imported, so prints
from the model's Python and C code never reach the protocol channel (a duplicate of the original
stdout); stderr goes to the parent's log.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
import threading
import time
import traceback
from typing import Any

PROTOCOL = 1


class Channel:
    """The protocol channel: the original stdout, before fd 1 was pointed at stderr."""

    def __init__(self) -> None:
        self._out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
        os.dup2(2, 1)  # C code writing to fd 1 now writes to stderr
        sys.stdout = sys.stderr
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, default=str)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()


def build(hello: dict[str, Any]) -> Any:
    module, _, name = hello["target"].rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    settings = cls.Settings(**hello["settings"])  # the parent's own fields: none to drop
    paths = hello.get("paths") or {}
    return cls(settings, gpus=hello.get("gpus") or [], locate=lambda p: paths.get(p, p))


def _edit(model: Any, message: dict[str, Any]) -> dict[str, Any]:
    from pathlib import Path

    from reedit.models.base import EditRequest, StepsRequest
    from reedit.records import write_image_atomic

    kind = StepsRequest if message["op"] == "edit_steps" else EditRequest
    requests = [kind(**r) for r in message["requests"]]
    results = (model.edit_steps if kind is StepsRequest else model.edit)(requests)
    out_dir = Path(message["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    sent = []
    for req, res in zip(requests, results):
        path = None
        if res.ok:
            safe = req.key.replace("/", "__")
            path = out_dir / f"{os.getpid()}-{message['id']}-{safe}.png"
            write_image_atomic(res.image, path, int(message.get("compress_level", 1)))
        sent.append(
            {
                "path": str(path) if path else None,
                "size": list(res.image.size) if res.ok else None,
                "seconds": res.seconds,
                "error_type": res.error_type,
                "error": res.error,
                "details": res.details,
            }
        )
    return {"results": sent}


def _chat(model: Any, message: dict[str, Any]) -> dict[str, Any]:
    replies = model.chat(message["conversations"], int(message["max_new_tokens"]))
    return {"replies": [dataclasses.asdict(r) for r in replies]}


def serve(channel: Channel, stdin: Any) -> int:
    hello = json.loads(stdin.readline() or "null")
    if not isinstance(hello, dict) or hello.get("op") != "hello":
        channel.send({"op": "failed", "error_type": "ProtocolError", "error": "no hello"})
        return 2
    if hello.get("version") != PROTOCOL:
        channel.send(
            {
                "op": "failed",
                "error_type": "ProtocolMismatch",
                "error": f"worker speaks protocol {PROTOCOL}, parent {hello.get('version')}",
                "version": PROTOCOL,
            }
        )
        return 2
    t0 = time.perf_counter()
    try:
        model = build(hello)
        model.load()
    except BaseException as exc:  # the parent reports it; the traceback goes to the log
        traceback.print_exc()
        channel.send({"op": "failed", "error_type": type(exc).__name__, "error": str(exc)})
        return 1
    info = model.info() if hasattr(model, "info") else {}
    channel.send(
        {
            "op": "ready",
            "version": PROTOCOL,
            "load_seconds": time.perf_counter() - t0,
            "pid": os.getpid(),
            "info": info,
        }
    )
    handlers = {"edit": _edit, "edit_steps": _edit, "chat": _chat}
    for line in stdin:
        message = json.loads(line)
        op = message.get("op")
        if op == "close":
            model.close()
            return 0
        try:
            answer = handlers[op](model, message)
            channel.send({"op": "result", "id": message.get("id"), **answer})
        except Exception as exc:  # this request's error; the worker goes on
            traceback.print_exc()
            channel.send(
                {
                    "op": "error",
                    "id": message.get("id"),
                    "error_type": type(exc).__name__,
                    "error": str(exc),
                    # an OSError's number (a full disk is the run's error, not the request's)
                    "errno": getattr(exc, "errno", None),
                    "filename": getattr(exc, "filename", None),
                }
            )
    return 0  # end of stdin: the parent is gone


def _watch_parent(parent: int) -> None:
    """Exit when the parent is gone (killed mid-request: stdin's end is not read until later)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(3)


def main() -> None:
    channel = Channel()
    stdin = os.fdopen(os.dup(0), "r", encoding="utf-8")
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    code = serve(channel, stdin)
    sys.stderr.flush()
    os._exit(code)  # no interpreter teardown: a model's threads cannot hang it


if __name__ == "__main__":
    main()
