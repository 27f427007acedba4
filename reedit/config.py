"""Config helpers: the one ``instantiate`` for every ``_target_``, and errors that name keys."""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


class ReeditError(Exception):
    """A problem the user can fix; the message names the config key or record to change."""


class ConfigError(ReeditError):
    pass


def to_plain(node: Any) -> Any:
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def accepted_keys(cls: type) -> set[str] | None:
    """Keyword arguments the class accepts along its ``**kwargs`` chain; None: anything."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if klass is object:
            return names
        params = inspect.signature(init).parameters.values()
        names |= {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names - {"self"}
    return None


def _check(node: dict, what: str) -> None:
    from hydra.utils import get_class

    target = node.get("_target_")
    if not target:
        raise ConfigError(f"{what}._target_ is not set")
    try:
        cls = get_class(target)
    except Exception as exc:
        raise ConfigError(f"{what}._target_: cannot import '{target}' ({exc})") from None
    allowed = accepted_keys(cls)
    for key, value in node.items():
        if key.startswith("_") and key.endswith("_"):
            continue
        if allowed is not None and key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" Did you mean '{what}.{close[0]}'?" if close else ""
            raise ConfigError(f"{what}.{key}: not a setting of {target}.{hint}")
        if isinstance(value, dict) and value.get("_target_"):
            _check(value, f"{what}.{key}")


def instantiate(node: Any, what: str, **kwargs: Any) -> Any:
    """Instantiate ``node`` (a config with ``_target_``); ``what`` is its config path."""
    from hydra.utils import instantiate as hydra_instantiate

    plain = to_plain(node)
    if not isinstance(plain, dict):
        raise ConfigError(f"{what}: expected a config with _target_, got {plain!r}")
    _check(plain, what)
    try:
        return hydra_instantiate(plain, _convert_="all", **kwargs)
    except Exception as exc:
        cause = exc.__cause__ or exc
        raise ConfigError(
            f"{what}: cannot build {plain['_target_']}: {type(cause).__name__}: {cause}"
        ) from exc
