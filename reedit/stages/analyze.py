"""Stage 2: EditRefine critiques each edit and writes re-edit instructions (round r)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reedit.layout import PRIMARY, round_key, round_kind, round_label
from reedit.records import CritiqueOutput
from reedit.refiner import CritiqueRequest
from reedit.stages.driver import ImageUnit, Output, Stage, Unit, Workspace, record

STAGE = "analyze"


@dataclass(frozen=True, eq=False)
class CritiqueUnit(ImageUnit):  # input: the edit to critique
    round: int = 1

    @property
    def kind(self) -> str:
        return round_kind(STAGE, self.round)


class AnalyzeStage(Stage):
    name, group, noun, verb = STAGE, "refiner", "critiques", "make"

    def __init__(self, r: int) -> None:
        self.round = r

    def units(self, upstream: Any) -> list[Unit]:
        previous = PRIMARY if self.round == 1 else round_label(self.round - 1)
        found = ((s, upstream.image(s, previous)) for s in upstream.samples)
        key, r = round_key, self.round
        return [CritiqueUnit(key(s.id, r), s, input=i, round=r) for s, i in found if i]

    def note(self, upstream: Any, units: list[Unit]) -> str:
        blocked = len(upstream.samples) - len(units)
        return f", {blocked} without an image" if blocked else ""

    def call(self, refiner: Any, units: list[Any]) -> list[Any]:
        return refiner.critique([CritiqueRequest.of(u.key, u.sample, u.input.path) for u in units])

    def output(self, unit: Any, ans: Any, refiner: Any, ws: Workspace) -> Output:
        payload = CritiqueOutput(
            round=unit.round,
            input=ws.layout.rel(unit.input.path),
            substituted=unit.substituted,
            **refiner.record_fields(ans),
        )
        return Output(record(unit, ans, payload))
