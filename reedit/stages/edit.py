"""Stage 1: the editor under evaluation edits every sample (primary images)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reedit.layout import PRIMARY, edit_key
from reedit.models.base import EditRequest, EditResult
from reedit.records import ERROR, OK, EditOutput
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

    def call(self, editor: Any, units: list[Unit]) -> list[EditResult]:
        results: dict[str, EditResult] = {}
        requests = []
        for u in units:
            try:
                image = u.sample.image
            except Exception as exc:  # an undecodable source is this sample's error
                results[u.key] = EditResult(None, 0.0, type(exc).__name__, str(exc))
                continue
            s = u.sample
            requests.append(EditRequest(u.key, s.id, s.category, image, s.instruction, u.seed))
        for req, res in zip(requests, editor.edit(requests)):
            results[req.key] = res
        return [results[u.key] for u in units]

    def output(self, unit: Any, res: EditResult, editor: Any, ws: Workspace) -> Output:
        payload = EditOutput(seed=unit.seed, info=editor.info())
        rec = record(
            unit,
            OK if res.ok else ERROR,
            payload,
            seconds=round(res.seconds, 4),
            model=ws.names.get(self.group),
            error_type=res.error_type,
            error=res.error,
        )
        if not res.ok:
            return Output(rec)
        path = ws.layout.image(unit.sample.category, unit.sample.id, PRIMARY)
        payload.image, payload.size = ws.layout.rel(path), list(res.image.size)
        return Output(rec, res.image, path)
