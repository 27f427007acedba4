"""An editor or a VLM backend whose model runs in a worker: the same interface as the class it
stands for (built here, never loaded here, for its settings, ``info`` and fingerprint), with each
chunk of requests sent to the worker. Images go as file paths; an edit comes back as a file in
the run folder that the image writer renames into place (no decoding and encoding again).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reedit.files import NO_SPACE
from reedit.models.base import Editor, EditRequest, EditResult, StepsRequest
from reedit.models.vlm.base import VLM, Conversation, VLMReply
from reedit.runtime.workers import WorkerConfig, WorkerLost, WorkerProcess


class _Hosted:
    """What both proxies share: the worker, started at load and stopped at close."""

    inner: Any
    worker: WorkerProcess
    scratch: Path | None = None  # the run folder's temporary files (ModelPool.use_scratch)

    def _setup(self, inner: Any, config: WorkerConfig) -> None:
        self.inner = inner
        gpus = list(inner.gpus)
        settings = {
            f.name: getattr(inner.settings, f.name)
            for f in dataclasses.fields(inner.settings)
            if f.name != "runtime"
        }
        hello = {
            "target": f"{type(inner).__module__}.{type(inner).__qualname__}",
            "settings": settings,
            "gpus": list(range(len(gpus))),  # what the worker sees under CUDA_VISIBLE_DEVICES
        }
        self.worker = WorkerProcess(config, hello, gpus)

    def _load(self) -> None:
        path = getattr(self.inner.settings, "path", None)  # tiny:<name>: resolved (built) here
        if isinstance(path, str) and self.inner.locate(path) != path:
            self.worker.hello["paths"] = {path: self.inner.locate(path)}
        self.worker.start()

    def _close(self) -> None:
        self.worker.stop()

    @property
    def label(self) -> str:
        return f"{type(self.inner).__name__} (worker)"

    def runtime_info(self) -> dict[str, Any]:
        return {
            "runtime": "worker",
            "gpus": list(self.inner.gpus),  # the run's device ids behind the worker's cuda:0..
            "pid": self.worker.ready.get("pid"),
        }

    def _out_dir(self) -> Path:
        if self.scratch is None:
            self.scratch = Path(tempfile.mkdtemp(prefix="reedit-worker-"))
        return self.scratch


class WorkerEditor(_Hosted, Editor):
    def __init__(self, inner: Editor, config: WorkerConfig) -> None:
        Editor.__init__(self, inner.settings, gpus=inner.gpus)
        self._setup(inner, config)
        self.kind = inner.kind

    def info(self) -> dict[str, Any]:
        return {**(self.worker.ready.get("info") or self.inner.info()), **self.runtime_info()}

    def _edit(self, requests: Sequence[EditRequest]) -> list[Any]:  # never called: see edit
        raise NotImplementedError

    def edit(self, requests: Sequence[EditRequest]) -> list[EditResult]:
        return self._send("edit", list(requests))

    def edit_steps(self, requests: Sequence[StepsRequest]) -> list[EditResult]:
        return self._send("edit_steps", list(requests))

    def _send(self, op: str, requests: list[Any]) -> list[EditResult]:
        if not self.loaded:
            self.load()
        out: list[EditResult] = []
        for start in range(0, len(requests), self.batch_size):
            chunk = [self._as_files(r) for r in requests[start : start + self.batch_size]]
            message = {"op": op, "requests": chunk, "out_dir": str(self._out_dir())}
            try:
                answer = self.worker.request(message)
            except WorkerLost as lost:
                out += [EditResult(None, 0.0, "WorkerLost", str(lost)) for _ in chunk]
                continue
            if answer.get("op") == "error":
                if answer.get("errno") in NO_SPACE:  # the run stops; the units stay to do
                    raise OSError(answer["errno"], answer.get("error"), answer.get("filename"))
                error = (answer.get("error_type"), answer.get("error"))
                out += [EditResult(None, 0.0, *error) for _ in chunk]
                continue
            for res in answer["results"]:
                path = Path(res["path"]) if res.get("path") else None
                size = tuple(res["size"]) if res.get("size") else None
                error = (res["error_type"], res["error"])
                details = res.get("details")
                out.append(EditResult(path, res["seconds"], *error, size, details=details))
        return out

    def _as_files(self, req: Any) -> dict[str, Any]:
        fields = dataclasses.asdict(req)
        if not isinstance(req.image, (str, Path)):  # a PIL image: hand it over as a file
            from reedit.records import write_image_atomic

            path = self._out_dir() / f"input-{req.key.replace('/', '__')}.png"
            write_image_atomic(req.image, path, 0)
            fields["image"] = str(path)
        else:
            fields["image"] = str(req.image)
        return fields


class WorkerVLM(_Hosted, VLM):
    def __init__(self, inner: VLM, config: WorkerConfig) -> None:
        VLM.__init__(self, inner.settings, gpus=inner.gpus)
        self._setup(inner, config)
        self.backend = inner.backend
        self.supports_logprobs = inner.supports_logprobs

    @property
    def path(self) -> Any:
        return getattr(self.inner, "path", None)

    def fingerprint(self) -> dict[str, Any]:
        return self.inner.fingerprint()

    def _chat(self, conversations: Sequence[Conversation], max_new_tokens: int) -> list[VLMReply]:
        raise NotImplementedError  # never called: see chat

    def chat(self, conversations: Sequence[Conversation], max_new_tokens: int) -> list[VLMReply]:
        if not self.loaded:
            self.load()
        out: list[VLMReply] = []
        for start in range(0, len(conversations), self.batch_size):
            chunk = list(conversations[start : start + self.batch_size])
            message = {"op": "chat", "conversations": chunk, "max_new_tokens": max_new_tokens}
            try:
                answer = self.worker.request(message)
            except WorkerLost as lost:
                out += [VLMReply(None, error_type="WorkerLost", error=str(lost)) for _ in chunk]
                continue
            if answer.get("op") == "error":
                error = {"error_type": answer.get("error_type"), "error": answer.get("error")}
                out += [VLMReply(None, **error) for _ in chunk]
                continue
            out += [VLMReply(**r) for r in answer["replies"]]
        return out


def hosted(obj: Any, config: WorkerConfig) -> Any:
    """The worker proxy of a built (not loaded) editor or VLM backend."""
    if isinstance(obj, Editor):
        return WorkerEditor(obj, config)
    if isinstance(obj, VLM):
        return WorkerVLM(obj, config)
    raise TypeError(f"{type(obj).__name__} is neither an editor nor a VLM backend")
