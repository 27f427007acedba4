"""Stage 2: EditRefine critiques each edit and writes re-edit instructions (round r)."""

from __future__ import annotations

import logging

from reedit.records import OK
from reedit.refiner import CritiqueRequest
from reedit.stages.common import RunContext, chunks, image_for, produced, round_label, unit_fp

log = logging.getLogger(__name__)
STAGE = "analyze"


def run_analyze(ctx: RunContext, r: int, keep_loaded: bool = False) -> None:
    if ctx.cfg.refiner._target_ is None:
        log.info("analyze: refiner=none, nothing to do")
        return
    store = ctx.open_store(STAGE)
    done = produced(ctx)
    previous = "primary" if r == 1 else round_label(r - 1)
    inputs = {}
    for s in ctx.samples:
        found = image_for(ctx, done, s, previous)
        if found:
            inputs[f"{s.id}/r{r}"] = (s, found)
    fp = ctx.fp[f"analyze/r{r}"]
    expected = {k: unit_fp(fp, found[1]) for k, (_, found) in inputs.items()}
    existing = store.load()
    pending = ctx.plan(STAGE, existing, expected)
    blocked = len(ctx.samples) - len(inputs)
    if not pending:
        log.info(
            "analyze r%d: nothing to do (%d done, %d without an image)", r, len(expected), blocked
        )
        if not keep_loaded:
            ctx.release("refiner")
        return
    log.info("analyze r%d: %d to critique (%d without an image)", r, len(pending), blocked)
    try:
        refiner = ctx.model("refiner")
        with ctx.progress(f"analyze r{r}", len(pending)) as bar:
            for batch in chunks(pending, refiner.batch_size):
                requests = [
                    CritiqueRequest(
                        key=k,
                        source_path=str(inputs[k][0].source_path),
                        edited_path=str(inputs[k][1][0]),
                        instruction=inputs[k][0].instruction,
                    )
                    for k in batch
                ]
                for req, ans in zip(requests, refiner.critique(requests)):
                    s, (path, substituted) = inputs[req.key]
                    record = {
                        "key": req.key,
                        "sample_id": s.id,
                        "category": s.category,
                        "round": r,
                        "status": ans.status,
                        "fingerprint": expected[req.key],
                        "seconds": round(ans.seconds, 4),
                        "attempts": ans.attempts,
                        "raw": ans.raw,
                        "model": ans.model,
                        "prompt_version": refiner.prompt_version,
                        "input": str(path),
                        "substituted": substituted,
                    }
                    if ans.status == OK:
                        record |= {"cot": ans.value.cot, "re_edit": ans.value.re_edit}
                    else:
                        record |= {"error_type": ans.error_type, "error": ans.error}
                    store.append(record)
                    bar.update(1)
    finally:
        if not keep_loaded:
            ctx.release("refiner")
        store.close()
    ctx.check_error_rate(STAGE, store.load(), expected)
