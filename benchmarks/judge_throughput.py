"""Judge throughput on the tiny transformers backend (batch 1 vs 8) and the cache hit path.

The tiny Qwen3-VL (random weights, built locally) judges the demo dataset's sources against
themselves: 10 samples x 3 metrics = 30 judgements, max_new_tokens 32, no retries. Then the same
judgements are asked again with the cache on: the time per judgement of a cache hit (key:
hashing both images, one small JSON file read, the reply parsed again). Target: <= 2 ms.

    python benchmarks/judge_throughput.py
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from reedit.testing import locate


def main() -> dict:
    from reedit.data.re_edit import ReEditDataset
    from reedit.judge import Judge, JudgeRequest
    from reedit.models.vlm.transformers_vl import TransformersVLM

    demo = Path(__file__).resolve().parents[1] / "reedit" / "data" / "demo" / "re_edit_demo.json"
    result: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        samples = ReEditDataset(path=str(demo), cache_dir=str(Path(tmp) / "src")).load().samples
        reqs = [
            JudgeRequest(
                f"{s.id}/{m}",
                m,
                s.category,
                str(s.source_path),
                str(s.source_path),
                s.instruction,
                s.description,
                s.rationale,
            )
            for s in samples
            for m in ("dimension", "if", "sc")
        ]
        for batch in (1, 8):
            vlm = TransformersVLM(
                path="tiny:qwen3_vl",
                dtype="float32",
                temperature=0.0,
                top_p=1.0,
                batch_size=batch,
                locate=locate,
            )
            vlm.load()
            judge = Judge(
                vlm=vlm,
                metrics=["dimension", "if", "sc"],
                retries=0,
                max_new_tokens=32,
                batch_size=batch,
                cache=False,
            )
            judge.judge(reqs[:batch])  # warm-up
            t0 = time.perf_counter()
            judge.judge(reqs)
            seconds = time.perf_counter() - t0
            result[f"batch_{batch}"] = {
                "judgements": len(reqs),
                "seconds": round(seconds, 3),
                "judgements_per_second": round(len(reqs) / seconds, 2),
            }
            vlm.close()
        cache_dir = Path(tmp) / "judgements"
        vlm = TransformersVLM(
            path="tiny:qwen3_vl",
            dtype="float32",
            temperature=0.0,
            top_p=1.0,
            batch_size=8,
            locate=locate,
        )
        Judge(
            vlm=vlm,
            metrics=["dimension", "if", "sc"],
            retries=0,
            max_new_tokens=32,
            cache_dir=str(cache_dir),
        ).judge(reqs)
        hits = []
        for _ in range(5):
            fresh = Judge(
                vlm=vlm,
                metrics=["dimension", "if", "sc"],
                retries=0,
                max_new_tokens=32,
                cache_dir=str(cache_dir),
            )
            t0 = time.perf_counter()
            answers = fresh.judge(reqs)
            hits.append((time.perf_counter() - t0) / len(reqs))
            assert all(a.cached for a in answers)
        result["cache_hit_ms_per_judgement"] = {
            "median": round(1000 * sorted(hits)[2], 3),
            "first_in_process": round(1000 * hits[0], 3),
            "target": 2.0,
        }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
