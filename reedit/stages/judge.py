"""Stage 4: the VLM judge scores the primary and every refined image of each sample."""

from __future__ import annotations

import logging

from reedit.judge import METRICS, JudgeRequest
from reedit.records import OK
from reedit.stages.common import RunContext, chunks, image_for, produced, round_label, unit_fp

log = logging.getLogger(__name__)
STAGE = "judge"


def labels(ctx: RunContext) -> list[str]:
    """Image labels judged: primary, then refined, refined_r2, ... when a refiner is set."""
    if ctx.cfg.refiner._target_ is None:
        return ["primary"]
    return ["primary"] + [round_label(r) for r in range(1, ctx.rounds + 1)]


def run_judge(ctx: RunContext) -> None:
    if ctx.cfg.judge._target_ is None:
        log.info("judge: judge=none, nothing to do")
        return
    metrics = list(ctx.cfg.judge.metrics)
    store = ctx.open_store(STAGE)
    done = produced(ctx)
    units = {}
    for s in ctx.samples:
        for label in labels(ctx):
            found = image_for(ctx, done, s, label)
            if found is None:
                continue
            for metric in metrics:
                units[f"{s.id}/{label}/{metric}"] = (s, label, metric, found)
    expected = {k: unit_fp(ctx.fp[f"judge/{u[1]}"], u[3][1]) for k, u in units.items()}
    pending = ctx.plan(STAGE, store.load(), expected)
    if not pending:
        log.info("judge: nothing to do (%d judgements done)", len(expected))
        return
    log.info("judge: %d of %d judgements to make", len(pending), len(expected))
    order = {m: i for i, m in enumerate(METRICS)}
    pending.sort(key=lambda k: order[units[k][2]])  # homogeneous batches per metric
    try:
        judge = ctx.model("judge")
        with ctx.progress(STAGE, len(pending)) as bar:
            for batch in chunks(pending, judge.batch_size):
                requests = []
                for k in batch:
                    s, label, metric, (path, _) = units[k]
                    requests.append(
                        JudgeRequest(
                            key=k,
                            metric=metric,
                            category=s.category,
                            source_path=str(s.source_path),
                            edited_path=str(path),
                            instruction=s.instruction,
                            description=s.description,
                            rationale=s.rationale,
                        )
                    )
                for req, ans in zip(requests, judge.judge(requests)):
                    s, label, metric, (path, substituted) = units[req.key]
                    record = {
                        "key": req.key,
                        "sample_id": s.id,
                        "category": s.category,
                        "label": label,
                        "metric": metric,
                        "status": ans.status,
                        "fingerprint": expected[req.key],
                        "seconds": round(ans.seconds, 4),
                        "attempts": ans.attempts,
                        "cached": ans.cached,
                        "raw": ans.raw,
                        "model": ans.model,
                        "prompt_version": judge.prompt_version,
                        "image": str(path),
                        "substituted": substituted,
                    }
                    if ans.logprobs and judge.uses_logprob(metric):
                        record["token_probs"] = ans.logprobs
                    if ans.status == OK:
                        value = ans.value.value
                        record |= {
                            "value": list(value) if isinstance(value, tuple) else value,
                            "reasoning": ans.value.reasoning,
                            "flags": list(ans.value.flags),
                        }
                    else:
                        record |= {"error_type": ans.error_type, "error": ans.error}
                    store.append(record)
                    bar.update(1)
    finally:
        ctx.release("judge")
        store.close()
    ctx.check_error_rate(STAGE, store.load(), expected)
