"""Stage 3: the executor re-edits with the critique's instructions (round r).

``refine.mode=joined`` sends the re-edit instructions as one prompt joined with "; " (the
reference); ``sequential`` applies them one after another, each step on the previous result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reedit.layout import PRIMARY, round_key, round_label
from reedit.models.base import EditRequest, EditResult
from reedit.records import ERROR, OK, RefineOutput
from reedit.seeds import SeedRule
from reedit.stages.driver import Output, Stage, Unit, Workspace, record
from reedit.stages.inputs import Source


@dataclass(frozen=True, eq=False)
class RefineUnit(Unit):
    round: int = 1
    input: Source | None = None  # the image to re-edit
    re_edit: tuple[str, ...] = ()  # the critique's instructions

    @property
    def kind(self) -> str:
        return f"refine/r{self.round}"

    @property
    def substituted(self) -> str | None:
        return self.input.substituted


def executor_steps(re_edits: list[str], mode: str) -> list[str]:
    """The executor's prompts: one joined with "; " (reference) or one per instruction."""
    return ["; ".join(re_edits)] if mode == "joined" else list(re_edits)


class RefineStage(Stage):
    name, group, noun, verb = "refine", "executor", "re-edits", "make"

    def __init__(self, r: int, mode: str, seeds: SeedRule) -> None:
        self.round, self.mode, self.seeds = r, mode, seeds

    def units(self, upstream: Any) -> list[Unit]:
        previous = PRIMARY if self.round == 1 else round_label(self.round - 1)
        out = []
        for s in upstream.samples:
            critique, found = upstream.critique(s, self.round), upstream.image(s, previous)
            if critique and found:
                edits = tuple(critique.payload.re_edit)
                out.append(RefineUnit(round_key(s.id, self.round), s, self.round, found, edits))
        return out

    def note(self, upstream: Any, units: list[Unit]) -> str:
        return f", {self.mode}"

    def call(self, executor: Any, units: list[Any]) -> list[tuple[EditResult, list[str]]]:
        """Edit each unit's input with its instructions; one result (and the prompts) each."""
        from reedit.data.images import decode_image_bytes

        current, results = [], []
        steps = [executor_steps(list(u.re_edit), self.mode) for u in units]
        for u in units:
            try:
                current.append(decode_image_bytes(u.input.path.read_bytes()))
                results.append(None)
            except Exception as exc:
                current.append(None)
                results.append(EditResult(None, 0.0, type(exc).__name__, str(exc)))
        seconds = [0.0] * len(units)
        for step in range(max(len(p) for p in steps)):
            idx = [i for i, p in enumerate(steps) if step < len(p) and results[i] is None]
            requests = [
                EditRequest(
                    f"{units[i].key}/s{step}",
                    units[i].sample.id,
                    units[i].sample.category,
                    current[i],
                    steps[i][step],
                    self.seeds.refine(units[i].sample, self.round, step),
                )
                for i in idx
            ]
            for i, res in zip(idx, executor.edit(requests)):
                seconds[i] += res.seconds
                if res.ok:
                    current[i] = res.image
                else:
                    results[i] = res
        return [
            (results[i] or EditResult(current[i], seconds[i]), steps[i]) for i in range(len(units))
        ]

    def output(self, unit: Any, result: Any, executor: Any, ws: Workspace) -> Output:
        res, prompts = result
        payload = RefineOutput(
            round=unit.round,
            mode=self.mode,
            instructions=prompts,
            input=str(unit.input.path),
            substituted=unit.substituted,
            info=executor.info(),
        )
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
        path = ws.layout.image(unit.sample.category, unit.sample.id, round_label(unit.round))
        payload.image = ws.layout.rel(path)
        return Output(rec, res.image, path)
