"""Stage 1: the editor under evaluation edits every sample (primary images)."""

from __future__ import annotations

import logging

from reedit.models.base import EditRequest, EditResult
from reedit.records import ERROR, OK, ArtefactWriter
from reedit.stages.common import RunContext, chunks

log = logging.getLogger(__name__)
STAGE = "edit"


def run_edit(ctx: RunContext) -> None:
    store = ctx.open_store(STAGE)
    existing = store.load()
    expected = {s.id: ctx.fp["edit"] for s in ctx.samples}
    pending = ctx.plan(STAGE, existing, expected)
    if not pending:
        log.info("edit: nothing to do (%d samples done)", len(expected))
        return
    log.info("edit: %d of %d samples to edit", len(pending), len(expected))
    samples = [ctx.by_id[k] for k in pending]
    writer = ArtefactWriter(store, compress_level=int(ctx.cfg.png_compress_level))
    try:
        editor = ctx.model("model")
        with ctx.progress(STAGE, len(samples)) as bar:
            for batch in chunks(samples, editor.batch_size):
                requests, results = [], {}
                for s in batch:
                    try:
                        img = s.image
                    except Exception as exc:  # an undecodable source is this sample's error
                        results[s.id] = EditResult(None, 0.0, type(exc).__name__, str(exc))
                        continue
                    requests.append(
                        EditRequest(s.id, s.id, s.category, img, s.instruction, ctx.seed(s))
                    )
                for req, res in zip(requests, editor.edit(requests)):
                    results[req.key] = res
                for s in batch:
                    res = results[s.id]
                    record = {
                        "key": s.id,
                        "sample_id": s.id,
                        "category": s.category,
                        "seed": ctx.seed(s),
                        "fingerprint": ctx.fp["edit"],
                        "seconds": round(res.seconds, 4),
                        "model": ctx.choices.get("model"),
                        "info": editor.info(),
                    }
                    if res.ok:
                        path = ctx.image_path(s, "primary")
                        record |= {
                            "status": OK,
                            "image": ctx.rel(path),
                            "size": list(res.image.size),
                        }
                        writer.submit(res.image, path, record)  # the record follows the image
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
            ctx.release("model")
            store.close()
    ctx.check_error_rate(STAGE, store.load(), expected)
