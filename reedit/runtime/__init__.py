"""Where a model runs: the seam the run's model pool opens every model through.

A model's ``runtime`` setting decides: ``inprocess`` (this process) or a worker, a persistent
process of another interpreter (``worker`` or ``{kind: worker, ...}``: the parent side in
:mod:`reedit.runtime.workers`, the worker itself in :mod:`reedit.runtime.worker`).
:func:`check` runs at set-up, before any data or model is touched; :func:`open_model` builds a
model (an editor, a VLM backend, or a refiner/judge around its backend) without loading it.

This package's ``__init__`` imports nothing beyond the standard library and ``reedit.settings``
at import time: ``python -m reedit.runtime.worker`` runs where OmegaConf and Hydra are not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reedit.models.component import unchanged

if TYPE_CHECKING:
    from reedit.config import Spec

log = logging.getLogger(__name__)

INPROCESS = "inprocess"


@dataclass(frozen=True)
class Placement:
    """What a model is given to run with: the run's GPUs and the model-path resolver."""

    gpus: tuple[int, ...] = ()
    locate: Callable[[str], str] = field(default=unchanged)


def nodes(spec: Spec) -> list[Spec]:
    """The spec and every nested component's spec (a judge and its VLM backend)."""
    return [spec, *(n for child in spec.children.values() for n in nodes(child))]


def check(spec: Spec, gpus: Sequence[int]) -> None:
    """Fail at set-up, naming the key, for a runtime or GPU layout this build cannot honour."""
    from reedit.config import ConfigError

    for node in nodes(spec):
        worker_config(node)  # checks the runtime setting
        if getattr(node.settings, "parallel", None) == "data" and len(gpus) > 1:
            raise ConfigError(
                f"gpus={list(gpus)} with {node.what}.parallel=data needs one rank per GPU, which "
                f"is not available yet: list one GPU, or set {node.what}.parallel=model to spread "
                "one copy of the model over them"
            )


def path_problems(spec: Spec) -> list[str]:
    """Every local model path of the spec's models that does not exist, named by its key (all of
    them, so that a missing editor path and a missing refiner path are reported at once)."""
    out = []
    for node in nodes(spec):
        check = getattr(node.cls, "path_problems", None)
        out += [f"{node.what}.{p}" for p in (check(node.settings) if check else [])]
        config = worker_config(node)
        for repo in config.repo_path if config else ():
            if not Path(repo).expanduser().is_dir():
                out.append(f"{config.what}.repo_path: no such folder: {repo}")
    return out


def warn_unused_gpus(specs: dict[str, Spec | None], gpus: Sequence[int]) -> None:
    """``gpus`` given where no configured model runs on one: say that it is ignored, once."""
    if not gpus:
        return
    every = [n for spec in specs.values() if spec is not None for n in nodes(spec)]
    users = [n.what for n in every if getattr(n.cls, "uses_gpus", False)]
    idle = [
        f"{n.what} ({n.cls.__name__})"
        for n in every
        if not getattr(n.cls, "uses_gpus", False) and not n.children
    ]
    if not users:
        log.warning(
            "gpus=%s is ignored: none of the configured models runs on a GPU (%s)",
            list(gpus),
            ", ".join(idle),
        )
    elif idle:
        log.info("gpus=%s: used by %s; not by %s", list(gpus), ", ".join(users), ", ".join(idle))


def worker_config(node: Spec) -> Any:
    """The node's worker settings, or None when it runs in process (a bad value: ConfigError)."""
    where = getattr(node.settings, "runtime", INPROCESS)
    if where == INPROCESS:
        return None
    from reedit.config import ConfigError
    from reedit.runtime.workers import WorkerConfig

    if where == "worker" or (isinstance(where, dict) and where.get("kind") == "worker"):
        from reedit.models.base import Editor
        from reedit.models.vlm.base import VLM

        if not issubclass(node.cls, (Editor, VLM)):
            raise ConfigError(
                f"{node.what}.runtime: only an editor or a VLM backend runs in a worker"
            )
        return WorkerConfig.of(where, f"{node.what}.runtime")
    raise ConfigError(
        f"{node.what}.runtime: unknown runtime {where!r}; choose inprocess, worker, or "
        "{kind: worker, python: ... | conda: ... | mamba: ... | micromamba: ...}"
    )


def open_model(spec: Spec, placement: Placement) -> Any:
    """Build ``spec``'s model where its runtime says (not loaded yet): in this process, or a
    proxy of the model in a worker (any node of the tree: a judge's VLM backend too)."""
    from reedit.config import build

    children = {n: open_model(child, placement) for n, child in spec.children.items()}
    obj = build(spec, children, gpus=list(placement.gpus), locate=placement.locate)
    config = worker_config(spec)
    if config is None:
        return obj
    from reedit.runtime.proxies import hosted

    return hosted(obj, config)
