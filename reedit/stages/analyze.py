"""Stage 2: EditRefine critiques each edit and writes re-edit instructions (round r)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reedit.layout import PRIMARY, round_key, round_label
from reedit.records import CritiqueOutput
from reedit.refiner import CritiqueRequest
from reedit.stages.driver import Output, Stage, Unit, Workspace, record
from reedit.stages.inputs import Source


@dataclass(frozen=True, eq=False)
class CritiqueUnit(Unit):
    round: int = 1
    input: Source | None = None  # the edit to critique

    @property
    def kind(self) -> str:
        return f"analyze/r{self.round}"

    @property
    def substituted(self) -> str | None:
        return self.input.substituted


class AnalyzeStage(Stage):
    name, group, noun, verb = "analyze", "refiner", "critiques", "make"

    def __init__(self, r: int) -> None:
        self.round = r

    def units(self, upstream: Any) -> list[Unit]:
        previous = PRIMARY if self.round == 1 else round_label(self.round - 1)
        found = ((s, upstream.image(s, previous)) for s in upstream.samples)
        return [CritiqueUnit(round_key(s.id, self.round), s, self.round, i) for s, i in found if i]

    def note(self, upstream: Any, units: list[Unit]) -> str:
        blocked = len(upstream.samples) - len(units)
        return f", {blocked} without an image" if blocked else ""

    def call(self, refiner: Any, units: list[Any]) -> list[Any]:
        return refiner.critique(
            [
                CritiqueRequest(
                    u.key, str(u.sample.source_path), str(u.input.path), u.sample.instruction
                )
                for u in units
            ]
        )

    def output(self, unit: Any, ans: Any, refiner: Any, ws: Workspace) -> Output:
        payload = CritiqueOutput(
            round=unit.round,
            input=str(unit.input.path),
            substituted=unit.substituted,
            **refiner.record_fields(ans),
        )
        return Output(
            record(
                unit,
                ans.status,
                payload,
                seconds=round(ans.seconds, 4),
                model=ans.model,
                error_type=ans.error_type,
                error=ans.error,
            )
        )
