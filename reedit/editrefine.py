"""``python -m reedit.editrefine image=... instruction=...``: the single-image EditRefine tool.

A one-sample run of the run's own stages (edit, then EditRefine's critique, then the executor's
re-edit; ``stages`` may add the judge): the same seeds as a run of that image, the same records
and layout in its folder, plus ``primary.png``, ``critique.json`` (reasoning, re-edit
instructions, every raw reply), ``refined.png`` and ``result.json`` at the top.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from reedit import app
from reedit.cli import config_dir  # registers the schemas and resolvers

log = logging.getLogger("reedit.editrefine")


def editrefine(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Run the stages on one image; write the friendly files; return what was written."""
    from reedit.data.single import SingleImageDataset
    from reedit.run import execute, run_folder, setup

    source = Path(cfg.image).expanduser()
    problems = [] if source.is_file() else [f"image: no such file: {source}"]
    if cfg.refiner._target_ is None and "analyze" in cfg.stages:
        problems.append("refiner=none: choose a refiner (e.g. refiner=editrefine)")
    s = setup(cfg, dataset=False, problems=problems)  # the tool brings its own sample
    folder, choices = run_folder(cfg, out_dir)
    dataset = SingleImageDataset(
        image=str(source), instruction=cfg.instruction, category=cfg.category, id=cfg.id
    )
    loaded = dataset.load([cfg.category])
    (sample,) = loaded.samples
    try:
        execute(s, folder, [sample], choices, loaded.source)
    finally:  # also after a failed stage: what was made is written out
        result = write_results(folder, sample, s.rounds, source, cfg.instruction)
    return result


def write_results(
    folder: Path, sample: Any, rounds: int, source: Path, instruction: str
) -> dict[str, Any]:
    """primary.png, critique.json (round 1), refined.png (the last round's) and result.json,
    from the run's records and images."""
    from reedit.layout import PRIMARY, RunLayout, round_key, round_label
    from reedit.records import CritiqueOutput, RecordStore, RefineOutput, write_bytes_atomic

    layout = RunLayout(folder)
    critiques = RecordStore(folder, "analyze").records(CritiqueOutput)
    refinements = RecordStore(folder, "refine").records(RefineOutput)
    result: dict[str, Any] = {"image": str(source), "instruction": instruction, "id": sample.id}
    files: dict[str, Any] = {"primary.png": layout.image(sample.category, sample.id, PRIMARY)}
    for r in range(1, rounds + 1):
        critique = critiques.get(round_key(sample.id, r))
        refined = refinements.get(round_key(sample.id, r))
        if critique is None:
            break
        c = critique.payload
        summary = {
            "round": r,
            "status": critique.status,
            "cot": c.cot or [],
            "re_edit": c.re_edit or [],
            "raw": c.raw,
            "attempts": c.attempts,
            "error": critique.error,
            "model": critique.model,
        }
        result.setdefault("rounds", []).append(summary)
        if r == 1:
            files["critique.json"] = result["critique"] = summary
            for line in c.cot or []:
                log.info("reasoning: %s", line)
            for line in c.re_edit or []:
                log.info("re-edit: %s", line)
        if not critique.ok:
            log.warning(
                "round %d: the critique could not be used (%s: %s); no refinement",
                r,
                critique.status,
                critique.error,
            )
        elif refined is not None and refined.ok:
            summary["executor_instructions"] = refined.payload.instructions
            files["refined.png"] = layout.image(sample.category, sample.id, round_label(r))
            result["executor_instructions"] = refined.payload.instructions
    for name, what in files.items():
        if isinstance(what, Path):
            if what.is_file():
                write_bytes_atomic(what.read_bytes(), folder / name)
                result[name.removesuffix(".png")] = str(folder / name)
        else:
            text = json.dumps(what, indent=2, ensure_ascii=False)
            write_bytes_atomic(text.encode(), folder / name)
    text = json.dumps(result, indent=2, ensure_ascii=False)
    write_bytes_atomic(text.encode(), folder / "result.json")
    written = [n for n in (*files, "result.json") if (folder / n).exists()]
    log.info("wrote %s", ", ".join(str(folder / n) for n in written))
    return result


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="editrefine")
def _app(cfg: DictConfig) -> dict:
    return app.run_task(cfg, lambda folder: editrefine(cfg, folder))


def main() -> None:
    app.launch(_app, config_dir(), "editrefine")


if __name__ == "__main__":
    main()
