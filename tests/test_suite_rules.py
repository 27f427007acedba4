"""Rules every test module follows, checked on their source (AST only: fast, nothing is run).

- A child process is waited for with a timeout (``subprocess.run``/``check_output``/
  ``check_call``/``call`` pass ``timeout=``; ``.wait()``/``.communicate()`` one too): a hung child
  fails its test instead of hanging CI until the job is killed, with nothing to read.
- ``pytest.raises`` passes ``match=``: an error test checks the message the user sees (the key,
  field or record it names, what to do), not merely that something of that type was raised.
- ``pytest.importorskip`` is for optional packages only (vllm on GPU machines): a hard dependency
  of the project (``pyproject.toml``: ``dependencies`` and the ``dev`` extra) is imported, so
  that a broken install fails instead of silently skipping the tests that need it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from collections.abc import Iterator
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: pytest's own dependency there
    import tomli as tomllib

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
WAITING = {"subprocess." + f for f in ("run", "check_output", "check_call", "call")}
# Distribution name -> import name, where they differ beyond "-" -> "_" and case.
IMPORT_NAMES = {
    "pillow": "PIL",
    "hydra-core": "hydra",
    "import-linter": "importlinter",
    "hydra-submitit-launcher": "hydra_plugins.hydra_submitit_launcher",
    "hydra-ray-launcher": "hydra_plugins.hydra_ray_launcher",
}


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(TESTS.rglob("*.py")):
        yield str(path.relative_to(ROOT)), ast.parse(path.read_text(encoding="utf-8"), str(path))


def calls(tree: ast.Module) -> Iterator[tuple[str | None, ast.Call]]:
    """Every call with its dotted target as imported (``sp.run`` after ``import subprocess as
    sp`` is ``subprocess.run``; ``raises`` from ``from pytest import raises`` is
    ``pytest.raises``); None for a call on anything but an imported name."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:  # import a.b: a; import a.b as c: a.b
                top = alias.name.split(".")[0]
                names[alias.asname or top] = alias.name if alias.asname else top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            parts, func = [], node.func
            while isinstance(func, ast.Attribute):
                parts.append(func.attr)
                func = func.value
            if isinstance(func, ast.Name) and func.id in names:
                yield ".".join([names[func.id], *reversed(parts)]), node
            else:
                yield None, node


def keywords(call: ast.Call) -> set[str | None]:
    return {k.arg for k in call.keywords}  # None: a **mapping, which is not checked through


def hard_dependencies() -> dict[str, str]:
    """Import name -> distribution, of ``dependencies`` and the ``dev`` extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    out = {}
    for req in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        dist = re.match(r"[A-Za-z0-9._-]+", req).group(0).lower()
        out[IMPORT_NAMES.get(dist, dist.replace("-", "_"))] = dist
    return out


def test_every_wait_for_a_child_process_has_a_timeout():
    found = []
    for path, tree in modules():
        for name, call in calls(tree):
            if name in WAITING and "timeout" not in keywords(call):
                found.append(f"{path}:{call.lineno}: {name}(...) without timeout=")
            elif (
                isinstance(call.func, ast.Attribute)
                and call.func.attr in ("wait", "communicate")
                and not call.args
                and "timeout" not in keywords(call)
            ):
                found.append(f"{path}:{call.lineno}: .{call.func.attr}() without timeout=")
    assert not found, "a hung child would hang the suite; pass timeout=:\n" + "\n".join(found)


def test_every_pytest_raises_checks_the_message():
    found = [
        f"{path}:{call.lineno}: {ast.unparse(call)}"
        for path, tree in modules()
        for name, call in calls(tree)
        if name == "pytest.raises" and "match" not in keywords(call)
    ]
    assert not found, "check the message the user sees; pass match=:\n" + "\n".join(found)


def test_importorskip_is_only_for_optional_packages():
    hard = hard_dependencies()
    found = []
    for path, tree in modules():
        for name, call in calls(tree):
            if name != "pytest.importorskip":
                continue
            given = [*call.args, *(k.value for k in call.keywords if k.arg == "modname")]
            module = given[0].value if given and isinstance(given[0], ast.Constant) else ""
            dist = next(
                (d for m, d in hard.items() if module == m or module.startswith(m + ".")), ""
            )
            if dist:
                found.append(f"{path}:{call.lineno}: importorskip({module!r}): {dist} is required")
    assert not found, "import a hard dependency instead:\n" + "\n".join(found)


def test_the_import_names_of_the_hard_dependencies_are_theirs():
    """The mapping above is right: each installed distribution provides its import name."""
    provided = importlib.metadata.packages_distributions()
    wrong = []
    for module, dist in hard_dependencies().items():
        top = module.split(".")[0]
        try:
            importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            continue  # not installed here: nothing to check it against
        owners = {d.lower().replace("_", "-") for d in provided.get(top, [])}
        if dist.replace("_", "-") not in owners:
            wrong.append(f"{dist} -> {module} (provided by {sorted(owners) or 'nothing'})")
    assert not wrong, "fix IMPORT_NAMES:\n" + "\n".join(wrong)
