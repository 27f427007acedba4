"""Step1X-Edit v1p2-preview (``Step1XEditPipelineV1P2`` of the Peyton-Chen/diffusers fork, branch
``dev/MergeV1-2``); what it shares with v1p1 (size, CFG, bf16, the fork) is noted in
:mod:`reedit.models.editors.step1x_edit_v1p1`.

The preview adds two modes, both explicit settings here because the README and the pipeline
disagree (README: both on; pipeline defaults: thinking off, reflection **on**):

- **thinking**: the Qwen2.5-VL "thinker" rewrites the instruction first (``reformat_prompt``);
- **reflection**: after each diffusion run the thinker judges the result and, on failure, edits
  again (the previous output with a refined prompt, or the input with the same prompt), up to
  ``max_try_cnt`` runs. The preview returns every try in ``images`` and stops at the first success,
  so the last image is the result (the preview has no ``final_images``).

Both sample with ``do_sample=True`` on torch's global RNG (not the generator), so the global RNGs
are seeded from the request before each call. What the thinker said (``reformat_prompt``,
``think_info``) and how often its evaluator failed go into the record's ``details``.

The evaluator swallows every exception of its three steps (describe, evaluate, reflect) and
retries the step **forever** (``while True``, printing ``❌ …出错``): a model that never answers
in the expected format never returns. Each swallowed error is counted here, per step, and after
``reflection_error_limit`` failures of one step in a row the edit fails (null: no limit).
"""

from __future__ import annotations

import collections
import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from reedit.models.base import Edited, EditRequest
from reedit.models.editors.step1x_edit_v1p1 import Step1XEditBase
from reedit.settings import MISSING

# The evaluator methods that ImageEditEvaluator.run_full_pipeline retries, swallowing errors.
RETRIED = ("generate_descriptions", "evaluate_consistency", "generate_reflection")


class _GaveUp(BaseException):
    """Ends a retry loop that catches ``Exception`` (a BaseException passes through it)."""


class _Swallowed:
    """Counts the failures of the evaluator's retried steps; past the limit in a row, gives up."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.errors: collections.Counter[str] = collections.Counter()
        self.in_a_row: collections.Counter[str] = collections.Counter()
        self.last = ""

    def wrap(self, name: str, method: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            try:
                result = method(*args, **kwargs)
            except Exception as exc:
                self.in_a_row[name] += 1
                self.last = f"{type(exc).__name__}: {str(exc)[:300]}"
                if self.limit is not None and self.in_a_row[name] > self.limit:
                    raise _GaveUp(name, self.in_a_row[name]) from exc  # ends the edit
                self.errors[name] += 1  # swallowed by the evaluator's retry loop
                raise
            self.in_a_row[name] = 0
            return result

        return counted


class Step1XEditV1p2PreviewEditor(Step1XEditBase):
    pipeline_class = "Step1XEditPipelineV1P2"
    seeds_global_rngs = True  # the thinker samples from torch's global RNG

    @dataclass
    class Settings(Step1XEditBase.Settings):
        enable_thinking_mode: bool = MISSING  # the thinker rewrites the instruction first
        enable_reflection_mode: bool = MISSING  # judge each result, retry up to max_try_cnt
        max_try_cnt: int = MISSING  # diffusion runs at most, with reflection on
        # swallowed evaluator failures of one step in a row before the edit fails (null: none)
        reflection_error_limit: int | None = MISSING

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.max_try_cnt < 1:
                raise ValueError(f"max_try_cnt must be >= 1, got {self.max_try_cnt}")
            limit = self.reflection_error_limit
            if limit is not None and limit < 0:
                raise ValueError(f"reflection_error_limit must be >= 0 or null, got {limit}")

    def call_kwargs(self, req: EditRequest) -> dict[str, Any]:
        s = self.settings
        return {
            **super().call_kwargs(req),
            "enable_thinking_mode": s.enable_thinking_mode,
            "enable_reflection_mode": s.enable_reflection_mode,
            "max_try_cnt": s.max_try_cnt,
        }

    @contextlib.contextmanager
    def _counting(self, swallowed: _Swallowed) -> Iterator[None]:
        """The pipeline builds its thinker in each call: for this call, one whose evaluator's
        retried steps are counted."""
        module = sys.modules[type(self.pipe).__module__]
        base = module.Step1XEditThinker

        class CountedThinker(base):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                for name in RETRIED:
                    setattr(
                        self.reflector, name, swallowed.wrap(name, getattr(self.reflector, name))
                    )

        module.Step1XEditThinker = CountedThinker
        try:
            yield
        finally:
            module.Step1XEditThinker = base

    def generate(self, req: EditRequest, generator: Any, kwargs: dict[str, Any]) -> Any:
        swallowed = _Swallowed(self.settings.reflection_error_limit)
        try:
            with self._counting(swallowed):
                out = self.pipe(generator=generator, **kwargs)
        except _GaveUp as stop:
            step, n = stop.args
            error = RuntimeError(
                f"Step1X reflection: the evaluator's {step} step failed {n} times in a "
                f"row ({sum(swallowed.errors.values())} errors swallowed in this edit; "
                f"model.reflection_error_limit={self.settings.reflection_error_limit}); last "
                f"error: {swallowed.last}"
            )
            error.details = {  # type: ignore[attr-defined]  # the error record's details
                "evaluator_errors": sum(swallowed.errors.values()),
                "evaluator_errors_by_step": dict(swallowed.errors),
            }
            raise error from None
        details = {
            "enable_thinking_mode": kwargs["enable_thinking_mode"],
            "enable_reflection_mode": kwargs["enable_reflection_mode"],
            "reformat_prompt": out.reformat_prompt,
            "think_info": list(out.think_info or []),
            "tries": len(out.images),
            "evaluator_errors": sum(swallowed.errors.values()),
            "evaluator_errors_by_step": dict(swallowed.errors),
        }
        return Edited(out.images[-1], details)  # the preview's final image: its last try
