"""Config nodes to components: the one place a ``_target_`` becomes a class, its keys are checked
against the class's ``Settings`` and an object is built.

:func:`spec_of` runs at set-up, before any data or model is touched: it imports the target (light:
heavy imports live in ``load()``), rejects unknown keys (suggesting the close match), wrong types,
unset mandatory values and shared knobs the adapter ignores, each naming the config key.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from reedit import settings as _settings


class ReeditError(Exception):
    """A problem the user can fix; the message names the config key or record to change."""


class ConfigError(ReeditError):
    pass


def to_plain(node: Any) -> Any:
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


@dataclass(frozen=True)
class Spec:
    """A configured component: its class, checked settings and nested components."""

    what: str  # its config path, e.g. "model" or "judge.vlm"
    target: str
    cls: type
    settings: Any  # an instance of cls.Settings
    children: dict[str, Spec] = field(default_factory=dict)

    def tree(self, keep: Any = None) -> dict[str, Any]:
        """``{_target_, field: value, child: child's tree}``; ``keep(field) -> bool`` filters."""
        out: dict[str, Any] = {"_target_": self.target}
        for f in dataclasses.fields(self.settings):
            if _settings.is_quiet_default(f, getattr(self.settings, f.name)):
                continue  # added later, at the default earlier runs had
            if f.name in self.children:
                out[f.name] = self.children[f.name].tree(keep)
            elif f.metadata.get("component"):
                out[f.name] = None
            elif keep is None or keep(f):
                out[f.name] = getattr(self.settings, f.name)
        return out

    def output_tree(self) -> dict[str, Any]:
        """What decides the component's outputs (runtime fields left out): fingerprints."""
        return self.tree(_settings.is_output)


def settings_class(cls: type, what: str, target: str) -> type:
    found = getattr(cls, "Settings", None)
    if not (isinstance(found, type) and dataclasses.is_dataclass(found)):
        raise ConfigError(f"{what}._target_: {target} declares no Settings dataclass")
    return found


def spec_of(node: Any, what: str) -> Spec | None:
    """Check a config node (``_target_`` and settings) against its class; None when disabled
    (``_target_: null``, e.g. ``judge=none``)."""
    from hydra.utils import get_class

    plain = to_plain(node)
    if not isinstance(plain, dict):
        raise ConfigError(f"{what}: expected a config with _target_, got {plain!r}")
    target = plain.get("_target_")
    if target is None:
        if "_target_" in plain:
            return None
        raise ConfigError(f"{what}._target_ is not set")
    try:
        cls = get_class(target)
    except Exception as exc:
        raise ConfigError(f"{what}._target_: cannot import '{target}' ({exc})") from None
    schema = settings_class(cls, what, target)
    names = [f.name for f in dataclasses.fields(schema)]
    for key in plain:
        if key not in names and key != "_target_":
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" Did you mean '{what}.{close[0]}'?" if close else ""
            raise ConfigError(f"{what}.{key}: not a setting of {target}.{hint}")
    children = {}
    for name in _settings.components(schema):
        child = spec_of(plain[name], f"{what}.{name}") if plain.get(name) is not None else None
        if child is None:
            raise ConfigError(f"{what}.{name} must be set: a node with its own _target_")
        children[name] = child
    values = {
        k: v for k, v in plain.items() if k in names and k not in _settings.components(schema)
    }
    try:
        typed = OmegaConf.merge(OmegaConf.structured(schema), values)
        missing = sorted(OmegaConf.missing_keys(typed))
        if missing:
            raise ConfigError(f"{what}.{missing[0]} must be set (it has no default)")
        obj = OmegaConf.to_object(typed)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", "") or getattr(exc, "key", "") or "?"
        raise ConfigError(f"{what}.{key}: {str(exc).splitlines()[0]}") from None
    except ValueError as exc:  # Settings.__post_init__ checks, worded "<field> ..."
        message = str(exc)
        named = message.split(" ", 1)[0].rstrip(":") in names
        raise ConfigError(f"{what}.{message}" if named else f"{what}: {message}") from None
    honours = getattr(cls, "honours", frozenset())
    for name in _settings.knobs(schema):
        if name not in honours and getattr(obj, name) is not None:
            raise ConfigError(
                f"{what}.{name}: {cls.__name__} does not use {name} (it honours "
                f"{', '.join(sorted(honours)) or 'none of the shared knobs'}); remove it: it "
                "would change the fingerprint and nothing else"
            )
    return Spec(what, target, cls, obj, children)


def build(spec: Spec, children: dict[str, Any] | None = None, **resources: Any) -> Any:
    """Build a component in this process: nested components first (or ``children``, built by
    the caller), then the class with its settings and ``resources`` (``gpus``, ``locate``). A
    constructor's own checks that fail are a :class:`ConfigError` naming the component."""
    if children is None:
        children = {name: build(child, **resources) for name, child in spec.children.items()}
    try:
        return spec.cls(spec.settings, **children, **resources)
    except ReeditError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{spec.what}: cannot build {spec.target}: {exc}") from exc


def instantiate(node: Any, what: str, **resources: Any) -> Any:
    """``build(spec_of(node, what))``: a component straight from a config node."""
    spec = spec_of(node, what)
    if spec is None:
        raise ConfigError(f"{what}: disabled (_target_: null), nothing to build")
    return build(spec, **resources)
