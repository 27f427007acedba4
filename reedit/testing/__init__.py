"""Tiny models and the demo data, built locally and deterministically (for the tests and the
demo): the real pipeline and model classes with random or briefly trained weights.

``tiny:<name>`` model paths are resolved here (:func:`locate`), by the run, above the models: no
adapter or backend imports this package. One recipe record per model: ``pipelines.PIPELINES``
(diffusers edit pipelines), ``vlms.FAMILIES`` (random-weight Qwen-VL), ``trained.RECIPES`` (the
demo's trained judge and refiner). Importing this package is light.
"""

from __future__ import annotations

from pathlib import Path

PREFIX = "tiny:"


def ensure(name: str) -> Path:
    """The cached folder of tiny model ``name``, built (or trained) on first use."""
    from reedit.testing import pipelines, trained, vlms

    if name in pipelines.PIPELINES:
        return pipelines.ensure(name)
    if name in vlms.FAMILIES:
        return vlms.ensure_vlm(name)
    if name in trained.RECIPES:
        return trained.ensure_trained(name)
    known = [*pipelines.PIPELINES, *vlms.FAMILIES, *trained.RECIPES]
    raise ValueError(f"unknown tiny model '{PREFIX}{name}'; known: {', '.join(known)}")


def locate(path: str) -> str:
    """A ``tiny:<name>`` path as its built folder; any other path unchanged."""
    if not path.startswith(PREFIX):
        return path
    return str(ensure(path.removeprefix(PREFIX)))
