"""Memory and time of loading a large RE-Edit.json (streaming parse, sources cached on disk).

Builds a RE-Edit-format file of N samples with ~M MB PNG sources (default 1000 x 2 MB, about
2.7 GB of JSON), then loads it in a fresh process and reports the peak RSS above the
interpreter's baseline (after imports). Target: < 500 MB. A second load (sources cached) is
timed too.

    python benchmarks/loader_memory.py [--n 1000] [--mb 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CATS = ["physical", "environmental", "cultural", "causal", "referential"]

CHILD = r"""
import json, resource, sys, time
from reedit.data.re_edit import ReEditDataset
import PIL.Image, ijson  # imported before the baseline: part of the interpreter's footprint
def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
base = rss_mb()
t0 = time.perf_counter()
res = ReEditDataset(path=sys.argv[1], cache_dir=sys.argv[2]).load()
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"samples": len(res.samples), "bad": len(res.bad_records),
                  "baseline_rss_mb": round(base, 1), "peak_rss_mb": round(peak, 1),
                  "peak_above_baseline_mb": round(peak - base, 1),
                  "rss_after_mb": round(rss_mb(), 1), "seconds": round(seconds, 2)}))
"""


def make_pngs(mb: float, count: int = 4) -> list[str]:
    """A few distinct noise PNGs of about `mb` MB each, as base64 strings."""
    import numpy as np
    from PIL import Image

    side = int((mb * 1024 * 1024 / 3) ** 0.5)
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(
            buf, format="PNG", compress_level=1
        )
        out.append(base64.b64encode(buf.getvalue()).decode())
    return out


def build(path: Path, n: int, mb: float) -> None:
    images = make_pngs(mb)
    with open(path, "w") as f:
        f.write("[\n")
        for i in range(n):
            cat = CATS[i % 5]
            rec = {
                "subset": cat,
                "original_image_path": f"generated_images_2/{i:05d}_{cat}_medium.png",
                "edit_instruction_en": f"Edit number {i}: make the sky orange",
                "original_description_en": "A synthetic scene.",
                "rationale_short_en": "Lighting must follow.",
                "difficulty": "medium",
                "src_img_b64": images[i % len(images)],
            }
            f.write(("," if i else "") + json.dumps(rec) + "\n")
        f.write("]\n")


def main() -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--mb", type=float, default=2.0)
    ap.add_argument("--keep", default=None, help="work in this folder and keep it")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="reedit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "RE-Edit.json"
    t0 = time.perf_counter()
    if not data.exists():
        build(data, args.n, args.mb)
    build_s = time.perf_counter() - t0
    cache = work / "cache"
    runs = []
    for _ in range(2):  # cold (writes the source cache), then warm (cache hits)
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(data), str(cache)],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    result = {
        "file_gb": round(data.stat().st_size / 1e9, 2),
        "n": args.n,
        "image_mb": args.mb,
        "build_seconds": round(build_s, 1),
        "cold": runs[0],
        "warm": runs[1],
        "target_peak_above_baseline_mb": 500,
    }
    print(json.dumps(result, indent=2))
    if not args.keep:
        import shutil

        shutil.rmtree(work)
    return result


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
