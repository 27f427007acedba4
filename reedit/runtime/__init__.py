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
    """Fail at set-up, naming the key, for a runtime setting this build cannot honour."""
    from reedit.config import ConfigError

    for node in nodes(spec):
        worker_config(node)  # checks the runtime setting
        parallel = getattr(node.settings, "parallel", None)
        modes = getattr(node.cls, "parallel_modes", ("data", "model"))
        if parallel is not None and parallel not in modes:
            raise ConfigError(
                f"{node.what}.parallel={parallel} is not supported by {node.cls.__name__} "
                f"(it supports {', '.join(modes)})"
            )


@dataclass(frozen=True)
class Layout:
    """How the run's processes share ``gpus``: ``world`` ranks, each with its replica's GPUs
    (indexes into ``gpus``; none on CPU ranks)."""

    world: int = 1
    replicas: tuple[tuple[int, ...], ...] = ()


def layout(
    specs: dict[str, Spec | None],
    gpus: Sequence[int],
    gpus_per_replica: int | None = None,
    cpu_ranks: int = 1,
    visible: int | None = None,
) -> Layout:
    """The ranks for ``gpus`` (checked, naming the key): one per GPU when every model keeps one
    copy per GPU; ``gpus_per_replica`` GPUs each (default: what the models' copies need, all of
    ``gpus`` for a ``parallel: model`` one); ``cpu_ranks`` without GPUs. ``visible``: how many
    GPUs this machine shows, when known (an id beyond is an error)."""
    from reedit.config import ConfigError

    gpus = [int(g) for g in gpus]
    if cpu_ranks < 1:
        raise ConfigError(f"cpu_ranks must be >= 1, got {cpu_ranks}")
    if not gpus:
        if gpus_per_replica is not None:
            raise ConfigError(
                f"gpus_per_replica={gpus_per_replica} needs gpus (gpus=[] runs on the CPU)"
            )
        return Layout(cpu_ranks)
    if cpu_ranks > 1:
        raise ConfigError(
            f"cpu_ranks={cpu_ranks} is for CPU runs (gpus=[]); with gpus={gpus} the ranks are "
            "len(gpus) / gpus_per_replica"
        )
    twice = sorted({g for g in gpus if gpus.count(g) > 1})
    if twice:
        raise ConfigError(f"gpus={gpus}: GPU {twice[0]} is listed twice")
    if min(gpus) < 0:
        raise ConfigError(f"gpus={gpus}: GPU ids are >= 0")
    if visible is not None and max(gpus) >= visible:
        raise ConfigError(
            f"gpus={gpus}: GPU {max(gpus)} does not exist (this machine shows {visible} GPU(s)"
            + (f": ids 0..{visible - 1})" if visible else ")")
        )
    every = [n for s in specs.values() if s is not None for n in nodes(s)]
    users = [n for n in every if getattr(n.cls, "uses_gpus", False) and not n.children]
    if not users:  # the gpus are ignored (warn_unused_gpus says so): one process
        return Layout(1, (tuple(range(len(gpus))),))
    needs = {n.what: n.cls.copy_gpus(n.settings) for n in users}
    k = gpus_per_replica
    if k is None:
        k = min(len(gpus), max(len(gpus) if need is None else need for need in needs.values()))
    if int(k) < 1 or len(gpus) % int(k):
        raise ConfigError(
            f"gpus_per_replica={k} does not divide the {len(gpus)} GPUs of gpus={gpus} into "
            "equal replicas"
        )
    k = int(k)
    for what, need in needs.items():
        if need is not None and need > k:
            raise ConfigError(
                f"{what} needs {need} GPUs per copy, but each replica has {k} (gpus={gpus}, "
                f"gpus_per_replica={gpus_per_replica}): list more gpus or raise gpus_per_replica"
            )
    for n in users:
        if k > 1 and getattr(n.settings, "parallel", None) == "data":
            raise ConfigError(
                f"{n.what}.parallel=data keeps one copy on one GPU, but each replica has {k} "
                f"(gpus={gpus}): set {n.what}.parallel=model to spread it over them, or "
                "gpus_per_replica=1 for one rank per GPU"
            )
    replicas = tuple(tuple(range(i, i + k)) for i in range(0, len(gpus), k))
    return Layout(len(replicas), replicas)


def visible_devices() -> list[str] | None:
    """The GPUs this process may use, without touching CUDA: ``CUDA_VISIBLE_DEVICES``, else
    the indexes ``nvidia-smi`` lists; None when neither says (no nvidia-smi, or it failed:
    logged)."""
    import os
    import subprocess

    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return [d.strip() for d in given.split(",") if d.strip()]
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("no GPU list from nvidia-smi (%s)", exc)
        return None
    if out.returncode != 0:
        log.warning("nvidia-smi failed (%s): %s", out.returncode, out.stderr.strip()[:300])
        return None
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


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
