"""The GPU check's parts that run without a GPU (benchmarks/gpu_check.py): its two runs' settings
pass set-up, the edit stage's window is read from real records, and the utilisation sampler reads
``nvidia-smi``'s output (a stand-in here: no GPU, no driver). A lent GPU's minutes are few; a typo
found here does not cost one of them."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

from reedit.run import run, setup

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("which", ["DEMO", "BUSY"])
def test_the_gpu_checks_runs_pass_set_up(gpu_check, compose, which):
    s = setup(compose(*getattr(gpu_check, which)))
    assert s.specs["model"].settings.dtype == "bfloat16"


def test_the_edit_window_is_read_from_a_runs_records(gpu_check, compose, tmp_path):
    before = time.time()
    run(compose("dataset=demo", "model=identity", "stages=[edit]", "progress=false"), tmp_path)
    after = time.time()
    first, last = gpu_check.edit_window(tmp_path)
    assert before - 0.01 <= first <= last <= after + 0.01
    assert gpu_check.edit_window(tmp_path / "nothing") is None


NVIDIA_SMI_STAND_IN = """\
import sys, time
# what `nvidia-smi -i 0 --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 200`
# prints: one integer per line, every 200 ms, until it is stopped
assert sys.argv[1:] == ["-i", "0", "--query-gpu=utilization.gpu",
                        "--format=csv,noheader,nounits", "-lms", "200"], sys.argv
for value in [0, 97, 98, 40, 99] + [0] * 1000:
    print(value, flush=True)
    time.sleep(0.2)
"""


def test_the_sampler_reads_nvidia_smis_lines_and_keeps_those_of_the_window(gpu_check, tmp_path):
    smi = tmp_path / "nvidia-smi"
    smi.write_text(f"#!{sys.executable}\n{NVIDIA_SMI_STAND_IN}")
    smi.chmod(0o755)
    sampler = gpu_check.Sampler(str(smi))
    try:
        deadline = time.time() + 30
        while len(sampler.samples) < 6 and time.time() < deadline:
            time.sleep(0.05)
    finally:
        sampler.stop()
    values = [u for _, u in sampler.samples]
    assert values[:6] == [0, 97, 98, 40, 99, 0], values
    times = [t for t, _ in sampler.samples]
    window = (times[1], times[4])  # the four samples from 97 to 99
    got = gpu_check.utilisation(sampler.samples, window)
    assert got["samples"] == 4 and got["busy_share_pct"] == 75.0 and got["mean_pct"] == 83.5
    assert gpu_check.utilisation(sampler.samples, None)["busy_share_pct"] is None
