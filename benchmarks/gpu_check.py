"""The GPU check's measurements (run by ``benchmarks/gpu_check.sh`` on a lent GPU machine, offline),
written to one JSON file:

1. ``pytest -m gpu``: the contract suite's tiny pipelines on CUDA in bf16 (tests/test_gpu.py), the
   real vLLM engine where ``vllm`` imports (tests/test_vllm_engine.py): passed / failed / skipped.
2. A 1-GPU run of the demo (``gpus=[0]``, bf16): exit code, wall time, the stages' records.
3. GPU utilisation during the edit stage: ``nvidia-smi`` sampled every 200 ms while the tiny
   FLUX.1-Kontext edits the demo's 10 samples at its default 1024x1024 (a realistic size); the
   share of samples between the stage's first and last record at >= 50 % utilisation, and the
   mean. Target: >= 90 % busy.
4. Two ranks on one GPU are not a layout reedit offers (a GPU id listed twice is refused at
   set-up): recorded as such.

    python benchmarks/gpu_check.py OUT_DIR
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ENV = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", WANDB_MODE="disabled")
# The two runs' settings besides gpus=[0] and run_dir (tests/test_gpu_check.py sets them up here).
DEMO = ["+experiment=demo", "logger=none", "model.dtype=bfloat16", "executor.dtype=bfloat16"]
BUSY = ["dataset=demo", "model=tiny_flux_kontext", "model.dtype=bfloat16", "stages=[edit]"]
BUSY += ["logger=none", "model.num_inference_steps=28"]  # the model's own: seconds to sample


def run(cmd: list[str], out: Path, name: str, timeout: float) -> dict:
    t0 = time.perf_counter()
    with open(out / f"{name}.log", "w") as log:
        try:
            proc = subprocess.run(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=ENV, timeout=timeout
            )
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    return {"exit": code, "seconds": round(time.perf_counter() - t0, 1)}


def pytest_gpu(out: Path) -> dict:
    res = run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs"], out, "pytest_gpu", 200)
    text = (out / "pytest_gpu.log").read_text(errors="replace")
    for word in ("passed", "failed", "skipped", "error"):
        m = re.search(rf"(\d+) {word}", text)
        res[word] = int(m.group(1)) if m else 0
    res["skips"] = [line for line in text.splitlines() if line.startswith("SKIPPED")]
    return res


class Sampler:
    """``nvidia-smi`` utilisation every 200 ms: (time, percent) pairs."""

    def __init__(self, smi: str = "nvidia-smi") -> None:
        self.samples: list[tuple[float, int]] = []
        cmd = [smi, "-i", "0", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
        self.proc = subprocess.Popen([*cmd, "-lms", "200"], stdout=subprocess.PIPE, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.strip().isdigit():
                self.samples.append((time.time(), int(line.strip())))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def edit_window(folder: Path) -> tuple[float, float] | None:
    """The edit stage's first and last record times (epoch seconds)."""
    path = folder / "records" / "edit.jsonl"
    if not path.is_file():
        return None
    times = []
    for line in path.read_text().splitlines():
        stamp = json.loads(line)["time"]  # 2026-12-06T15:04:10.123
        times.append(
            time.mktime(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) + float(stamp[19:] or 0)
        )
    return (min(times), max(times)) if times else None


def utilisation(samples: list[tuple[float, int]], window: tuple[float, float] | None) -> dict:
    """The samples inside the edit stage's window: the share at >= 50 % and the mean."""
    inside = [u for t, u in samples if window and window[0] <= t <= window[1]]
    return {
        "samples": len(inside),
        "busy_share_pct": round(100 * sum(u >= 50 for u in inside) / len(inside), 1)
        if inside
        else None,
        "mean_pct": round(sum(inside) / len(inside), 1) if inside else None,
        "target_busy_share_pct": 90,
    }


def main(out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    import torch

    result: dict = {
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
    }
    try:
        import vllm

        result["vllm"] = vllm.__version__
    except ImportError as exc:
        result["vllm"] = f"not importable: {exc}"
    save = lambda: (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")  # noqa: E731
    save()  # after every step: a call cut short still returns what was measured
    result["pytest_gpu"] = pytest_gpu(out)
    save()

    demo = out / "demo_run"
    cmd = [sys.executable, "-m", "reedit", *DEMO, "gpus=[0]", f"run_dir={demo}"]
    result["demo_1_gpu"] = run(cmd, out, "demo", 180)
    if (demo / "metrics.json").is_file():
        stages = json.loads((demo / "metrics.json").read_text())["stages"]
        result["demo_1_gpu"]["stages"] = {
            s: {"ok": c["ok"], "error": c["error"]} for s, c in stages.items()
        }
    save()

    busy = out / "busy_run"
    cmd = [sys.executable, "-m", "reedit", *BUSY, "gpus=[0]", f"run_dir={busy}"]
    sampler = Sampler()
    try:
        result["busy_run"] = run(cmd, out, "busy", 150)
    finally:
        sampler.stop()
    result["utilisation_during_edit"] = utilisation(sampler.samples, edit_window(busy))
    result["two_ranks_one_gpu"] = "not offered: a GPU listed twice in gpus is refused at set-up"
    save()
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/reedit-gpu-check"))
