"""Stage 1: the editor under evaluation edits every sample (primary images)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reedit.layout import PRIMARY, edit_key
from reedit.models.base import EditRequest, EditResult
from reedit.records import EditOutput
from reedit.seeds import SeedRule
from reedit.stages.driver import Output, Stage, Unit, Workspace, record


@dataclass(frozen=True, eq=False)
class EditUnit(Unit):
    seed: int = 0
    kind = "edit"


class EditStage(Stage):
    name, group, noun, verb = "edit", "model", "samples", "edit"

    def __init__(self, seeds: SeedRule) -> None:
        self.seeds = seeds

    def units(self, upstream: Any) -> list[Unit]:
        return [EditUnit(edit_key(s.id), s, self.seeds.edit(s)) for s in upstream.samples]

    def call(self, editor: Any, units: list[Any]) -> list[EditResult]:
        return editor.edit([self.request(u) for u in units])

    def request(self, u: Any) -> EditRequest:
        s = u.sample
        return EditRequest(u.key, s.id, s.category, s.source_path, s.instruction, u.seed)

    def output(self, unit: Any, res: EditResult, editor: Any, ws: Workspace) -> Output:
        payload = EditOutput(seed=unit.seed, info=editor.info(), details=res.details)
        rec = record(unit, res, payload, model=ws.names.get(self.group))
        if not res.ok:
            return Output(rec)
        path = ws.layout.image(unit.sample.category, unit.sample.id, PRIMARY)
        payload.image, payload.size = ws.layout.rel(path), list(res.image_size)
        return Output(rec, res.image, path)
