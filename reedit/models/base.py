"""The Editor interface: ``load()``, ``edit(requests) -> results``, ``close()``.

The public :meth:`Editor.edit` validates, batches, times and turns a per-sample exception into an
error result; adapters implement only :meth:`Editor._edit` (the model call), declare their
``Settings`` and, when they hold weights, :meth:`Editor._load` / :meth:`Editor._close`.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from reedit.models.component import Model

log = logging.getLogger(__name__)


@dataclass
class EditRequest:
    key: str  # the unit of work ("<sample_id>" or "<sample_id>/r1")
    sample_id: str
    category: str
    image: Any  # PIL.Image.Image (RGB), or the path of an image file (decoded by edit())
    instruction: str
    seed: int


@dataclass
class StepsRequest:
    """An image edited with several instructions, one after the other, each step on the previous
    step's result (``refine.mode=sequential``); one seed per step."""

    key: str
    sample_id: str
    category: str
    image: Any  # as EditRequest.image
    instructions: list[str]
    seeds: list[int]


@dataclass
class Edited:
    """What an adapter's ``_edit`` may return instead of a bare image: the image and what the
    model said about it (a rewritten prompt, internal retries), recorded as ``details``. A failed
    edit's exception may carry the same as its ``details`` attribute (an unparsable answer)."""

    image: Any
    details: dict[str, Any]


@dataclass
class EditResult:
    image: Any | None  # PIL.Image.Image on success, or the PNG file a worker wrote
    seconds: float
    error_type: str | None = None
    error: str | None = None
    size: tuple[int, int] | None = None  # (width, height) of an image given as a file
    details: dict[str, Any] | None = None  # the model's own facts about this edit (Edited)

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.size) if self.size else self.image.size

    @property
    def ok(self) -> bool:
        return self.image is not None

    @property
    def status(self) -> str:
        return "ok" if self.ok else "error"


class Editor(Model):
    """An image editor."""

    kind = "editor"
    # How the output's size is chosen (recorded with every edit through info()).
    size_policy: ClassVar[str] = ""

    def info(self) -> dict[str, Any]:
        """Facts recorded with every edit (e.g. the output size policy)."""
        return {}

    # -- the model call ----------------------------------------------------------------------
    @abc.abstractmethod
    def _edit(self, requests: Sequence[EditRequest]) -> list[Any]:
        """Edit a batch of valid requests; return one PIL image (or :class:`Edited`) per
        request, in order."""

    def edit(self, requests: Sequence[EditRequest]) -> list[EditResult]:
        """Edit every request; an image that cannot be read, a bad request or a failing sample
        becomes an error result."""
        if not self.loaded:
            self.load()
        results: list[EditResult | None] = [None] * len(requests)
        valid: list[int] = []
        requests = list(requests)
        for i, req in enumerate(requests):
            image, results[i] = decoded(req.image)
            if results[i] is not None:
                continue
            requests[i] = dataclasses.replace(req, image=image)
            problem = _validate(requests[i])
            if problem:
                results[i] = EditResult(None, 0.0, "InvalidRequest", problem)
            else:
                valid.append(i)
        for start in range(0, len(valid), self.batch_size):
            chunk = valid[start : start + self.batch_size]
            for i, res in zip(chunk, self._run_chunk([requests[i] for i in chunk])):
                results[i] = res
        return [r for r in results if r is not None]

    def edit_steps(self, requests: Sequence[StepsRequest]) -> list[EditResult]:
        """Edit each image with its instructions in turn; the i-th steps of all requests go to
        :meth:`edit` together. A failing step ends its request with that step's error; a request
        without instructions is an error (its input is never returned as an edit)."""
        current, results = [], []
        for r in requests:
            image, problem = decoded(r.image)
            if problem is None and not r.instructions:
                problem = EditResult(None, 0.0, "InvalidRequest", "no instruction to apply")
            current.append(image)
            results.append(problem)
        seconds = [0.0] * len(requests)
        details: list[list[Any]] = [[] for _ in requests]
        for step in range(max((len(r.instructions) for r in requests), default=0)):
            idx = [
                i
                for i, r in enumerate(requests)
                if step < len(r.instructions) and results[i] is None
            ]
            batch = [
                EditRequest(
                    f"{requests[i].key}/s{step}",
                    requests[i].sample_id,
                    requests[i].category,
                    current[i],
                    requests[i].instructions[step],
                    requests[i].seeds[step],
                )
                for i in idx
            ]
            for i, res in zip(idx, self.edit(batch)):
                seconds[i] += res.seconds
                details[i].append(res.details)
                if res.ok:
                    current[i] = res.image
                else:
                    results[i] = res
        for i, steps in enumerate(details):
            if results[i] is not None and any(steps):
                results[i].details = _steps_details(steps)
        return [
            r or EditResult(current[i], seconds[i], details=_steps_details(details[i]))
            for i, r in enumerate(results)
        ]

    def _run_chunk(self, batch: list[EditRequest]) -> list[EditResult]:
        t0 = time.perf_counter()
        try:
            images = self._edit(batch)
            got = len(images) if isinstance(images, list) else type(images).__name__
            if got != len(batch):
                raise RuntimeError(
                    f"{type(self).__name__}._edit returned {got} images for {len(batch)} requests"
                )
        except Exception as exc:
            if len(batch) > 1:  # isolate the failing sample(s): one at a time
                log.warning("batch of %d failed (%s); retrying one by one", len(batch), exc)
                return [r for req in batch for r in self._run_chunk([req])]
            log.warning("edit %s failed: %s: %s", batch[0].key, type(exc).__name__, exc)
            seconds, error = time.perf_counter() - t0, (type(exc).__name__, str(exc))
            # an adapter's exception may carry what the model said (e.g. its unparsable answer)
            return [EditResult(None, seconds, *error, details=getattr(exc, "details", None))]
        seconds = (time.perf_counter() - t0) / len(batch)
        out = []
        for img in images:
            details = None
            if isinstance(img, Edited):
                img, details = img.image, img.details
            if not hasattr(img, "convert") or not getattr(img, "size", (0, 0))[0]:
                problem = f"not an image: {img!r:.60}"
                out.append(EditResult(None, seconds, "InvalidOutput", problem, details=details))
            else:
                rgb = img if img.mode == "RGB" else img.convert("RGB")
                out.append(EditResult(rgb, seconds, details=details))
        return out


def _steps_details(steps: list[Any]) -> dict[str, Any] | None:
    """One step's details as they are; several steps' as ``{"steps": [...]}``; none: None."""
    if not any(steps):
        return None
    return steps[0] if len(steps) == 1 else {"steps": steps}


def decoded(image: Any) -> tuple[Any, EditResult | None]:
    """A PIL image as it is, a path as the image its file holds (RGB); or, when the file cannot
    be read, None and the error result of that request."""
    if not isinstance(image, (str, Path)):
        return image, None
    from reedit.data.images import decode_image_bytes

    try:
        return decode_image_bytes(Path(image).read_bytes()), None
    except Exception as exc:  # an undecodable input is this request's error
        return None, EditResult(None, 0.0, type(exc).__name__, str(exc))


def _validate(req: EditRequest) -> str | None:
    if not isinstance(req.instruction, str) or not req.instruction.strip():
        return "empty instruction"
    size = getattr(req.image, "size", None)
    if not size or size[0] < 1 or size[1] < 1:
        return f"invalid input image (size {size})"
    return None
