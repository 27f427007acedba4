"""An unreachable Hugging Face hub outside `make` (no HF_HUB_OFFLINE): one short probe of
HF_ENDPOINT, then offline from the local cache, so the user gets reedit's message at once
instead of minutes of retries. The hub is a real TCP server on 127.0.0.1 that accepts
connections and never answers (or a real HTTP server that answers 404), counting connections."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, reedit_env
from hubs import NotFound, Silent

from reedit import hub

PY = sys.executable
DATASET_HINT = "hf download Yixuan-Ding-ZJU/RE-Edit RE-Edit.json --repo-type dataset"
MODEL_HINT = "hf download black-forest-labs/FLUX.1-Kontext-dev"
JUDGE_HINT = "hf download Qwen/Qwen3-VL-30B-A3B-Instruct"
_OFF = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "HF_HUB_CACHE", "HF_ENDPOINT")
_PROXIES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


@pytest.fixture
def silent() -> Iterator[Silent]:
    server = Silent()
    yield server
    server.close()


def online_env(tmp_path: Path, endpoint: str) -> dict[str, str]:
    """A new user's shell: no offline variable, an empty home (no HF cache), the given hub."""
    env = reedit_env()
    for name in (*_OFF, *_PROXIES, "HF_HUB_DISABLE_PROGRESS_BARS"):
        env.pop(name, None)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    # this tree's reedit, also when the installed (editable) one is another checkout's
    path = os.pathsep.join([str(ROOT), env["PYTHONPATH"]])
    return env | {"HOME": str(home), "HF_ENDPOINT": endpoint, "PYTHONPATH": path}


def run_reedit(tmp_path: Path, env: dict[str, str], server: Silent | None, *args: str):
    """`python -m reedit` to its end, or stopped as soon as the hub sees a second connection
    (a retry: what this is about). Returns (exit code or None when stopped, stderr)."""
    err = tmp_path / "stderr.txt"
    with open(err, "w") as stderr:
        proc = subprocess.Popen(
            [PY, "-m", "reedit", *args, f"hydra.run.dir={tmp_path / 'run'}"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        stopped = False
        deadline = time.monotonic() + 300  # a hang guard: a run that never ends fails the test
        try:
            while proc.poll() is None:
                if server is not None and server.connections > 1:
                    proc.kill()
                    stopped = True
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                    proc.wait(timeout=30)
                    pytest.fail(
                        f"python -m reedit did not end in 300 s:\n{err.read_text()[-3000:]}"
                    )
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
    return (None if stopped else proc.returncode), err.read_text()


def foreign_warnings(stderr: str) -> list[str]:
    """Warning lines that are not reedit's own probe line."""
    return [
        line
        for line in stderr.splitlines()
        if ("WARNING" in line or "Retrying" in line or "thrown while" in line)
        and "[reedit.hub][WARNING]" not in line
    ]


def test_unreachable_hub_dataset_fails_at_once_with_one_probe(tmp_path, silent):
    """Before: HEAD retried 5 times with backoff (a second connection 3 s in, ~400 s and 14
    warning lines in all against this server; ~23 s and 22 lines with a failing DNS)."""
    env = online_env(tmp_path, silent.url)
    args = ("dataset=re_edit", "model=identity", "refiner=none", "judge=none", "limit=1")
    code, stderr = run_reedit(tmp_path, env, silent, *args)
    assert silent.connections == 1, f"{silent.connections} connections to the hub:\n{stderr}"
    assert code == 2, stderr
    assert stderr.count(DATASET_HINT) == 1
    assert "is not downloaded and the hub is offline" in stderr
    assert f"the hub at {silent.url} did not answer" in stderr
    assert foreign_warnings(stderr) == []
    assert stderr.count("[reedit.hub][WARNING]") == 1
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    "args,hint",
    [
        (("model=flux_kontext", "model.dtype=float32"), MODEL_HINT),
        (("model=identity", "judge=qwen3_vl", "judge.vlm.dtype=float32"), JUDGE_HINT),
    ],
    ids=["diffusers", "transformers"],
)
def test_unreachable_hub_model_id_fails_at_once_with_one_probe(tmp_path, silent, args, hint):
    """A hub id as a model path (from_pretrained). Before: a second connection 3 s in, and no
    message for minutes (diffusers: its model_info call, then the download's retries)."""
    env = online_env(tmp_path, silent.url)
    args += ("dataset=demo", "limit=1", "categories=[physical]", "refiner=none", "progress=false")
    code, stderr = run_reedit(tmp_path, env, silent, *args)
    assert silent.connections == 1, f"{silent.connections} connections to the hub:\n{stderr}"
    assert code == 2, stderr
    assert stderr.count(hint) == 1
    assert "is not in the Hugging Face cache and the hub is offline" in stderr
    assert "Couldn't connect to the Hub" not in stderr  # diffusers is told it is offline
    assert foreign_warnings(stderr) == []


def test_reachable_hub_is_used(tmp_path):
    """A hub that answers (here 404 for everything) is not taken for an unreachable one: the
    lookup goes to it and its answer is reported."""
    NotFound.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = online_env(tmp_path, f"http://127.0.0.1:{server.server_address[1]}")
        args = ("dataset=re_edit", "model=identity", "refiner=none", "judge=none", "limit=1")
        code, stderr = run_reedit(tmp_path, env, None, *args)
    finally:
        server.shutdown()
        server.server_close()
    assert code == 2, stderr
    assert NotFound.requests[0] == "/"  # the probe
    assert any("RE-Edit.json" in path for path in NotFound.requests[1:])  # the lookup itself
    assert "cannot be fetched" in stderr and stderr.count(DATASET_HINT) == 1
    assert "offline" not in stderr


@pytest.fixture
def fresh_hub(monkeypatch) -> None:
    """This process as a new one: no answer remembered, no offline variable (all restored
    after, including what go_offline writes)."""
    monkeypatch.setattr(hub, "_no_answer", None)
    for name in (*_OFF, *_PROXIES):
        monkeypatch.setenv(name, "")  # recorded, so that the original comes back
        monkeypatch.delenv(name)
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", constants.HF_HUB_OFFLINE)


@pytest.mark.parametrize("value,expected", [("1", True), ("0", False)])
def test_no_probe_when_the_variable_is_set(fresh_hub, silent, monkeypatch, value, expected):
    monkeypatch.setenv("HF_ENDPOINT", silent.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert hub.offline() is expected
    assert silent.connections == 0


def test_probe_once_per_process(fresh_hub, silent, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", silent.url)
    assert hub.offline() is True
    assert hub.offline() is True
    assert silent.connections == 1
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # for huggingface_hub and child processes
    assert hub.offline_reason().startswith(f"the hub at {silent.url} did not answer")


def test_an_answering_hub_is_probed_once(fresh_hub, monkeypatch):
    NotFound.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}/")
        assert hub.offline() is False
        assert hub.offline() is False
    finally:
        server.shutdown()
        server.server_close()
    assert NotFound.requests == ["/"]
    assert "HF_HUB_OFFLINE" not in os.environ
    assert hub.offline_reason() == ""
