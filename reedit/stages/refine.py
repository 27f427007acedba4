"""Stage 3: the executor re-edits with the critique's instructions (round r).

``refine.mode=joined`` sends the re-edit instructions as one prompt joined with "; " (the
reference); ``sequential`` applies them one after another, each step on the previous result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reedit.layout import PRIMARY, round_key, round_kind, round_label
from reedit.models.base import EditResult, StepsRequest
from reedit.records import RefineOutput
from reedit.seeds import SeedRule
from reedit.stages.driver import ImageUnit, Output, Stage, Unit, Workspace, record

STAGE = "refine"


@dataclass(frozen=True, eq=False)
class RefineUnit(ImageUnit):  # input: the image to re-edit
    round: int = 1
    prompts: tuple[str, ...] = ()  # the executor's prompts, from the critique's instructions

    @property
    def kind(self) -> str:
        return round_kind(STAGE, self.round)


def executor_steps(re_edits: list[str], mode: str) -> list[str]:
    """The executor's prompts: one joined with "; " (reference) or one per instruction."""
    return ["; ".join(re_edits)] if mode == "joined" else list(re_edits)


class RefineStage(Stage):
    name, group, noun, verb = STAGE, "executor", "re-edits", "make"

    def __init__(self, r: int, mode: str, seeds: SeedRule) -> None:
        self.round, self.mode, self.seeds = r, mode, seeds

    def units(self, upstream: Any) -> list[Unit]:
        previous = PRIMARY if self.round == 1 else round_label(self.round - 1)
        out = []
        for s in upstream.samples:
            critique, found = upstream.critique(s, self.round), upstream.image(s, previous)
            if critique and found:
                prompts = tuple(executor_steps(critique.payload.re_edit, self.mode))
                key = round_key(s.id, self.round)
                out.append(RefineUnit(key, s, input=found, round=self.round, prompts=prompts))
        return out

    def note(self, upstream: Any, units: list[Unit]) -> str:
        return f", {self.mode}"

    def call(self, executor: Any, units: list[Any]) -> list[EditResult]:
        return executor.edit_steps([self.request(u) for u in units])

    def request(self, u: Any) -> StepsRequest:
        seeds = [self.seeds.refine(u.sample, u.round, step) for step in range(len(u.prompts))]
        s = u.sample
        return StepsRequest(u.key, s.id, s.category, u.input.path, list(u.prompts), seeds)

    def output(self, unit: Any, res: EditResult, executor: Any, ws: Workspace) -> Output:
        payload = RefineOutput(
            round=unit.round,
            mode=self.mode,
            instructions=list(unit.prompts),
            input=ws.layout.rel(unit.input.path),
            substituted=unit.substituted,
            info=executor.info(),
            details=res.details,
        )
        rec = record(unit, res, payload, model=ws.names.get(self.group))
        if not res.ok:
            return Output(rec)
        path = ws.layout.image(unit.sample.category, unit.sample.id, round_label(unit.round))
        payload.image = ws.layout.rel(path)
        return Output(rec, res.image, path)
