"""What a run costs before and after its work, counted and timed in fresh processes:

1. ``import reedit`` and ``python -m reedit --help`` (wall time above a bare interpreter's start).
2. Model loads per run: the demo on its real tiny models (an editor, a refiner, an executor and a
   judge) counted from the run's log lines ("loading <kind> <class>"), against the distinct models
   it names. Target: equal (each model loads once per run).
3. Resume of a finished 1,000-sample run (identity editor, folder dataset): the wall time of
   ``python -m reedit run_dir=<folder>`` and the models it loads. Target: < 5 s, none.

    python benchmarks/startup_and_resume.py [--n 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ENV = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", WANDB_MODE="disabled")
DEMO = ["dataset=demo", "model=identity", "executor=tiny_flux2", "refiner=tiny_qwen25_vl_refiner"]
DEMO += ["judge=tiny_qwen3_vl_judge", "judge.cache=false", "progress=false"]
GROUPS = ("model", "executor", "refiner", "judge")


def timed(*args: str, cwd: Path, repeat: int = 1) -> tuple[float, str]:
    """The median wall time of ``python <args>`` and the last run's stderr."""
    times, err = [], ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=900
        )
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"{args}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
        err = proc.stderr
    return statistics.median(times), err


def loads(log: str) -> int:
    return sum(" - loading " in line for line in log.splitlines())


def folder_dataset(root: Path, n: int) -> Path:
    root.mkdir(parents=True)
    cats = ["physical", "environmental", "cultural", "causal", "referential"]
    lines = []
    for i in range(n):
        Image.new("RGB", (64, 64), (i % 256, 90, 160)).save(root / f"{i:05d}.png")
        lines.append({"id": f"s{i:05d}", "image": f"{i:05d}.png", "instruction": "x"})
        lines[-1]["category"] = cats[i % 5]
    (root / "samples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root


def main(n: int = 1000) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="reedit-bench-"))
    bare, _ = timed("-c", "pass", cwd=tmp, repeat=5)
    imp, _ = timed("-c", "import reedit", cwd=tmp, repeat=5)
    helped, _ = timed("-m", "reedit", "--help", cwd=tmp, repeat=3)

    demo_wall, demo_log = timed("-m", "reedit", *DEMO, f"run_dir={tmp / 'demo'}", cwd=tmp)
    # the distinct models the run names: the groups given a model other than none
    distinct = sum(not a.endswith("=none") for a in DEMO if a.split("=")[0] in GROUPS)

    data = folder_dataset(tmp / "data", n)
    big = ["dataset=folder", f"dataset.root={data}", "model=identity", "refiner=none"]
    big += ["judge=none", "progress=false", f"run_dir={tmp / 'big'}"]
    first, first_log = timed("-m", "reedit", *big, cwd=tmp)
    resume, resume_log = timed("-m", "reedit", f"run_dir={tmp / 'big'}", cwd=tmp, repeat=3)
    result = {
        "interpreter_start_s": round(bare, 3),
        "import_reedit_s": round(imp - bare, 3),
        "help_s": round(helped, 3),
        "demo": {"wall_s": round(demo_wall, 1), "model_loads": loads(demo_log)},
        "demo_distinct_models": distinct,
        "resume": {
            "samples": n,
            "first_run_s": round(first, 2),
            "first_run_model_loads": loads(first_log),
            "resume_s": round(resume, 2),
            "resume_model_loads": loads(resume_log),
            "target_s": 5,
        },
    }
    print(json.dumps(result, indent=2))
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    main(ap.parse_args().n)
