"""Trackers: what a run tells them and when (the launching process only; each stage, the report,
``finish`` with the exit code, also on failure), that no secret reaches them, and that a tracker
in trouble costs one warning and nothing of the local results. ``logger=wandb`` for real, in
offline mode: everything in the run folder, the samples table with its images, a resume
continuing the same W&B run.

:class:`tracking_doubles.RecordingTracker` (``logger=recording``) is the real ``Tracker`` base class
writing each call, and the process that made it, to a file."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import reedit_env

from reedit.run import run
from reedit.tracking import REDACTED, is_secret_key, redact
from reedit.tracking.wandb_tracker import flat_metrics

QUICK = ["dataset=demo", "refiner=none", "judge=none", "progress=false", "executor=identity"]
SENTINEL = "sk-reedit-SENTINEL-7f3a9c"  # what every secret of the environment is set to


def calls(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_the_tracker_hears_the_start_each_stage_the_report_and_the_end_in_order(compose, tmp_path):
    log = tmp_path / "calls.jsonl"
    over = [*QUICK, "model=identity", "logger=recording", f"logger.path={log}"]
    metrics = run(compose(*over), run_dir=tmp_path / "run")
    seen = calls(log)
    assert [c["call"] for c in seen] == ["start", "log_stage", "log_report", "finish"]
    start, stage, report, finish = seen
    assert start["name"] == "run" and start["config"]["model"]["_target_"].endswith(
        "IdentityEditor"
    )
    assert (stage["stage"], stage["done"], stage["errors"]) == ("edit", 10, 0)
    assert report["n"] == 10 and len(report["samples"]) == 10
    assert any(f.endswith("report.html") for f in report["files"])
    assert finish["exit_code"] == 0
    assert metrics["stages"]["edit"]["ok"] == 10
    # a resume with nothing to do: no stage to tell of, the report and the end again
    run(compose(*over), run_dir=tmp_path / "run")
    assert [c["call"] for c in calls(log)[4:]] == ["start", "log_report", "finish"]


def test_a_failed_run_still_finishes_its_tracker_with_a_non_zero_exit_code(compose, tmp_path):
    from reedit.stages.resume import StageFailed

    fail = tmp_path / "fail.txt"
    fail.write_text("00000_physical_easy")  # 1 of 10 fails: over max_error_rate=0.05
    log = tmp_path / "calls.jsonl"
    over = [*QUICK, "model=slow_identity", f"model.fail_file={fail}", "logger=recording"]
    with pytest.raises(StageFailed, match="1 of 10"):
        run(compose(*over, f"logger.path={log}", "max_error_rate=0.05"), run_dir=tmp_path / "r")
    seen = calls(log)
    assert [c["call"] for c in seen] == ["start", "log_stage", "finish"]
    assert seen[1]["errors"] == 1 and seen[-1]["exit_code"] == 2  # the exit code it gets


@pytest.mark.parametrize("fail_on", ["start", "log_stage", "log_report"])
def test_a_tracker_in_trouble_costs_one_warning_and_no_local_result(
    compose, tmp_path, caplog, fail_on
):
    log = tmp_path / "calls.jsonl"
    over = [*QUICK, "model=identity", "logger=recording", f"logger.path={log}"]
    with caplog.at_level(logging.WARNING):
        metrics = run(compose(*over, f"logger.fail_on={fail_on}"), run_dir=tmp_path / "run")
    warnings = [r for r in caplog.records if "RecordingTracker" in r.getMessage()]
    assert len(warnings) == 1 and f"{fail_on} failed (ConnectionError" in warnings[0].getMessage()
    assert "the run goes on and its local report is complete" in warnings[0].getMessage()
    assert metrics["stages"]["edit"]["ok"] == 10
    for name in ("metrics.json", "samples.csv", "report.md", "report.html"):
        assert (tmp_path / "run" / name).is_file()
    seen = [c["call"] for c in calls(log)] if log.is_file() else []
    # quiet after the failure; a tracker that started is still finished
    expected = {
        "start": [],
        "log_stage": ["start", "finish"],
        "log_report": ["start", "log_stage", "finish"],
    }
    assert seen == expected[fail_on]


def test_only_the_launching_process_tells_the_tracker_never_a_rank(tmp_path):
    log = tmp_path / "calls.jsonl"
    args = [*QUICK, "model=busy_cpu", "model.work=100000", "cpu_ranks=2", "logger=recording"]
    proc = subprocess.run(
        [sys.executable, "-m", "reedit", *args, f"logger.path={log}"]
        + ["hydra.searchpath=[file://" + str(Path(__file__).parent / "conf") + "]"]
        + [f"run_dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=reedit_env(),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = calls(log)
    ranks = {
        json.loads((tmp_path / "run" / "ranks" / f"rank{k}.json").read_text())["pid"]
        for k in (0, 1)
    }
    assert len({c["pid"] for c in seen}) == 1 and not {c["pid"] for c in seen} & ranks
    assert [c["call"] for c in seen] == ["start", "log_stage", "log_report", "finish"]
    stage = seen[1]  # the ranks' lines of the stage, merged
    assert (stage["stage"], stage["done"], stage["rank"]) == ("edit", 10, None)


# ----------------------------------------------------------------------------------- secrets
def test_secret_keys_and_the_environments_secrets_are_redacted():
    secret = ("api_key", "HF_TOKEN", "WANDB_API_KEY", "password", "OPENAI_KEY", "private_key")
    secret += ("Authorization", "auth", "cookie", "apiKey", "access_token")
    assert [k for k in secret if not is_secret_key(k)] == []
    kept = ("api_key_env", "max_new_tokens", "keyword", "num_keys", "monkey", "path")
    assert [k for k in kept if is_secret_key(k)] == []
    assert redact({"url": "https://me:pw@host/v1", "plain": "https://host/v1"}) == {
        "url": "https://<redacted>@host/v1",
        "plain": "https://host/v1",
    }
    node = {
        "vlm": {"api_key": "abc", "api_key_env": "OPENAI_API_KEY", "max_new_tokens": 8},
        "notice": f"Bearer {SENTINEL}",
        "tags": ["a", SENTINEL],
    }
    assert redact(node, frozenset({SENTINEL})) == {
        "vlm": {"api_key": REDACTED, "api_key_env": "OPENAI_API_KEY", "max_new_tokens": 8},
        "notice": REDACTED,
        "tags": ["a", REDACTED],
    }


def test_no_secret_of_the_environment_reaches_the_logged_config(compose, tmp_path, monkeypatch):
    for name in ("OPENAI_API_KEY", "WANDB_API_KEY", "HF_TOKEN"):
        monkeypatch.setenv(name, SENTINEL)
    log = tmp_path / "calls.jsonl"
    over = [*QUICK, "model=identity", "logger=recording", f"logger.path={log}"]
    # a value that resolves to a secret (interpolated from the environment)
    run(compose(*over, "notice=${oc.env:HF_TOKEN}"), run_dir=tmp_path / "run")
    start = calls(log)[0]
    assert SENTINEL not in json.dumps(start)
    assert start["config"]["notice"] == REDACTED


# --------------------------------------------------------------------------------- W&B, real
def _wandb(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reedit", *QUICK, "logger=wandb", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=reedit_env(HOME=str(tmp_path / "home"), **env),
        timeout=600,
    )


def _table(path: Path) -> dict | None:
    """A W&B table (its JSON), or None."""
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("_type") == "table" else None


def test_wandb_offline_keeps_its_run_and_the_samples_table_inside_the_run_folder(tmp_path):
    folder = tmp_path / "run"
    secrets = {k: SENTINEL for k in ("OPENAI_API_KEY", "WANDB_API_KEY", "HF_TOKEN")}
    proc = _wandb(
        tmp_path, "model=identity", "limit=1", f"run_dir={folder}", WANDB_MODE="offline", **secrets
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = (folder / "wandb" / "reedit-run-id").read_text()
    (offline,) = (folder / "wandb").glob(f"offline-run-*-{run_id}")
    assert (offline / f"run-{run_id}.wandb").stat().st_size > 0
    # the samples table, staged in the run folder with its images (what wandb sync uploads)
    staged = [p for p in folder.rglob("*") if p.is_file()]
    tables = [t for p in staged if (t := _table(p)) is not None]
    assert tables, sorted(str(p.relative_to(folder)) for p in staged)[:80]
    table = tables[0]
    assert table["columns"][:5] == ["sample_id", "category", "instruction", "source", "primary"]
    assert len(table["data"]) == 5  # the demo's first sample of each category
    images = [cell for row in table["data"] for cell in row if isinstance(cell, dict)]
    assert len(images) == 10 and {i["_type"] for i in images} == {"image-file"}  # source, primary
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in staged}
    assert all(i["sha256"] in digests for i in images)  # each image's file is in the run folder
    assert not list((tmp_path / "home").rglob("*.jpg"))  # nothing of the run staged outside it
    for path in folder.rglob("*"):  # configs, logs, records, reports, the W&B run itself
        if path.is_file():
            assert SENTINEL.encode() not in path.read_bytes(), path
    # a resume continues the same W&B run
    again = _wandb(tmp_path, f"run_dir={folder}", WANDB_MODE="offline")
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(list((folder / "wandb").glob(f"offline-run-*-{run_id}"))) == 2


def test_wandb_that_cannot_start_online_leaves_the_run_and_its_report_whole(tmp_path):
    folder = tmp_path / "run"
    proc = _wandb(
        tmp_path,
        "model=identity",
        "limit=1",
        "logger.mode=online",
        f"run_dir={folder}",
        WANDB_MODE="online",
        WANDB_API_KEY="",
        WANDB_BASE_URL="http://127.0.0.1:9",  # nothing listens there
        WANDB_INIT_TIMEOUT="10",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("WandbTracker: start failed") == 1
    assert json.loads((folder / "metrics.json").read_text())["stages"]["edit"]["ok"] == 5
    assert (folder / "report.html").is_file()


def test_flat_metrics_have_readable_keys(compose, tmp_path):
    metrics = run(compose(*QUICK, "model=identity"), run_dir=tmp_path)
    flat = flat_metrics(metrics)
    assert flat["stages/edit/ok"] == 10 and flat["n_samples"] == 10
    assert all("/" in k or k in ("n_samples", "best_category", "worst_category") for k in flat)


def test_no_secret_reaches_any_file_of_a_run_with_a_worker_an_api_judge_and_wandb(tmp_path):
    """OPENAI_API_KEY, WANDB_API_KEY and HF_TOKEN set to a sentinel; the editor in a worker
    process (its log lines in the run's log), the judge behind an OpenAI-compatible server on
    127.0.0.1 (sent the key), the offline W&B run: no file of the run folder holds the key."""
    from conftest import TEST_CONF, TESTS
    from openai_server import FakeServer, Response, completion

    verdict = json.dumps({"verdict": "yes", "reasoning": "ok", "score": 8})
    server = FakeServer(lambda n, body: Response(body=completion(verdict)))
    folder = tmp_path / "run"
    worker = f"{{kind:worker,python:'{sys.executable}',repo_path:'{TESTS}'}}"
    try:
        proc = _wandb(
            tmp_path,
            f"hydra.searchpath=[{TEST_CONF}]",
            "model=slow_identity",
            f"+model.runtime={worker}",
            "limit=1",
            "judge=openai",
            f"judge.vlm.base_url={server.url}",
            "judge.vlm.model=gpt-test",
            "judge.cache=false",
            f"run_dir={folder}",
            WANDB_MODE="offline",
            **{k: SENTINEL for k in ("OPENAI_API_KEY", "WANDB_API_KEY", "HF_TOKEN")},
        )
    finally:
        server.close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert server.requests  # the judge was asked, with the key
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {SENTINEL}"
    assert "(worker)" in (folder / "reedit.log").read_text()  # the worker's lines are there
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any("wandb" in p.parts for p in files) and (folder / "records/judge.jsonl").is_file()
    leaks = [str(p.relative_to(folder)) for p in files if SENTINEL.encode() in p.read_bytes()]
    assert not leaks, leaks
    assert SENTINEL not in proc.stdout + proc.stderr
