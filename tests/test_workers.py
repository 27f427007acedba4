"""The worker runtime: models in a persistent process of another interpreter. A real second
environment (a venv with its own interpreter and site-packages, reaching torch, diffusers and
transformers through a ``.pth`` line, without Hydra, OmegaConf or W&B), real processes, real
signals; the misbehaving model is the test double ``doubles.MisbehavingEditor``."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from conftest import REAL_MODELS, TESTS

from reedit.config import spec_of
from reedit.models.base import EditRequest
from reedit.records import RecordStore
from reedit.run import run
from reedit.runtime import Placement, open_model
from reedit.runtime.workers import WorkerFailed

HIDDEN = ("hydra", "omegaconf", "wandb", "antlr4")


@pytest.fixture(scope="module")
def second_env(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("second_env")
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True, timeout=300
    )
    python = root / "venv" / "bin" / "python"
    site = subprocess.check_output(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        text=True,
        timeout=60,
    ).strip()
    main_site = next(Path(p) for p in sys.path if p.endswith("site-packages") and "venv" in p)
    shim = root / "main_packages"  # the main env's packages, less the ones a worker must not need
    shim.mkdir()
    for entry in main_site.iterdir():
        name = entry.name.lower()
        if name.startswith((*HIDDEN, "reedit", "_reedit", "__editable__")) or name.endswith(".pth"):
            continue
        (shim / entry.name).symlink_to(entry)
    (Path(site) / "main_packages.pth").write_text(f"{shim}\n")
    return python


def worker(python: str | Path, **extra) -> str:
    """A `runtime` override for a worker in ``python`` that can import the test doubles."""
    items = {"kind": "worker", "python": f"'{python}'", "repo_path": f"'{TESTS}'", **extra}
    return "{" + ",".join(f"{k}:{v}" for k, v in items.items()) + "}"


def misbehaving(python=sys.executable, **settings):
    runtime = {"kind": "worker", "python": str(python), "repo_path": str(TESTS)}
    runtime.update(settings.pop("runtime", {}))
    if any(tool in runtime for tool in ("conda", "mamba", "micromamba")):
        del runtime["python"]
    node = {"_target_": "doubles.MisbehavingEditor", "runtime": runtime, **settings}
    return open_model(spec_of(node, "model"), Placement())


def requests(n: int, picture: Path) -> list[EditRequest]:
    return [EditRequest(f"s{i}", f"s{i}", "physical", picture, "x", i) for i in range(n)]


@pytest.fixture
def picture(tmp_path) -> Path:
    from PIL import Image

    path = tmp_path / "in.png"
    Image.new("RGB", (32, 24), (10, 200, 30)).save(path)
    return path


def workers_alive() -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if "reedit.runtime.worker" in " ".join(p.info["cmdline"] or []):
                out.append(p)
        except psutil.Error:
            pass
    return out


@pytest.fixture(autouse=True)
def no_orphans():
    yield
    deadline = time.monotonic() + 10
    while workers_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not workers_alive(), "a worker process outlived its test"


def comparable(folder: Path, stage: str) -> dict:
    out = {}
    for line in (folder / "records" / f"{stage}.jsonl").read_text().splitlines():
        r = json.loads(line)
        for k in ("seconds", "time", "info"):
            r.pop(k, None)
        out[r["key"]] = r
    return out


def test_the_second_env_cannot_import_hydra_omegaconf_or_wandb(second_env, picture):
    editor = misbehaving(second_env)
    try:
        editor.load()
        info = editor.info()
        assert info["importable"] == {"hydra": False, "omegaconf": False, "wandb": False}
        assert info["python"] == str(second_env) and info["runtime"] == "worker"
        (res,) = editor.edit(requests(1, picture))
        assert res.ok and Path(res.image).is_file() and res.image_size == (32, 24)
    finally:
        editor.close()


def test_a_diffusers_editor_and_the_judge_in_the_second_env_match_in_process(
    compose, tmp_path, second_env
):
    base = (*REAL_MODELS, "limit=1", "model=tiny_flux2", "refiner=none")
    run(compose(*base), run_dir=tmp_path / "inprocess")
    hosted = (f"+model.runtime={worker(second_env)}", f"+judge.vlm.runtime={worker(second_env)}")
    run(compose(*base, *hosted), run_dir=tmp_path / "worker")
    a, b = tmp_path / "inprocess", tmp_path / "worker"
    images = sorted(p.relative_to(a) for p in a.glob("images/*/*/*.png"))
    assert len(images) == 5
    assert all((a / p).read_bytes() == (b / p).read_bytes() for p in images)
    assert comparable(a, "judge") == comparable(b, "judge") and len(comparable(a, "judge")) == 15
    assert not (b / ".tmp").exists()  # the worker's files were renamed into place, then cleaned
    edit = json.loads((b / "records" / "edit.jsonl").read_text().splitlines()[0])
    assert edit["info"]["runtime"] == "worker"


def test_prints_to_stdout_from_python_and_fd_1_do_not_touch_the_protocol(picture, caplog):
    import logging

    editor = misbehaving(stdout_noise=True)
    try:
        with caplog.at_level(logging.INFO, logger="reedit.worker"):
            results = editor.edit(requests(3, picture))
        assert all(r.ok for r in results)
    finally:
        editor.close()
    logged = [r.getMessage() for r in caplog.records]
    assert any("[worker model] noise written to fd 1" in m for m in logged)
    assert any("[worker model] noise from python's print" in m for m in logged)


def test_a_worker_killed_mid_request_fails_those_requests_and_restarts(picture):
    editor = misbehaving(delay=2.0, batch_size=2)  # both requests in flight at once
    try:
        editor.load()
        pid = editor.worker.ready["pid"]
        threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
        lost = editor.edit(requests(2, picture))
        assert [r.error_type for r in lost] == ["WorkerLost", "WorkerLost"]
        assert "killed by signal SIGKILL" in lost[0].error
        again = editor.edit(requests(2, picture))  # the restarted worker
        assert all(r.ok for r in again) and editor.worker.ready["pid"] != pid
        assert editor.worker.restarts == 1
    finally:
        editor.close()


def test_a_request_past_its_timeout_is_an_error_and_the_worker_restarts(picture):
    editor = misbehaving(delay=30.0, runtime={"request_timeout": 1, "max_restarts": 1})
    try:
        (res,) = editor.edit(requests(1, picture))
        assert res.error_type == "WorkerLost" and "request_timeout=1 s" in res.error
        with pytest.raises(WorkerFailed, match="max_restarts=1 used up"):
            editor.edit(requests(1, picture))
    finally:
        editor.close()


def test_a_worker_that_exits_while_loading_is_a_clear_error(picture):
    editor = misbehaving(exit_on_load=7)
    with pytest.raises(
        WorkerFailed, match=r"^model\.runtime: the worker exited while starting"
    ) as err:
        editor.load()
    text = str(err.value)
    assert "exited while starting (exit status 7)" in text
    assert "about to exit while loading" in text


def test_a_stderr_flood_is_streamed_with_bounded_lines(picture, caplog):
    import logging

    editor = misbehaving(stderr_flood_mb=50)
    try:
        with caplog.at_level(logging.INFO, logger="reedit.worker"):
            (res,) = editor.edit(requests(1, picture))
        assert res.ok
    finally:
        editor.close()
    flood = [r.getMessage() for r in caplog.records if "[worker model] x" in r.getMessage()]
    assert flood and max(len(m) for m in flood) <= 2100  # long lines cut, never held whole
    assert any("flood done" in r.getMessage() for r in caplog.records)


def test_a_protocol_mismatch_is_a_clear_error():
    editor = misbehaving()
    editor.worker.protocol = 999
    with pytest.raises(
        WorkerFailed, match="ProtocolMismatch: worker speaks protocol 1, parent 999"
    ):
        editor.load()


def test_an_orphaned_worker_exits_by_itself(tmp_path):
    script = f"""
