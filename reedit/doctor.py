"""``python -m reedit.doctor model=<name> [judge=...] [refiner=...] [executor=...]``: is everything
a model needs there? For each configured model (and a judge's or refiner's VLM backend): its
runtime (the worker's interpreter resolved and started), the imports its ``load()`` needs (in that
interpreter), and every path it names (weights, repositories), each with the command that fixes
what is missing. Exit code 0 only when everything is there. Nothing is loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reedit.cli import config_dir  # registers the schemas and resolvers
from reedit.settings import MISSING

GROUPS = ("model", "executor", "refiner", "judge")


@dataclass
class Check:
    what: str
    ok: bool
    detail: str
    fix: str = ""


def _imports(python: str, modules: list[str], paths: list[str]) -> dict[str, str]:
    """Each module (or module:attribute) that fails to import in ``python``, with the error."""
    script = (
        "import importlib, json, sys\n"
        "bad = {}\n"
        "for item in json.loads(sys.argv[1]):\n"
        "    mod, _, attr = item.partition(':')\n"
        "    try:\n"
        "        m = importlib.import_module(mod)\n"
        "        attr and getattr(m, attr)\n"
        "    except Exception as exc:\n"
        "        bad[item] = f'{type(exc).__name__}: {exc}'\n"
        "print(json.dumps(bad))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [python, "-c", script, json.dumps(modules)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if proc.returncode != 0:
        return {"(interpreter)": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


ENVS = Path(__file__).resolve().parent / "runtime" / "envs"


def recipe(runtime: Any) -> Path | None:
    """The environment recipe (``reedit/runtime/envs/<env>.yml``) of a worker runtime that names
    a conda-family env, when reedit ships one."""
    if not hasattr(runtime, "get"):
        return None
    env = next((runtime.get(t) for t in ("conda", "mamba", "micromamba") if runtime.get(t)), None)
    path = ENVS / f"{env}.yml" if isinstance(env, str) else None
    return path if path is not None and path.is_file() else None


def recipe_fix(path: Path, tool: str = "conda") -> str:
    """How to make the env of a recipe: with conda, or as a plain venv."""
    venv = path.with_suffix(".venv.sh")
    plain = f"; without conda: bash {venv}" if venv.is_file() else ""
    return f"{tool} env create -f {path}{plain}"


def repository(path: Path | None) -> str:
    """The repository a recipe's ``# repository: URL`` line names, or a placeholder."""
    for line in path.read_text().splitlines() if path else ():
        if line.lstrip("# ").startswith("repository:"):
            return line.split(":", 1)[1].strip()
    return "<the model's repository>"


def _hub_cached(repo: str) -> bool:
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo, local_files_only=True)
        return True
    except Exception:
        return False


