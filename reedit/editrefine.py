"""``python -m reedit.editrefine image=... instruction=...``: the single-image EditRefine tool.

Edits the image with ``model``, asks ``refiner`` for a critique of the edit, re-edits the primary
image with ``executor`` using the re-edit instructions, and writes ``primary.png``,
``refined.png``, ``critique.json`` (reasoning, re-edit instructions, every raw reply) and
``result.json`` into the Hydra run folder.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from reedit.cli import config_dir  # registers the schemas and resolvers

log = logging.getLogger("reedit.editrefine")


def _edit(editor: Any, group: str, image: Any, instruction: str, seed: int) -> Any:
    from reedit.config import ReeditError
    from reedit.models.base import EditRequest

    (res,) = editor.edit([EditRequest(group, "image", "single", image, instruction, seed)])
    if not res.ok:
        raise ReeditError(f"{group}: the edit failed: {res.error_type}: {res.error}")
    return res.image


def editrefine(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Run edit -> critique -> refine on one image; return what was written."""
    from reedit.config import ReeditError
    from reedit.data.images import decode_image_bytes
    from reedit.records import write_bytes_atomic, write_image_atomic
    from reedit.refiner import CritiqueRequest
    from reedit.stages.common import load_model
    from reedit.stages.refine import executor_steps

    source = Path(cfg.image).expanduser()
    if not source.is_file():
        raise ReeditError(f"image: no such file: {source}")
    if cfg.refine_mode not in ("joined", "sequential"):
        raise ReeditError(f"refine_mode must be 'joined' or 'sequential', not {cfg.refine_mode}")
    if cfg.refiner._target_ is None:
        raise ReeditError("refiner=none: choose a refiner (e.g. refiner=editrefine)")
    out_dir.mkdir(parents=True, exist_ok=True)
    image = decode_image_bytes(source.read_bytes())
    result: dict[str, Any] = {"image": str(source), "instruction": cfg.instruction}

    editor = load_model(cfg, "model")
    try:
        primary = _edit(editor, "model", image, cfg.instruction, int(cfg.seed))
    finally:
        editor.close()
    write_image_atomic(primary, out_dir / "primary.png")
    result["primary"] = str(out_dir / "primary.png")

    refiner = load_model(cfg, "refiner")
    try:
        (ans,) = refiner.critique(
            [CritiqueRequest("image", str(source), str(out_dir / "primary.png"), cfg.instruction)]
        )
    finally:
        refiner.close()
    critique = {
        "status": ans.status,
        "cot": ans.value.cot if ans.value else [],
        "re_edit": ans.value.re_edit if ans.value else [],
        "raw": ans.raw,
        "attempts": ans.attempts,
        "error": ans.error,
        "model": ans.model,
    }
    write_bytes_atomic(
        json.dumps(critique, indent=2, ensure_ascii=False).encode(), out_dir / "critique.json"
    )
    result["critique"] = critique
    if ans.status != "ok":
        log.warning("the critique could not be used (%s: %s); no refinement", ans.status, ans.error)
    else:
        steps = executor_steps(critique["re_edit"], cfg.refine_mode)
        executor = load_model(cfg, "executor")  # once, for every step
        try:
            refined = primary
            for i, step in enumerate(steps):
                refined = _edit(executor, "executor", refined, step, int(cfg.seed) + 1 + i)
        finally:
            executor.close()
        write_image_atomic(refined, out_dir / "refined.png")
        result["refined"] = str(out_dir / "refined.png")
        result["executor_instructions"] = steps
    write_bytes_atomic(
        json.dumps(result, indent=2, ensure_ascii=False).encode(), out_dir / "result.json"
    )
    for line in critique["cot"]:
        log.info("reasoning: %s", line)
    for line in critique["re_edit"]:
        log.info("re-edit: %s", line)
    log.info(
        "wrote %s",
        ", ".join(
            str(out_dir / n)
            for n in ("primary.png", "refined.png", "critique.json", "result.json")
            if (out_dir / n).exists()
        ),
    )
    return result


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="editrefine")
def _app(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from reedit.config import ReeditError

    try:
        editrefine(cfg, Path(HydraConfig.get().runtime.output_dir))
    except ReeditError as exc:
        log.error("%s", exc)
        sys.exit(2)


def main() -> None:
    _app()


if __name__ == "__main__":
    main()
