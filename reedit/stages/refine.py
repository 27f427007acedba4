"""Stage 3: the executor re-edits with the critique's instructions (round r).

``refine.mode=joined`` sends the re-edit instructions as one prompt joined with "; " (the
reference); ``sequential`` applies them one after another, each step on the previous result.
"""

from __future__ import annotations

import logging

from reedit.models.base import EditRequest, EditResult
from reedit.records import ERROR, OK, ArtefactWriter
from reedit.stages.common import RunContext, chunks, image_for, produced, round_label, unit_fp

log = logging.getLogger(__name__)
STAGE = "refine"


def run_refine(ctx: RunContext, r: int, keep_loaded: bool = False) -> None:
    if ctx.cfg.refiner._target_ is None:
        log.info("refine: refiner=none, nothing to re-edit")
        return
    mode = ctx.cfg.refine.mode
    store = ctx.open_store(STAGE)
    done = produced(ctx)
    previous = "primary" if r == 1 else round_label(r - 1)
    units = {}
    for s in ctx.samples:
        critique = done["analyze"].get(f"{s.id}/r{r}")
        found = image_for(ctx, done, s, previous)
        if critique and found:
            units[f"{s.id}/r{r}"] = (s, found, critique["re_edit"])
    fp = ctx.fp[f"refine/r{r}"]
    expected = {k: unit_fp(fp, u[1][1]) for k, u in units.items()}
    pending = ctx.plan(STAGE, store.load(), expected)
    if not pending:
        log.info("refine r%d: nothing to do (%d done)", r, len(expected))
        if not keep_loaded:
            ctx.release("executor")
        return
    log.info("refine r%d: %d to re-edit (%s)", r, len(pending), mode)
    label = round_label(r)
    writer = ArtefactWriter(store, compress_level=int(ctx.cfg.png_compress_level))
    try:
        executor = ctx.model("executor")
        with ctx.progress(f"refine r{r}", len(pending)) as bar:
            for batch in chunks(pending, executor.batch_size):
                results = _refine_batch(ctx, executor, [units[k] for k in batch], r, mode)
                for key, (res, prompts) in zip(batch, results):
                    s, (path, substituted), _ = units[key]
                    record = {
                        "key": key,
                        "sample_id": s.id,
                        "category": s.category,
                        "round": r,
                        "mode": mode,
                        "instructions": prompts,
                        "fingerprint": expected[key],
                        "seconds": round(res.seconds, 4),
                        "model": ctx.choices.get("executor"),
                        "input": str(path),
                        "substituted": substituted,
                        "info": executor.info(),
                    }
                    if res.ok:
                        out = ctx.image_path(s, label)
                        record |= {"status": OK, "image": ctx.rel(out)}
                        writer.submit(res.image, out, record)  # the record follows the image
                    else:
                        record |= {
                            "status": ERROR,
                            "error_type": res.error_type,
                            "error": res.error,
                        }
                        store.append(record)
                    bar.update(1)
    finally:
        try:
            writer.close()
        finally:
            if not keep_loaded:
                ctx.release("executor")
            store.close()
    ctx.check_error_rate(STAGE, store.load(), expected)


def executor_steps(re_edits: list[str], mode: str) -> list[str]:
    """The executor's prompts: one joined with "; " (reference) or one per instruction."""
    return ["; ".join(re_edits)] if mode == "joined" else list(re_edits)


def _refine_batch(ctx, executor, units, r: int, mode: str) -> list[tuple[EditResult, list[str]]]:
    """Edit each unit's input with its instructions; one result (and the prompts) per unit."""
    from reedit.data.images import decode_image_bytes

    current, results, steps = [], [], []
    for _s, (path, _), re_edits in units:
        steps.append(executor_steps(re_edits, mode))
        try:
            current.append(decode_image_bytes(path.read_bytes()))
            results.append(None)
        except Exception as exc:
            current.append(None)
            results.append(EditResult(None, 0.0, type(exc).__name__, str(exc)))
    seconds = [0.0] * len(units)
    for step in range(max(len(p) for p in steps)):
        idx = [i for i, p in enumerate(steps) if step < len(p) and results[i] is None]
        requests = [
            EditRequest(
                key=f"{units[i][0].id}/r{r}/s{step}",
                sample_id=units[i][0].id,
                category=units[i][0].category,
                image=current[i],
                instruction=steps[i][step],
                seed=ctx.seed(units[i][0], f"refine/r{r}/s{step}"),
            )
            for i in idx
        ]
        for i, res in zip(idx, executor.edit(requests)):
            seconds[i] += res.seconds
            if res.ok:
                current[i] = res.image
            else:
                results[i] = res
    return [(results[i] or EditResult(current[i], seconds[i]), steps[i]) for i in range(len(units))]
