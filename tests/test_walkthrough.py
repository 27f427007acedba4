"""The first-hour walk-through: every command in the README's ``bash`` blocks and in both
``--help`` texts, run in order in a fresh copy of the repository (the files a clone has), with an
empty home directory and no hub (``HF_ENDPOINT`` points at a closed port; ``HF_HUB_OFFLINE`` is
not set, as outside ``make``), each checked for its documented outcome.

``make walkthrough`` runs it (``.ci/run`` too); it is a marker suite (``-m walkthrough``) because
it builds and trains the demo's tiny models from an empty cache (about two minutes).
A command the README or a help text gains without an entry in :data:`EXPECTED` fails the test.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.walkthrough
PY = sys.executable


@dataclass(frozen=True)
class Expect:
    pattern: str  # matches the command as written (placeholders included)
    rc: int | None = 0  # None: not run (see `skip`)
    says: tuple[str, ...] = ()  # each must appear in the output
    once: tuple[str, ...] = ()  # each must appear exactly once (a message printed once)
    skip: str = ""  # why it is not run here
    makes: bool = False  # its run folder is the README's outputs/<date>/<time>_identity
    sweeps: bool = False  # its sweep folder is the README's multirun/<date>/<time>


EXPECTED = [
    Expect(r"^make demo$", 0, ("DEMO: tiny models", "yes-rate")),
    Expect(r"^make test$", None, skip="what .ci/run runs (this walk-through runs inside it)"),
    Expect(r"^\. \.venv/bin/activate$", None, skip="the walk-through runs the venv's python"),
    Expect(r"^python -m reedit --help$", 0, ("== Configuration groups ==", "Examples:")),
    Expect(r"^python -m reedit\.editrefine --help$", 0, ("image=<file>", "Writes")),
    Expect(
        r"^python -m reedit \+experiment=demo model=identity executor=identity$",
        0,
        ("primary: yes-rate 90.0 %", "refined: yes-rate 90.0 %"),
    ),
    Expect(
        r"^python -m reedit dataset=demo model=identity$", 0, ("done: edit: 10 ok",), makes=True
    ),
    Expect(r"^reedit dataset=demo model=identity$", 0, ("done: edit: 10 ok",)),
    Expect(r"^python -m reedit run_dir=outputs/<date>/<time>_identity$", 0, ("nothing to do",)),
    Expect(
        r"^python -m reedit \+experiment=demo model=precomputed "
        r"model\.images_dir=outputs/<date>/<time>_identity$",
        0,
        ("primary: yes-rate 90.0 %",),
    ),
    Expect(
        r"^python -m reedit dataset=re_edit limit=2",
        2,
        ("hf download Yixuan-Ding-ZJU/RE-Edit", "dataset.path="),
        once=("hf download",),
    ),
    Expect(
        r"^python -m reedit -m \+experiment=demo model=tiny_qwen_image_edit,identity "
        r"executor=identity$",
        0,
        ("sweep: 2 jobs, 0 failed", "#0 ok", "#1 ok", "comparison of 2 runs: wrote"),
        sweeps=True,
    ),
    Expect(
        r"^python -m reedit\.compare multirun/<date>/<time> --out comparisons/demo$",
        0,
        ("comparison of 2 runs: wrote comparison.json", "comparisons/demo/comparison.html"),
    ),
    Expect(r"^python -m reedit model=identity --cfg job$", 0, ("IdentityEditor",)),
    Expect(
        r"^python -m reedit\.editrefine \+experiment=demo image=cat\.png",
        0,
        ("primary.png", "critique.json", "refined.png"),
    ),
    Expect(
        r"^python -m reedit\.editrefine image=cat\.png .*refiner\.vlm\.path=/models/EditRefine",
        2,  # without the EditRefine weights: named at set-up, before anything loads
        ("refiner.vlm.path: no such folder: /models/EditRefine",),
    ),
    Expect(r"^conda env create -f reedit/runtime/envs/janus\.yml$", None, skip="needs conda"),
    Expect(r"^git clone https://github\.com/deepseek-ai/Janus ", None, skip="no GitHub here"),
    Expect(  # neither the env nor the clone is there: the doctor says how to make both
        r"^python -m reedit\.doctor model=janus model\.runtime\.repo_path=/opt/src/Janus$",
        1,
        (
            "MISSING",
            "conda env create -f",
            "janus.venv.sh",
            "git clone https://github.com/deepseek",
        ),
    ),
    Expect(  # the help's example: without the clone (and the RE-Edit data), named at set-up
        r"^python -m reedit model=omnigen2 model\.runtime\.repo_path=/opt/src/OmniGen2 "
        r"\+experiment=re_edit_reference$",
        2,
        ("model.runtime.repo_path: no such folder: /opt/src/OmniGen2",),
    ),
    Expect(  # Scaling up: without the clone, named at set-up (the GPUs are never reached)
        r"^python -m reedit model=omnigen2 model\.runtime\.repo_path=/opt/src/OmniGen2 "
        r"'gpus=\[0(,1,2,3)?\]'$",
        2,
        ("model.runtime.repo_path: no such folder: /opt/src/OmniGen2",),
    ),
    Expect(  # the layout passes set-up (no GPU count known here); the RE-Edit data is missing
        r"^python -m reedit model=flux2_dev model\.parallel=model 'gpus=\[0,1,2,3,4,5,6,7\]' "
        r"gpus_per_replica=2$",
        2,
        ("hf download Yixuan-Ding-ZJU/RE-Edit",),
    ),
    Expect(
        r"^python -m reedit \+experiment=demo cpu_ranks=2$",
        0,
        ("starting 2 ranks (CPU)", "[rank 1]", "yes-rate"),
    ),
    Expect(
        r"^python -m reedit -m hydra/launcher=gpu_pool model=flux_kontext",
        2,
        ("pool is empty and no GPU is visible",),
    ),
    Expect(r"^python -m reedit -m hydra/launcher=slurm ", None, skip="needs a Slurm cluster"),
    Expect(r"^python -m reedit -m hydra/launcher=ray_cluster ", None, skip="needs a Ray cluster"),
    Expect(r"^srun --nodes=2 ", None, skip="needs a Slurm cluster"),
    Expect(
        r"^python -m reedit model=janus model\.runtime\.repo_path=/opt/src/Janus$",
        2,
        ("model.runtime.repo_path: no such folder: /opt/src/Janus",),
    ),
]


def _commands(text: str) -> list[str]:
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                out.append(" ".join(line.split()))
    return out


def _help_commands(text: str) -> list[str]:
    tail = text.split("Examples:", 1)[1] if "Examples:" in text else ""
    out = []
    for line in tail.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line.startswith("python -m reedit") and "..." not in line:
            out.append(" ".join(line.split()))
    return out


def _fresh_copy(dest: Path) -> None:
    """The files a clone of this tree has (tracked and untracked-but-not-ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        src, dst = ROOT / name, dest / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_readme_and_help_commands_in_a_fresh_clone(tmp_path):
    clone, home = tmp_path / "clone", tmp_path / "home"
    home.mkdir()
    _fresh_copy(clone)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "TRANSFORMERS_", "REEDIT_", "PYTHON", "WANDB"))
    }
    env.update(
        HOME=str(home),
        PYTHONPATH=str(clone),  # the copy's code, also for the installed `reedit` command
        HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}",  # no hub, and nobody said offline
    )
    bin_dir = Path(PY).parent

    def run(argv: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=clone, env=env, capture_output=True, text=True, timeout=900)

    helps = {m: run([PY, "-m", m, "--help"]).stdout for m in ("reedit", "reedit.editrefine")}
    commands = _commands((clone / "README.md").read_text())
    commands += [c for text in helps.values() for c in _help_commands(text)]
    commands += ["python -m reedit --help", "python -m reedit.editrefine --help"]
    unmatched = [c for c in commands if not any(re.search(e.pattern, c) for e in EXPECTED)]
    assert not unmatched, f"commands without a documented outcome here: {unmatched}"

    from PIL import Image  # cat.png: any picture

    Image.new("RGB", (96, 64), (200, 120, 40)).save(clone / "cat.png")
    first_run: list[Path] = []
    sweep: list[Path] = []
    done: set[str] = set()
    for command in dict.fromkeys(commands):  # in order, each once
        expect = next(e for e in EXPECTED if re.search(e.pattern, command))
        if expect.rc is None:
            continue
        line = command.replace("make demo", "python -m reedit +experiment=demo")  # its recipe
        if "<date>/<time>_identity" in line:
            assert first_run, f"{command}: needs the identity run made before it"
            line = line.replace("outputs/<date>/<time>_identity", str(first_run[0]))
        if "multirun/<date>/<time>" in line:
            assert sweep, f"{command}: needs the sweep made before it"
            line = line.replace("multirun/<date>/<time>", str(sweep[0]))
        argv = shlex.split(line)
        argv = [PY, *argv[1:]] if argv[0] == "python" else [str(bin_dir / argv[0]), *argv[1:]]
        before = set(clone.glob("outputs/*/*_identity"))
        sweeps_before = set(clone.glob("multirun/*/*"))
        proc = run(argv)
        output = proc.stdout + proc.stderr
        assert proc.returncode == expect.rc, f"{command}: exit {proc.returncode}\n{output[-3000:]}"
        for text in expect.says:
            assert text in output, f"{command}: no '{text}' in\n{output[-3000:]}"
        for text in expect.once:
            assert output.count(text) == 1, f"{command}: '{text}' not once in\n{output[-3000:]}"
        assert "Traceback" not in output, f"{command}:\n{output[-3000:]}"
        if expect.makes:
            (made,) = set(clone.glob("outputs/*/*_identity")) - before
            first_run.append(made)
        if expect.sweeps:
            (made,) = set(clone.glob("multirun/*/*")) - sweeps_before
            sweep.append(made)
        done.add(expect.pattern)
    # the outcomes the walk-through promises were each reached
    assert {e.pattern for e in EXPECTED if e.rc is not None} <= done
