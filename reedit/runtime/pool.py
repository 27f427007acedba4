"""The run's models: each opened through the runtime seam (at set-up: :meth:`ModelPool.build_all`
runs every constructor's checks before any data is touched), loaded at its first use, once per
run, and released when the run says (the run knows the stage order; stages never release)."""

from __future__ import annotations

import logging
from typing import Any

from reedit.config import ReeditError, Spec
from reedit.runtime import Placement, open_model

log = logging.getLogger(__name__)


class ModelLoadError(ReeditError):
    """A model could not be loaded (the message names the config group and the cause)."""


class ModelPool:
    def __init__(self, specs: dict[str, Spec | None], placement: Placement) -> None:
        self.specs = specs
        self.placement = placement
        self._built: dict[str, Any] = {}
        self._open: dict[str, Any] = {}

    def build_all(self) -> None:
        """Build (never load) every configured model: constructor checks fail now."""
        for group, spec in self.specs.items():
            if spec is not None:
                self.built(group)

    def built(self, group: str) -> Any:
        """The group's model, built once (not loaded)."""
        if group not in self._built:
            spec = self.specs.get(group)
            if spec is None:
                raise ReeditError(f"{group}: no model is configured (it is set to none)")
            self._built[group] = open_model(spec, self.placement)
        return self._built[group]

    def get(self, group: str) -> Any:
        """The loaded model of a config group (model, executor, refiner, judge)."""
        if group not in self._open:
            obj = self.built(group)
            try:
                obj.load()
            except Exception as exc:
                raise ModelLoadError(
                    f"{group}: loading {self.specs[group].target} failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            self._open[group] = obj
        return self._open[group]

    def use_scratch(self, folder: Any) -> None:
        """Where models that hand back files (a worker's edits) write them: inside the run
        folder, so that an output is renamed into place, never copied across file systems."""
        for obj in self._built.values():
            if hasattr(obj, "scratch"):
                obj.scratch = folder

    def is_loaded(self, group: str) -> bool:
        return group in self._open

    def release(self, group: str) -> None:
        obj = self._open.pop(group, None)
        if obj is not None:
            obj.close()

    def release_all(self) -> None:
        for group in list(self._open):
            self.release(group)
