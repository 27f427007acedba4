"""What every model shares (an editor or a VLM backend): settings declared once, the run's GPUs,
a path resolver, and a load-once life cycle.

``gpus`` (the run's top-level list) and ``locate`` (turns a configured model path into one to
load: the run resolves ``tiny:<name>`` test models there) are given at construction, never set
afterwards. Heavy imports happen in :meth:`Model._load`, never at module import.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from reedit.settings import SettingsBase, runtime_field

log = logging.getLogger(__name__)

DTYPES = ("bfloat16", "float16", "float32")  # what a model's `dtype` may be (torch's names)


def physical_gpus(gpus: Sequence[int], environ: Mapping[str, str] | None = None) -> list[str]:
    """The device ids behind ``gpus``, which count within what this process already sees (as
    ``cuda:N`` does): with ``CUDA_VISIBLE_DEVICES=4,5,6,7`` set, ``gpus=[0,1]`` are ``4,5``; the
    value a child process (a worker, an engine) gets as its ``CUDA_VISIBLE_DEVICES``."""
    visible = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return [str(int(g)) for g in gpus]
    shown = [v.strip() for v in visible.split(",") if v.strip()]
    if gpus and max(int(g) for g in gpus) >= len(shown):
        raise ValueError(
            f"gpus={list(gpus)}: CUDA_VISIBLE_DEVICES={visible!r} shows {len(shown)} device(s) "
            f"to this process, so GPU ids must be below {len(shown)}"
        )
    return [shown[int(g)] for g in gpus]


def unchanged(path: str) -> str:
    return path


def seed_global_rngs(seed: int) -> None:
    """torch's (CPU and every CUDA device), NumPy's and Python's global RNGs from ``seed``: for
    models that sample from them, not only from a generator they are given."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def import_repo(module: str, repository: str, recipe: str) -> Any:
    """Import ``module`` from a model's own repository (on the worker's ``repo_path``), or fail
    naming the setting, the repository to clone and the environment recipe."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"cannot import {module} ({type(exc).__name__}: {exc}): clone {repository} and set "
            f"model.runtime.repo_path to the clone, in the environment of reedit/runtime/envs/"
            f"{recipe} (python -m reedit.doctor checks both)"
        ) from exc


class Model:
    """A model behind reedit's interfaces. Every constructor value comes from its YAML."""

    @dataclass
    class Settings(SettingsBase):
        batch_size: int = runtime_field(1)  # requests per model call
        # Where the model runs (reedit.runtime): inprocess, or a worker in another environment.
        runtime: Any = runtime_field("inprocess")

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.batch_size < 1:
                raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    kind: ClassVar[str] = "model"  # in log lines: "loading <kind> <class>"
    uses_gpus: ClassVar[bool] = True  # False: the run's gpus mean nothing to it (say so)
    # What load() imports, as "module" or "module:attribute" (reedit.doctor checks them in the
    # model's own interpreter).
    requires: ClassVar[tuple[str, ...]] = ()
    honours: ClassVar[frozenset[str]] = frozenset()  # the shared knobs it uses (settings.knob)
    # The values of its `parallel` setting it supports (data: one copy per GPU, one rank each;
    # model: one copy over several GPUs); checked at set-up.
    parallel_modes: ClassVar[tuple[str, ...]] = ("data", "model")

    def __init__(
        self,
        settings: Any = None,
        *,
        gpus: Sequence[int] = (),
        locate: Callable[[str], str] | None = None,
        **values: Any,
    ) -> None:
        if settings is None:
            settings = self.Settings(**values)
        elif values:
            raise TypeError(f"{type(self).__name__}: give settings or keyword values, not both")
        self.settings = settings
        self.gpus = list(gpus)  # empty: the CPU
        self.locate = locate or unchanged
        self.loaded = False

    @classmethod
    def path_problems(cls, settings: Any) -> list[str]:
        """Set-up check of the local files the settings name: ``"<key>: <problem>"`` each.
        A ``path`` written as a local path (``/``, ``.``, ``~``) must be a folder."""
        path = getattr(settings, "path", None)
        local = isinstance(path, str) and path.startswith(("/", ".", "~"))
        if local and not Path(path).expanduser().is_dir():
            return [f"path: no such folder: {Path(path).expanduser()}"]
        return []

    @classmethod
    def copy_gpus(cls, settings: Any) -> int | None:
        """How many GPUs one copy of the model uses: 1 (one copy per GPU: ``parallel: data``,
        the default), n, or None (all it is given: ``parallel: model``). The run's ranks are
        sized by it (``gpus_per_replica``)."""
        return None if getattr(settings, "parallel", "data") == "model" else 1

    @property
    def label(self) -> str:
        """How log lines name the model."""
        return type(self).__name__

    @property
    def batch_size(self) -> int:
        return self.settings.batch_size

    def load(self) -> None:
        """Load the model once (a second call is a no-op)."""
        if self.loaded:
            return
        t0 = time.perf_counter()
        log.info("loading %s %s", self.kind, self.label)
        self._load()
        self.loaded = True
        log.info("loaded %s in %.2f s", self.label, time.perf_counter() - t0)

    def close(self) -> None:
        """Free the model; a later :meth:`load` loads it again."""
        if self.loaded:
            self._close()
            self.loaded = False

    def _load(self) -> None:  # noqa: B027 - optional hook
        """Load weights (heavy imports go here)."""

    def _close(self) -> None:  # noqa: B027 - optional hook
        """Release weights and device memory."""
