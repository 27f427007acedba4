"""The performance suite in one command (``make bench``): every benchmark of this folder, each in a
fresh process, one after another; the results, the machine and each target's outcome go to one
JSON file (default ``benchmarks/results.json``) and a table is printed (the README's Performance
section is that table).

    python benchmarks/suite.py [--out FILE] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# name: (module, arguments of its main())
BENCHMARKS = {
    "startup_and_resume": ("startup_and_resume", [1000]),
    "overhead_512": ("pipeline_overhead", [200, 512]),
    "overhead_1024": ("pipeline_overhead", [100, 1024]),
    "kontext": ("kontext_overhead", []),
    "worker": ("worker_overhead", []),
    "judge": ("judge_throughput", []),
    "scaling": ("scaling", []),
    "loader_memory": ("loader_memory", []),
}


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text().split()[1]
        ram_gb = round(int(mem) / 2**20, 1)
    except OSError:
        ram_gb = None
    import torch

    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "ram_gb": ram_gb,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def run_one(module: str, args: list) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    code = (
        f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import {module}; "
        f"json.dump({module}.main(*{args!r}), open({out!r}, 'w'))"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", WANDB_MODE="disabled")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", code], env=env, timeout=3600)
    except subprocess.TimeoutExpired:
        os.unlink(out)
        return {"error": "no result within 3600 s", "suite_seconds": 3600}
    seconds = round(time.perf_counter() - t0, 1)
    try:
        if proc.returncode != 0:
            return {"error": f"exit code {proc.returncode}", "suite_seconds": seconds}
        return {**json.loads(Path(out).read_text()), "suite_seconds": seconds}
    finally:
        os.unlink(out)


# figure, where its value is in the results (a dotted path), its target: a comparison, a bound
TARGETS = [
    ("resume of a finished 1,000-sample run, s", "startup_and_resume.resume.resume_s", "<", 5),
    ("model loads in that resume", "startup_and_resume.resume.resume_model_loads", "=", 0),
    ("framework overhead per sample at 512², ms", "overhead_512.overhead_ms_per_sample", "≤", 20),
    ("framework overhead per sample at 1024², ms", "overhead_1024.overhead_ms_per_sample", "≤", 20),
    (
        "python -m reedit / bare loop, tiny Kontext (defaults)",
        "kontext.ratio_reedit_to_bare",
        "≤",
        1.05,
    ),
    ("worker round trip − in process, 1024² request, ms", "worker.worker_extra_ms", "≤", 15),
    ("2 CPU ranks / 1 process, edit-stage throughput", "scaling.speedup_stage", "≥", 1.7),
    ("slowest rank / mean under 10x cost skew", "scaling.skew10_slowest_over_mean", "≤", 1.15),
    (
        "loader peak RSS, 1,000 samples x 2 MB, MB",
        "loader_memory.cold.peak_above_baseline_mb",
        "<",
        500,
    ),
    ("judge cache hit, ms per judgement", "judge.cache_hit_ms_per_judgement.median", "≤", 2),
    ("python -m reedit --help, s", "startup_and_resume.help_s", "<", 2),
]
COMPARE = {"<": operator.lt, "≤": operator.le, "=": operator.eq, "≥": operator.ge}


def _get(node: object, path: str) -> object:
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def targets(r: dict) -> list[tuple[str, object, str, bool | None]]:
    """(figure, value, target, met) for every figure with a target; None: not measured."""
    loads = _get(r, "startup_and_resume.demo.model_loads")
    distinct = _get(r, "startup_and_resume.demo_distinct_models")
    rows = [
        (
            "model loads in the demo run / distinct models",
            None if loads is None else f"{loads} / {distinct}",
            "equal",
            None if loads is None else loads == distinct,
        )
    ]
    for figure, path, op, bound in TARGETS:
        value = _get(r, path)
        met = None if value is None else bool(COMPARE[op](value, bound))
        rows.append((figure, value, f"{op} {bound}", met))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(HERE / "results.json"))
    ap.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS))
    args = ap.parse_args()
    results: dict = {}
    if args.only and Path(args.out).is_file():  # the others' results stay as they were
        results = json.loads(Path(args.out).read_text())
    results |= {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M")}
    if args.only:
        results["rerun"] = {"names": args.only, "date": results["date"]}
    for name, (module, margs) in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        print(f"== {name} ({module})", flush=True)
        results[name] = run_one(module, margs)
    table = targets(results)
    results["targets"] = [{"figure": f, "value": v, "target": t, "met": m} for f, v, t, m in table]
    Path(args.out).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\n{results['machine']['cpu']}, {results['machine']['cores']} cores")
    print("| figure | value | target | met |\n|---|---|---|---|")
    for f, v, t, m in table:
        print(f"| {f} | {v} | {t} | {'—' if m is None else 'yes' if m else 'NO'} |")
    print(f"\nwritten: {args.out}")
    failed = [n for n, r in results.items() if isinstance(r, dict) and "error" in r]
    if failed:
        print(f"benchmarks that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
