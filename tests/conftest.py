"""Shared fixtures. Every test runs offline, on CPU, with W&B disabled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
for var, value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "WANDB_MODE": "disabled",
}.items():
    os.environ.setdefault(var, value)
if str(TESTS) not in sys.path:  # the test doubles' module, for `_target_: doubles.X`
    sys.path.insert(0, str(TESTS))

TEST_CONF = f"file://{TESTS / 'conf'}"

# Every stage on the real tiny models: the identity editor keeps the demo's scenes, the trained
# refiner asks to polish them, the tiny FLUX.2 executor turns them into noise, and the trained
# judge tells scenes from noise.
REAL_MODELS = (
    "dataset=demo",
    "model=identity",
    "executor=tiny_flux2",
    "refiner=tiny_qwen25_vl_refiner",
    "judge=tiny_qwen3_vl_judge",
    "judge.cache=false",
    "progress=false",
)
# Fault injection: the scripted refiner and judge (tests/doubles.py) fail on demand.
SCRIPTED = ("dataset=demo", "refiner=scripted", "judge=scripted", "progress=false")


# The tiny models the tests build (pipelines, the trained judge and refiner) are kept between test
# sessions here: each build's folder is named by its recipe's version and checked against the
# fingerprint of the code that builds it (reedit/testing), so an edited recipe is built again.
# .ci/run empties it once per run, so CI still builds every one of them cold once.
TEST_CACHE = Path(os.environ.get("REEDIT_TEST_CACHE") or Path.home() / ".cache" / "reedit-tests")


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Decoded sources go to a per-session cache, never to the user's home; tiny models to the
    persistent, recipe-keyed :data:`TEST_CACHE` (session-scoped so that module fixtures building
    tiny models see it too)."""
    cache = tmp_path_factory.getbasetemp() / "reedit-cache"
    (TEST_CACHE / "tiny").mkdir(parents=True, exist_ok=True)
    cache.mkdir(exist_ok=True)
    (cache / "tiny").symlink_to(TEST_CACHE / "tiny", target_is_directory=True)
    mp = pytest.MonkeyPatch()
    mp.setenv("REEDIT_CACHE", str(cache))
    yield
    mp.undo()


def compose_config(*overrides: str, return_hydra_config: bool = False):
    """Compose the real config tree (plus tests/conf for the test doubles) with overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from reedit.cli import config_dir  # registers schemas and resolvers

    with initialize_config_dir(str(config_dir()), version_base="1.3", job_name="reedit"):
        return hydra_compose(
            "config",
            overrides=[f"hydra.searchpath=[{TEST_CONF}]", *overrides],
            return_hydra_config=return_hydra_config,
        )


@pytest.fixture
def compose():
    """:func:`compose_config` as a fixture."""
    return compose_config


def reedit_env(**extra: str) -> dict[str, str]:
    """Environment for a `python -m reedit` subprocess that can import the test doubles."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With ``REEDIT_REQUIRE_EXTERNAL=1`` (CI), an external-model test that skips fails: CI has
    the repository snapshots, so a skip there would hide a model that no longer runs."""
    outcome = yield
    report = outcome.get_result()
    required = os.environ.get("REEDIT_REQUIRE_EXTERNAL")
    gpu = item.get_closest_marker("gpu")  # needs a GPU and weights: skips on CPU machines
    if required and report.skipped and item.get_closest_marker("external") and not gpu:
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, but REEDIT_REQUIRE_EXTERNAL=1 (CI): {reason}"


DEMO_SWEEP_MODELS = ("identity", "tiny_qwen_image_edit", "tiny_flux2")


@pytest.fixture(scope="session")
def demo_sweep(tmp_path_factory) -> Path:
    """The demo on three tiny editors (one sample per category), W&B offline: a real sweep."""
    from reedit.testing.trained import ensure_trained

    ensure_trained("qwen3_vl_judge")  # once, before the jobs (the sweep's first job would)
    ensure_trained("qwen25_vl_refiner")
    tmp = tmp_path_factory.mktemp("demo_sweep")
    sweep = tmp / "sweep"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "reedit",
            "-m",
            "+experiment=demo",
            f"model={','.join(DEMO_SWEEP_MODELS)}",
        ]
        + ["limit=1", "progress=false", f"hydra.sweep.dir={sweep}"],
        capture_output=True,
        text=True,
        cwd=tmp,
        env=reedit_env(WANDB_MODE="offline", HOME=str(tmp / "home")),
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "comparison of 3 runs: wrote comparison.json" in proc.stderr
    return sweep
