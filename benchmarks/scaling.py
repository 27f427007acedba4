"""Scaling on one machine, in one run: data-parallel CPU ranks and the gpu_pool launcher.

1. Throughput: a CPU-bound editor (``model=busy_cpu``: a fixed amount of pure-Python work per
   edit, one core each) over 40 samples, in one process and on 2 ranks (``cpu_ranks=2``, through
   ``accelerate launch``). The edit stage's throughput comes from ``records/stages*.jsonl`` (from
   planning the stage to its last record; for ranks the longest rank), the end-to-end time
   includes starting the ranks (interpreters, torch and accelerate imports, the rendezvous).
2. Balance: the same on 2 ranks with per-sample costs that vary 10x (``model.skew=10``): the
   slowest rank's busy time (its model calls) over the mean.
3. The gpu_pool launcher's per-job overhead (``benchmarks/gpu_pool_overhead.py``).

Run: ``python benchmarks/scaling.py`` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

SAMPLES = 40
WORK = 1_000_000  # steps of the cheapest edit: ~0.1 s on one core here
CATEGORIES = ["physical", "environmental", "cultural", "causal", "referential"]


def dataset(root: Path) -> Path:
    """A folder dataset of SAMPLES small images (dataset=folder)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(SAMPLES):
        name = f"s{i:03d}.png"
        Image.new("RGB", (32, 32), (i * 5 % 255, 80, 160)).save(root / name)
        cat = CATEGORIES[i % len(CATEGORIES)]
        lines.append(
            json.dumps({"id": f"s{i:03d}", "image": name, "instruction": "x", "category": cat})
        )
    (root / "samples.jsonl").write_text("\n".join(lines) + "\n")
    return root


def run(folder: Path, data: Path, *extra: str) -> tuple[float, list[dict]]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", WANDB_MODE="disabled")
    cmd = [sys.executable, "-m", "reedit", "dataset=folder", f"dataset.root={data}"]
    cmd += ["model=busy_cpu", f"model.work={WORK}", "refiner=none", "judge=none"]
    cmd += ["stages=[edit]", "progress=false", f"run_dir={folder}", *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=folder.parent)
    wall = time.perf_counter() - t0
    runs = []
    for path in sorted((folder / "records").glob("stages*.jsonl")):
        runs += [json.loads(line) for line in path.read_text().splitlines()]
    return wall, [r for r in runs if r["stage"] == "edit"]


def stage_wall(runs: list[dict]) -> float:
    """The edit stage's wall time: the longest rank's (the ranks run side by side)."""
    return max(r["wall_seconds"] - r["load_seconds"] for r in runs)


def main() -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="reedit-scaling-"))
    data = dataset(tmp / "data")
    results = {}
    for name, extra in (("1 process", []), ("2 ranks", ["cpu_ranks=2"])):
        wall, runs = min(
            (run(tmp / f"{name[0]}-{i}", data, *extra) for i in range(2)), key=lambda x: x[0]
        )
        results[name] = (wall, stage_wall(runs))
    one, two = results["1 process"], results["2 ranks"]
    print(f"throughput: busy_cpu, {SAMPLES} samples of equal cost (~{WORK / 1e7:.1f} s each)")
    for name, (wall, stage) in results.items():
        print(
            f"  {name}: edit stage {stage:.2f} s ({SAMPLES / stage:.1f} samples/s), "
            f"end to end {wall:.1f} s"
        )
    print(f"  speed-up of the stage: {one[1] / two[1]:.2f}x; end to end: {one[0] / two[0]:.2f}x")

    _, runs = run(tmp / "skew", data, "cpu_ranks=2", "model.skew=10")
    busy = [r["busy_seconds"] for r in runs]
    mean = sum(busy) / 2  # a rank with no line did no work
    print("balance: 2 ranks, per-sample costs varying 10x (model.skew=10)")
    print(
        f"  busy seconds per rank: {', '.join(f'{b:.2f}' for b in busy)}; "
        f"slowest / mean: {max(busy) / mean:.3f}"
    )

    sys.path.insert(0, str(Path(__file__).parent))
    import gpu_pool_overhead

    return {
        "samples": SAMPLES,
        "one_process": {"stage_s": round(one[1], 3), "end_to_end_s": round(one[0], 2)},
        "two_ranks": {"stage_s": round(two[1], 3), "end_to_end_s": round(two[0], 2)},
        "speedup_stage": round(one[1] / two[1], 3),
        "speedup_end_to_end": round(one[0] / two[0], 3),
        "target_speedup": 1.7,
        "skew10_busy_s": [round(b, 3) for b in busy],
        "skew10_slowest_over_mean": round(max(busy) / mean, 3),
        "target_balance": 1.15,
        "gpu_pool": gpu_pool_overhead.main(),
    }


if __name__ == "__main__":
    main()