def check_node(node: Any) -> list[Check]:
    from reedit.runtime import worker_config
    from reedit.runtime.workers import WorkerFailed, reedit_root

    out: list[Check] = []
    config = worker_config(node)
    python, paths = sys.executable, [reedit_root()]
    if config is None:
        out.append(Check(f"{node.what}.runtime", True, f"in process ({python})"))
    else:
        try:
            python = config.interpreter()
            exists = Path(python).is_file()
            out.append(
                Check(
                    f"{node.what}.runtime",
                    exists,
                    f"worker: {python}" if exists else f"no interpreter at {python}",
                    "" if exists else f"set {config.what}.python to an existing interpreter",
                )
            )
        except WorkerFailed as exc:
            tool = config.tool or "conda"
            made = recipe(node.settings.runtime)
            fix = (
                recipe_fix(made, tool)
                if made
                else f"{tool} create -n {config.env} python=3.11  (then install the model's "
                "packages)"
            )
            out.append(Check(f"{node.what}.runtime", False, str(exc), fix))
            python = ""
        for repo in config.repo_path:
            ok = Path(repo).is_dir()
            fix = "" if ok else f"git clone {repository(recipe(node.settings.runtime))} {repo}"
            out.append(Check(f"{config.what}.repo_path", ok, repo, fix))
            paths.append(repo)
    module = node.target.rpartition(".")[0]
    checks = getattr(node.cls, "import_checks", None)
    wanted = [module, *(checks() if checks else getattr(node.cls, "requires", ()))]
    if python:
        missing = _imports(python, wanted, paths)
        for item in wanted:
            error = missing.get(item) or missing.get("(interpreter)")
            package = item.split(":")[0].split(".")[0]
            fix = f"{python} -m pip install {package}" if error and package != "reedit" else ""
            out.append(Check(f"{node.what}: import {item}", not error, error or "ok", fix))
    for problem in (
        node.cls.path_problems(node.settings) if hasattr(node.cls, "path_problems") else []
    ):
        key = f"{node.what}.{problem.split(':', 1)[0]}"
        out.append(
            Check(key, False, problem.split(":", 1)[1].strip(), f"put the files there or set {key}")
        )
    path = getattr(node.settings, "path", None)
    hub = isinstance(path, str) and not path.startswith(("/", ".", "~", "tiny:"))
    if hub and not Path(path).exists():
        cached = _hub_cached(path)
        fix = "" if cached else f"hf download {path}"
        detail = f"hub id {path}: " + ("in the local cache" if cached else "not downloaded")
        out.append(Check(f"{node.what}.path", cached, detail, fix))
    return out


def diagnose(cfg: Any, groups: list[str]) -> list[Check]:
    from reedit.config import ConfigError, spec_of
    from reedit.runtime import nodes

    out: list[Check] = []
    for group in groups:
        try:
            spec = spec_of(cfg[group], group)
        except ConfigError as exc:
            out.append(Check(group, False, str(exc), "fix the configuration key it names"))
            runtime = _plain(cfg[group]).get("runtime") if cfg[group] is not None else None
            made = recipe(runtime)
            if made and runtime.get("repo_path") == MISSING:
                fix = f"git clone {repository(made)} <dir>, then {group}.runtime.repo_path=<dir>"
                out.append(Check(f"{group}.runtime.repo_path", False, "not set", fix))
            if made:
                out.append(Check(f"{group}: environment recipe", True, str(made), recipe_fix(made)))
            continue
        if spec is None:
            out.append(Check(group, True, "none configured"))
            continue
        for node in nodes(spec):
            if node.children:
                continue  # a judge or refiner: its VLM backend is checked
            out += check_node(node)
    return out


def _plain(node: Any) -> dict[str, Any]:
    from omegaconf import OmegaConf

    value = OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node
    return value if isinstance(value, dict) else {}


def table(checks: list[Check]) -> str:
    width = max((len(c.what) for c in checks), default=10)
    lines = [f"{'check':<{width}}  status   detail / fix"]
    for c in checks:
        lines.append(f"{c.what:<{width}}  {'ok' if c.ok else 'MISSING':<7}  {c.detail}")
        if c.fix:
            lines.append(f"{'':<{width}}           fix: {c.fix}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from hydra import compose, initialize_config_dir

    overrides = list(sys.argv[1:] if argv is None else argv)
    named = [
        g for g in GROUPS if any(o.lstrip("+").split("=")[0].split(".")[0] == g for o in overrides)
    ]
    try:
        with initialize_config_dir(str(config_dir()), version_base="1.3", job_name="doctor"):
            cfg = compose("config", overrides=overrides)
    except Exception as exc:
        sys.stderr.write(f"reedit.doctor: {exc}\n")
        return 2
    checks = diagnose(cfg, named or ["model"])
    sys.stdout.write(table(checks) + "\n")
    missing = sum(not c.ok for c in checks)
    sys.stdout.write("everything is there\n" if not missing else f"{missing} missing\n")
    return 0 if not missing else 1


if __name__ == "__main__":
    sys.exit(main())