import sys, time
sys.path.insert(0, {str(TESTS)!r})
from reedit.config import spec_of
from reedit.runtime import Placement, open_model
node = {{"_target_": "doubles.MisbehavingEditor",
        "runtime": {{"kind": "worker", "repo_path": {str(TESTS)!r}}}}}
m = open_model(spec_of(node, "model"), Placement())
m.load()
print(m.worker.ready["pid"], flush=True)
time.sleep(120)
"""
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([parent.stdout], [], [], 120)  # no readline without a deadline
        assert ready, "the parent never reported its worker's pid"
        pid = int(parent.stdout.readline())
        assert psutil.pid_exists(pid)
    finally:
        parent.kill()  # SIGKILL: no clean-up code runs in the parent
        parent.wait(timeout=30)
    deadline = time.monotonic() + 15
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie":
        assert time.monotonic() < deadline, "the orphaned worker did not exit"
        time.sleep(0.1)


def test_a_missing_interpreter_names_the_key():
    editor = misbehaving(python="/no/such/python")
    with pytest.raises(WorkerFailed, match="model.runtime: cannot start /no/such/python"):
        editor.load()


@pytest.fixture
def standin_tools(second_env, tmp_path, monkeypatch):
    """conda / mamba / micromamba stand-ins (tests/standins) with one environment, `vlm`: the
    second env."""
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "vlm").symlink_to(second_env.parent.parent)
    monkeypatch.setenv("STANDIN_ENVS", str(tmp_path))
    monkeypatch.setenv("PATH", f"{TESTS / 'standins'}{os.pathsep}{os.environ['PATH']}")
    from reedit.runtime import workers

    monkeypatch.setattr(workers, "_INTERPRETERS", {})
    return tmp_path


@pytest.mark.parametrize("tool", ["conda", "mamba", "micromamba"])
def test_an_env_of_the_conda_family_resolves_to_its_interpreter(standin_tools, picture, tool):
    editor = misbehaving(runtime={tool: "vlm"})
    try:
        editor.load()
        info = editor.info()
        assert info["python"] == str(standin_tools / "envs" / "vlm" / "bin" / "python")
        assert not any(info["importable"].values())
        assert editor.edit(requests(1, picture))[0].ok
    finally:
        editor.close()


def test_activate_starts_the_worker_through_the_tool(standin_tools, picture):
    editor = misbehaving(runtime={"conda": "vlm", "activate": True})
    try:
        editor.load()
        assert editor.worker.proc.args[:5] == [
            str(TESTS / "standins" / "conda"),
            "run",
            "-n",
            "vlm",
            "--no-capture-output",
        ]
        assert editor.info()["python"] == str(standin_tools / "envs" / "vlm" / "bin" / "python")
        assert editor.edit(requests(1, picture))[0].ok
    finally:
        editor.close()


def test_a_missing_env_names_the_env_the_key_and_the_tools_message(standin_tools):
    with pytest.raises(
        WorkerFailed, match=r"^model\.runtime\.micromamba: environment 'nope'"
    ) as err:
        misbehaving(runtime={"micromamba": "nope"}).load()
    text = str(err.value)
    assert text.startswith("model.runtime.micromamba: environment 'nope' gives no interpreter")
    assert "The given prefix does not exist" in text
    with pytest.raises(WorkerFailed, match="EnvironmentLocationNotFound: Not a conda env"):
        misbehaving(runtime={"conda": "nope"}).load()


def test_a_missing_tool_is_named(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("MAMBA_EXE", raising=False)
    with pytest.raises(WorkerFailed, match="model.runtime.mamba: 'mamba' is not on PATH"):
        misbehaving(runtime={"mamba": "vlm"}).load()


# -- reedit.doctor ----------------------------------------------------------------------------
def doctor(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    from conftest import TEST_CONF, reedit_env

    return subprocess.run(
        [sys.executable, "-m", "reedit.doctor", f"hydra.searchpath=[{TEST_CONF}]", *args],
        env=reedit_env(**(env_extra or {})),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_doctor_passes_a_good_worker_config(second_env):
    proc = doctor("model=tiny_flux2", f"+model.runtime={worker(second_env)}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"worker: {second_env}" in proc.stdout
    assert "import diffusers:Flux2Pipeline" in proc.stdout and "everything is there" in proc.stdout


def test_doctor_names_a_missing_env_repo_and_weights(standin_tools, tmp_path):
    env = {"PATH": os.environ["PATH"], "STANDIN_ENVS": str(standin_tools)}
    proc = doctor("+model.runtime={kind:worker,conda:nope}", env_extra=env)
    assert proc.returncode == 1
    assert "environment 'nope' gives no interpreter" in proc.stdout
    assert "fix: conda create -n nope" in proc.stdout
    proc = doctor(
        f"+model.runtime={worker(sys.executable, repo_path=repr(str(tmp_path / 'repo')))}"
    )
    assert proc.returncode == 1
    assert re.search(
        rf"model\.runtime\.repo_path +MISSING +{re.escape(str(tmp_path))}/repo", proc.stdout
    )
    assert "fix: git clone" in proc.stdout
    proc = doctor("model=tiny_flux2", f"model.path={tmp_path}/weights", "judge=qwen3_vl")
    assert proc.returncode == 1
    assert re.search(
        rf"model\.path +MISSING +no such folder: {re.escape(str(tmp_path))}/weights", proc.stdout
    )
    assert "judge.vlm.path" in proc.stdout and "hf download Qwen/Qwen3-VL" in proc.stdout


def test_a_worker_sees_only_its_gpus_and_the_record_says_which(picture):
    node = {
        "_target_": "doubles.MisbehavingEditor",
        "runtime": {"kind": "worker", "repo_path": str(TESTS)},
    }
    editor = open_model(spec_of(node, "model"), Placement(gpus=(3, 5)))
    try:
        editor.load()
        seen = editor.worker.ready["info"]  # what the model in the worker sees
        assert seen["cuda_visible_devices"] == "3,5" and seen["gpus"] == [0, 1]  # cuda:0 = card 3
        assert editor.label == "MisbehavingEditor (worker)"  # what the log lines say
        recorded = editor.info()  # what an edit record says
        assert recorded["runtime"] == "worker" and recorded["gpus"] == [3, 5]
    finally:
        editor.close()


def test_a_worker_killed_during_a_run_leaves_error_records_that_a_rerun_completes(
    compose, tmp_path
):
    args = (
        "dataset=demo",
        "model=slow_identity",
        "model.delay=0.3",
        f"+model.runtime={worker(sys.executable)}",
        "stages=[edit]",
        "max_error_rate=1",
        "progress=false",
    )
    killed: list[int] = []

    def kill_once() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            alive = workers_alive()
            if alive:
                time.sleep(1.0)  # some edits done, one in flight
                alive[0].kill()
                killed.append(alive[0].pid)
            time.sleep(0.05)

    threading.Thread(target=kill_once, daemon=True).start()
    metrics = run(compose(*args, "stages=[edit,report]"), run_dir=tmp_path)
    assert killed
    edit = metrics["stages"]["edit"]
    assert edit["error"] >= 1 and edit["ok"] >= 1 and edit["ok"] + edit["error"] == 10
    errors = [r for r in RecordStore(tmp_path, "edit").load().values() if r["status"] == "error"]
    assert all("killed by signal SIGKILL" in r["error"] for r in errors)
    again = run(compose(*args, "stages=[edit,report]", "retry_errors=true"), run_dir=tmp_path)
    assert again["stages"]["edit"]["ok"] == 10


def test_sigterm_mid_stage_stops_the_worker_and_a_rerun_completes(tmp_path):
    from conftest import TEST_CONF, reedit_env

    args = [
        sys.executable,
        "-m",
        "reedit",
        f"hydra.searchpath=[{TEST_CONF}]",
        "dataset=demo",
        "model=slow_identity",
        "model.delay=0.5",
        f"+model.runtime={worker(sys.executable)}",
        "stages=[edit]",
        f"run_dir={tmp_path / 'run'}",
        "progress=false",
    ]
    parent = subprocess.Popen(args, env=reedit_env(), stderr=subprocess.PIPE, text=True)
    records = tmp_path / "run" / "records" / "edit.jsonl"
    deadline = time.monotonic() + 120
    while not (records.is_file() and records.read_text().count("\n") >= 2):
        assert time.monotonic() < deadline and parent.poll() is None, "no edits recorded"
        time.sleep(0.1)
    parent.send_signal(signal.SIGTERM)
    _, err = parent.communicate(timeout=60)
    assert parent.returncode != 0
    done = records.read_text().count("\n")
    assert 2 <= done < 10
    rerun = subprocess.run(
        args[:-2] + [f"run_dir={tmp_path / 'run'}", "progress=false"],
        env=reedit_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert f"edit: {10 - done} samples in" in rerun.stderr
    assert records.read_text().count("\n") == 10


@pytest.mark.parametrize(
    "fault,fixed,expect",
    [
        (  # a request past its timeout: every unit an error record, the worker restarted
            [
                "model.delay=5",
                "+model.runtime.request_timeout=0.5",
                "+model.runtime.max_restarts=20",
            ],
            ["model.delay=0"],
            "request_timeout=0.5 s",
        ),
        (["model.exit_on_load=3"], ["model.exit_on_load=null"], "exited while starting"),
        (["model.stdout_noise=true"], [], None),  # prints never corrupt the protocol
        (["model.stderr_flood_mb=50"], [], None),
    ],
    ids=["request-timeout", "exit-during-load", "stdout-from-python-and-C", "stderr-flood"],
)
def test_worker_faults_in_a_run_end_with_records_and_a_rerun_completes(
    compose, tmp_path, fault, fixed, expect
):
    from reedit.config import ReeditError

    base = (
        "dataset=demo",
        "limit=1",
        "model=misbehaving",
        f"+model.runtime={worker(sys.executable)}",
        "stages=[edit,report]",
        "max_error_rate=1",
        "progress=false",
    )
    try:
        metrics = run(compose(*base, *fault), run_dir=tmp_path)
        message = None
    except ReeditError as exc:
        metrics, message = None, str(exc)
    records = RecordStore(tmp_path, "edit").load()
    if expect is None:
        assert metrics["stages"]["edit"]["ok"] == 5 and message is None
        return
    if message is not None:  # the worker never started: a clear message, nothing recorded
        assert expect in message and "model" in message and not records
    else:
        assert len(records) == 5 and all(r["status"] == "error" for r in records.values())
        assert all(expect in r["error"] for r in records.values())
    again = run(compose(*base, *fixed, "retry_errors=true"), run_dir=tmp_path)
    assert again["stages"]["edit"]["ok"] == 5
