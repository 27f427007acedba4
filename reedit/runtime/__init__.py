"""Where a model runs: the seam the run's model pool opens every model through.

A model's ``runtime`` setting decides: ``inprocess`` (this process; the only runtime today) or a
worker in another environment (``{kind: worker, ...}``: the worker runtime is a later addition and
a set-up error until then). :func:`check` runs at set-up, before any data or model is touched;
:func:`open_model` builds a model (an editor, a VLM backend, or a refiner/judge around its
backend) without loading it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reedit.config import ConfigError, Spec, build
from reedit.models.component import unchanged

INPROCESS = "inprocess"


@dataclass(frozen=True)
class Placement:
    """What a model is given to run with: the run's GPUs and the model-path resolver."""

    gpus: tuple[int, ...] = ()
    locate: Callable[[str], str] = field(default=unchanged)


def _nodes(spec: Spec) -> list[Spec]:
    return [spec, *(n for child in spec.children.values() for n in _nodes(child))]


def check(spec: Spec, gpus: Sequence[int]) -> None:
    """Fail at set-up, naming the key, for a runtime or GPU layout this build cannot honour."""
    for node in _nodes(spec):
        where = getattr(node.settings, "runtime", INPROCESS)
        if where == INPROCESS:
            pass
        elif isinstance(where, dict) and where.get("kind") == "worker":
            raise ConfigError(
                f"{node.what}.runtime: the worker runtime (the model in a persistent process of "
                "another environment) is not available yet; use runtime: inprocess"
            )
        else:
            raise ConfigError(
                f"{node.what}.runtime: unknown runtime {where!r}; choose inprocess "
                "(or, once available, {kind: worker, ...})"
            )
        if getattr(node.settings, "parallel", None) == "data" and len(gpus) > 1:
            raise ConfigError(
                f"gpus={list(gpus)} with {node.what}.parallel=data needs one rank per GPU, which "
                f"is not available yet: list one GPU, or set {node.what}.parallel=model to spread "
                "one copy of the model over them"
            )


def open_model(spec: Spec, placement: Placement) -> Any:
    """Build ``spec``'s model where its runtime says (not loaded yet)."""
    return build(spec, gpus=list(placement.gpus), locate=placement.locate)
