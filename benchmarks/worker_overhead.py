"""The worker runtime's cost: the round trip per 1024x1024 edit request against the same editor in
process, and the worker's start time without a model load.

Both sides do the same work per request: read and decode the source PNG, edit (the identity
editor: the model call costs nothing, so the difference is the runtime's), encode the output PNG
and put it at its final path (in process: the run's encoder and an atomic write; worker: the
worker encodes and writes, the parent renames). Run: ``python benchmarks/worker_overhead.py``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from reedit.config import spec_of
from reedit.models.base import EditRequest
from reedit.records import write_image_atomic
from reedit.runtime import Placement, open_model

N = 40


def per_request(editor, source: Path, out: Path) -> list[float]:
    times = []
    for i in range(N):
        t0 = time.perf_counter()
        (res,) = editor.edit([EditRequest(f"s{i}", f"s{i}", "physical", source, "x", i)])
        write_image_atomic(res.image, out / f"s{i}.png")
        times.append(time.perf_counter() - t0)
    return times[5:]  # warm


def main() -> dict:
    import numpy as np
    from PIL import Image

    tmp = Path(tempfile.mkdtemp(prefix="reedit-bench-"))
    source = tmp / "source.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (1024, 1024, 3), dtype=np.uint8)).save(source)
    inproc = open_model(
        spec_of({"_target_": "reedit.models.editors.identity.IdentityEditor"}, "model"), Placement()
    )
    node = {"_target_": "reedit.models.editors.identity.IdentityEditor", "runtime": "worker"}
    hosted = open_model(spec_of(node, "model"), Placement())
    starts = []
    for _ in range(3):
        t0 = time.perf_counter()
        hosted.load()
        starts.append(time.perf_counter() - t0)
        hosted.close()
    hosted.load()
    (tmp / "a").mkdir()
    (tmp / "b").mkdir()
    hosted.scratch = tmp / "scratch"
    a = per_request(inproc, source, tmp / "a")
    b = per_request(hosted, source, tmp / "b")
    hosted.close()
    ma, mb = statistics.median(a) * 1e3, statistics.median(b) * 1e3
    sys.stdout.write(
        f"1024x1024 edit request, median of {len(a)}: in process {ma:.1f} ms, worker {mb:.1f} ms, "
        f"worker extra {mb - ma:+.1f} ms (target <= 15 ms)\n"
        f"worker start without a model load: median {statistics.median(starts) * 1e3:.0f} ms "
        f"(of {len(starts)})\n"
    )
    return {
        "requests": len(a),
        "in_process_ms": round(ma, 1),
        "worker_ms": round(mb, 1),
        "worker_extra_ms": round(mb - ma, 1),
        "worker_start_ms": round(statistics.median(starts) * 1e3),
        "target_extra_ms": 15,
    }


if __name__ == "__main__":
    main()
