"""The seven own-environment models' test fixtures: their repositories' code, their environments.

``REEDIT_EXTERNAL`` names the folder of unmodified repository snapshots (``shared/external`` in
this workplace; ``.ci/run`` sets it). Without it a test that needs one skips, naming the setting;
with ``REEDIT_REQUIRE_EXTERNAL=1`` (CI) that skip is a failure (``conftest.py``).

:func:`model_env` makes a real second environment per model: a venv whose own site-packages hold
the model's pins (installed there with pip, e.g. ``transformers==4.55.0``, a diffusers fork) and
which reaches the main environment's other packages (torch above all) through a ``.pth`` line to a
folder of links. The venv's own packages come first on ``sys.path``, so they shadow the main
env's; the links leave out what the venv installs and what a worker must not need (Hydra,
OmegaConf, W&B, reedit itself: the worker finds reedit through ``PYTHONPATH``). Venvs are cached
by a hash of what they install, under ``REEDIT_TEST_ENVS`` (default ``~/.cache/reedit/test-envs``).

:func:`tiny_model` builds a tiny random-weight instance by running a builder script of
``tests/tiny_external/`` in the model's environment (its own classes, its own ``save_pretrained``),
cached under ``REEDIT_CACHE`` by a hash of the script, its arguments and the environment.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
BUILDERS = TESTS / "tiny_external"
HIDDEN = ("hydra", "omegaconf", "wandb", "antlr4", "reedit", "_reedit", "__editable__")
# Linked only where the env runs the main env's transformers (which needs it: 5.25 refuses to
# load a model without it); an env with transformers of its own pins would import it and fail
# (kernels 0.19 needs a newer huggingface_hub than Janus' and Step1X-Edit's envs have).
WITH_MAIN_TRANSFORMERS = ("kernels",)
SETTING = "REEDIT_EXTERNAL"


def external(name: str) -> Path:
    """The snapshot folder ``name`` (e.g. ``"OmniGen2"``); skips, naming the setting, when the
    snapshots are not configured."""
    root = os.environ.get(SETTING)
    if not root:
        pytest.skip(f"needs the external model snapshots: set {SETTING}=<path to shared/external>")
    folder = Path(root) / name
    if not folder.is_dir():
        pytest.fail(f"{SETTING}={root} has no {name}/ (is it the shared/external folder?)")
    return folder


def _main_site() -> Path:
    return next(Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _top_names(site: Path) -> set[str]:
    """The import and distribution names a site-packages folder holds (lower case, no version)."""
    names = set()
    for entry in site.iterdir():
        stem = entry.name.split("-")[0] if entry.suffix in (".dist-info", ".egg-info") else None
        names.add((stem or entry.name.removesuffix(".py")).lower().replace("-", "_"))
    return names


def model_env(
    name: str,
    pip: Sequence[str] = (),
    local: Sequence[Path] = (),
    startup: Sequence[str] = (),
) -> Path:
    """The python of a venv for model ``name`` holding ``pip`` requirements (with their
    dependencies) and ``local`` package folders (installed ``--no-deps`` from a writable copy),
    and reaching the main env's other packages; built once per set of requirements.
    ``startup``: modules (on ``tests/``) that the env imports at interpreter start through a
    ``.pth`` line, for test-only registrations such as a tiny size in a model's size table."""
    spec = {"pip": list(pip), "local": [str(p) for p in local], "python": sys.version, "v": 3}
    spec["hidden"] = [*HIDDEN, *WITH_MAIN_TRANSFORMERS]  # what is left unlinked shapes it too
    spec["startup"] = list(startup)
    # the env links into this main env: another main env (a new clone, other versions) is a new
    # env, never a cached one whose links reach a stale checkout's packages
    main = _main_site().resolve()
    spec["main"] = [str(main), *sorted(e.name for e in main.iterdir() if e.name != "__pycache__")]
    for folder in local:  # a change to a local package's sources is a new env
        spec[str(folder)] = _tree_hash(folder)
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    base = Path(os.environ.get("REEDIT_TEST_ENVS", Path.home() / ".cache/reedit/test-envs"))
    root = base / f"{name}-{digest}"
    python = root / "bin" / "python"
    with _locked(root):
        links = root / "main_packages"
        built = (root / "reedit-env.json").is_file() and links.is_dir()
        if built and all(entry.exists() for entry in links.iterdir()):  # no link left dangling
            return python
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=600)
        quiet = ["-q", "--disable-pip-version-check", "--no-input"]
        if pip:
            # the pins download and build (a fork from source): generous, yet never a hung CI job
            subprocess.run([python, "-m", "pip", "install", *quiet, *pip], check=True, timeout=1800)
        for folder in local:
            copy = root / "src" / folder.name  # the snapshots are read-only: build from a copy
            shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(".git"))
            subprocess.run(
                [python, "-m", "pip", "install", *quiet, "--no-deps", str(copy)],
                check=True,
                timeout=1800,
            )
        site = Path(
            subprocess.check_output(
                [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                text=True,
                timeout=60,
            ).strip()
        )
        own = _top_names(site) - {"pip", "setuptools", "_distutils_hack", "distutils_precedence"}
        links.mkdir()
        for entry in _main_site().iterdir():
            lower = entry.name.lower()
            key = lower.split("-")[0] if entry.suffix in (".dist-info", ".egg-info") else lower
            key = key.removesuffix(".py").replace("-", "_")
            if lower.startswith(HIDDEN) or lower.endswith(".pth") or key in own:
                continue
            if key in ("pip", "setuptools", "_distutils_hack"):
                continue
            if key in WITH_MAIN_TRANSFORMERS and "transformers" in own:
                continue
            (links / entry.name).symlink_to(entry)
        (site / "reedit_main_packages.pth").write_text(f"{links}\n")
        if startup:  # a .pth line that starts with "import" is executed at start-up
            lines = [str(TESTS), *(f"import {m}" for m in startup)]
            (site / "zz_reedit_test_startup.pth").write_text("\n".join(lines) + "\n")
        (root / "reedit-env.json").write_text(json.dumps(spec, indent=1))
    return python


def _tree_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and ".git" not in path.parts:
            h.update(str(path.relative_to(folder)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def versions(python: Path, *modules: str) -> dict[str, str]:
    """``module.__version__`` of each module as the interpreter ``python`` imports it."""
    code = "import importlib, json, sys; print(json.dumps({m: importlib.import_module(m)."
    code += "__version__ for m in sys.argv[1:]}))"
    out = subprocess.run(
        [python, "-c", code, *modules], capture_output=True, text=True, check=True, timeout=300
    ).stdout
    return json.loads(out.splitlines()[-1])


def tiny_model(
    python: Path, builder: str, *args: str, repo: Path | None = None, timeout: float = 900
) -> Path:
    """The folder that ``tests/tiny_external/<builder>.py OUT *args`` writes, run in the model's
    environment (``repo`` on its ``PYTHONPATH``); cached by the script, its arguments and env."""
    script = BUILDERS / f"{builder}.py"
    parts = [script.read_bytes(), (BUILDERS / "common.py").read_bytes(), str(python).encode()]
    parts += [a.encode() for a in args] + [str(repo).encode()]
    digest = hashlib.sha256(b"\0".join(parts)).hexdigest()[:12]
    cache = Path(os.environ.get("REEDIT_CACHE", Path.home() / ".cache/reedit")) / "tiny-external"
    out = cache / f"{builder}-{digest}"
    with _locked(out):
        if (out / "reedit_tiny.json").is_file():
            return out
        shutil.rmtree(out, ignore_errors=True)
        paths = [str(repo or ""), str(BUILDERS), str(TESTS.parent)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, paths)))
        proc = subprocess.run(
            [python, str(script), str(out), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{builder} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        (out / "reedit_tiny.json").write_text(json.dumps({"builder": builder, "args": args}))
    return out


def worker_runtime(python: Path, repo: Path | None = None, **extra: object) -> str:
    """A Hydra override value for ``model.runtime``: a worker in ``python`` with ``repo`` on its
    path."""
    items: dict[str, object] = {"kind": "worker", "python": f"'{python}'"}
    if repo is not None:
        items["repo_path"] = f"'{repo}'"
    items.update(extra)
    return "{" + ",".join(f"{k}:{v}" for k, v in items.items()) + "}"
