"""The gpu_pool launcher's cost per job: a sweep of identity jobs through `hydra/launcher=gpu_pool`
(each job its own ``python -m reedit`` process) against the same sweep through Hydra's basic
launcher (every job in the sweep's own process, one after another), with one slot so that both
run the jobs one at a time. The difference per job is what re-executing costs (an interpreter,
Hydra's composition and reedit's imports again); with k slots the jobs overlap. Run:
``python benchmarks/gpu_pool_overhead.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOBS = 6
JOB = ["dataset=demo", "model=identity", "limit=1", "categories=[physical]", "refiner=none"]
JOB += ["judge=none", "progress=false", f"seed={','.join(str(i) for i in range(JOBS))}"]


def sweep(folder: Path, *launcher: str) -> float:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", WANDB_MODE="disabled")
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "reedit", "-m", *JOB, f"hydra.sweep.dir={folder}", *launcher],
        check=True,
        capture_output=True,
        env=env,
        cwd=folder.parent,
    )
    return time.perf_counter() - t0


def main() -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="reedit-bench-"))
    sweep(tmp / "warm")  # the source cache and the file system, once
    basic = min(sweep(tmp / f"basic{i}") for i in range(2))
    pool = ["hydra/launcher=gpu_pool", "hydra.launcher.cpu=true"]
    one = min(sweep(tmp / f"pool1-{i}", *pool, "hydra.launcher.pool=[a]") for i in range(2))
    two = min(sweep(tmp / f"pool2-{i}", *pool, "hydra.launcher.pool=[a,b]") for i in range(2))
    print(f"{JOBS} identity jobs (one demo sample each):")
    print(f"  basic launcher (in process, one at a time): {basic:.1f} s")
    print(f"  gpu_pool, 1 slot:  {one:.1f} s  -> +{(one - basic) / JOBS:.2f} s per job")
    print(f"  gpu_pool, 2 slots: {two:.1f} s  ({one / two:.2f}x the 1-slot sweep)")
    return {
        "jobs": JOBS,
        "basic_s": round(basic, 2),
        "pool_1_slot_s": round(one, 2),
        "pool_2_slots_s": round(two, 2),
        "extra_per_job_s": round((one - basic) / JOBS, 2),
    }


if __name__ == "__main__":
    main()
