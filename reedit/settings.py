"""Settings declared once: a dataclass beside each component class (``Component.Settings``).

Every key a YAML may set is a field of its ``_target_``'s ``Settings``, with its type, its default
(``MISSING``: the YAML must set it) and two marks:

- ``runtime_field(...)``: the field changes how the component runs (batch sizes, devices, timeouts,
  caches), not what it produces; it is left out of record fingerprints and judge-cache keys.
- ``knob(...)``: a knob of the shared vocabulary (``guidance_scale``, ``true_cfg_scale``,
  ``negative_prompt``, ``height``, ``width``, ``max_area``) that a family declares once; each
  adapter lists the knobs it honours, and setting one it ignores is a set-up error.

A field whose value is another component (a judge's ``vlm``) is declared with ``component()``.
A field added after run folders were written is declared with ``added(default)``: at its default
it is left out of fingerprints (it reproduces what those runs did), so they resume unchanged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING as _NO_DEFAULT
from dataclasses import dataclass
from typing import Any

MISSING = "???"  # OmegaConf's mark of a mandatory value (not imported: workers run without it)

__all__ = [
    "MISSING",
    "SettingsBase",
    "added",
    "check_choice",
    "component",
    "knob",
    "output_fields",
    "runtime_field",
    "setting",
]


def setting(
    default: Any = _NO_DEFAULT,
    *,
    factory: Any = _NO_DEFAULT,
    output: bool = True,
    knob: bool = False,
    component: bool = False,
    added: bool = False,
) -> Any:
    """A settings field; ``factory`` for mutable defaults (lists, dicts)."""
    metadata = {"output": output, "knob": knob, "component": component, "added": added}
    if factory is not _NO_DEFAULT:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def runtime_field(default: Any = _NO_DEFAULT, *, factory: Any = _NO_DEFAULT) -> Any:
    """A field that changes how a component runs, never what it produces."""
    return setting(default, factory=factory, output=False)


def knob(default: Any = None) -> Any:
    """A shared-vocabulary knob (null: not set); adapters declare which they honour."""
    return setting(default, knob=True)


def added(default: Any) -> Any:
    """A setting added later whose default is what earlier versions did (see the module doc)."""
    return setting(default, added=True)


def is_quiet_default(f: dataclasses.Field, value: Any) -> bool:
    """An ``added`` field at its default: left out of fingerprints."""
    return bool(f.metadata.get("added")) and value == f.default


def component() -> Any:
    """A field holding another component's config (its own ``_target_`` and settings)."""
    return setting(None, component=True)


@dataclass
class SettingsBase:
    """Base of every ``Settings`` dataclass: a field left at ``MISSING`` is an error."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) == MISSING and not f.metadata.get("component"):
                raise ValueError(f"{f.name} must be set (it has no default)")


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
    """A ``Settings`` check, worded "<field> ..." so that the config key is named."""
    if value not in choices:
        quoted = [f"'{c}'" for c in choices]
        shown = " or ".join(quoted) if len(quoted) == 2 else f"one of {', '.join(quoted)}"
        raise ValueError(f"{name} must be {shown}, got '{value}'")


def is_output(f: dataclasses.Field) -> bool:
    return bool(f.metadata.get("output", True)) and not f.metadata.get("component")


def output_fields(settings: Any) -> dict[str, Any]:
    """The fields that decide what a component produces (runtime fields left out)."""
    return {
        f.name: getattr(settings, f.name)
        for f in dataclasses.fields(settings)
        if is_output(f) and not is_quiet_default(f, getattr(settings, f.name))
    }


def knobs(settings_cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(settings_cls) if f.metadata.get("knob")]


def components(settings_cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(settings_cls) if f.metadata.get("component")]
