"""The resume plan: what every unit's record must carry (its fingerprint), which units are still to
do, starting stages afresh, and the error-rate check.

A unit's fingerprint hashes the settings that decide its output — the component's output fields
(``reedit.settings``: runtime fields left out), the seed rule, and the fingerprint of its input —
so a finished unit is redone exactly when something that changes it changed. Runs written before
settings carried their own marks left out a fixed list of key names instead; their records are
recognised (:data:`LEGACY_RUNTIME_KEYS`), so an older run folder resumes without redoing work.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from reedit.config import ConfigError, ReeditError, Spec
from reedit.files import write_bytes_atomic
from reedit.layout import judgement_kind, labels, round_kind, round_label
from reedit.records import ERROR, Record, RecordStore, fingerprint
from reedit.schema import STAGES
from reedit.seeds import SeedRule

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"  # records/settings.json: fingerprint -> the settings it hashes

# What fingerprints left out, by name at any depth, before settings were marked (reedit 0.1).
LEGACY_RUNTIME_KEYS = frozenset(
    {
        "batch_size",
        "parallel",
        "runtime",
        "device_ids",
        "disable_progress_bar",
        "use_cpu_offload",
        "max_concurrency",
        "timeout",
        "cache",
        "cache_dir",
    }
)


class StageFailed(ReeditError):
    """A stage's error share exceeded ``max_error_rate`` (its records are written)."""


class ConfigMismatch(ReeditError):
    """Existing records were made with another configuration."""


def check_stage_names(key: str, names: Iterable[str]) -> None:
    """``stages`` / ``fresh``: every name must be a stage."""
    for name in names:
        if name not in STAGES:
            raise ConfigError(f"{key}: unknown stage '{name}'; stages are {list(STAGES)}")


def _legacy(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _legacy(v) for k, v in tree.items() if k not in LEGACY_RUNTIME_KEYS}
    if isinstance(tree, list):
        return [_legacy(v) for v in tree]
    return tree


def _trees(specs: dict[str, Spec | None], legacy: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for group, spec in specs.items():
        if spec is None:
            out[group] = None
        elif legacy:  # the old stage left the judge's metrics out by name too
            out[group] = {k: v for k, v in _legacy(spec.tree()).items() if k != "metrics"}
        else:
            out[group] = spec.output_tree()
    return out


def unit_settings(
    specs: dict[str, Spec | None], seeds: SeedRule, mode: str, rounds: int, legacy: bool = False
) -> dict[str, Any]:
    """What every unit kind's fingerprint hashes — edit, analyze/r, refine/r, judge/<label>, and
    each image label (what a judgement of it depends on): settings and upstream fingerprints."""
    t = _trees(specs, legacy)
    seed = {"seed": seeds.seed, "seed_mode": seeds.mode}
    out: dict[str, Any] = {"edit": {"model": t["model"], **seed}}
    out["primary"] = out["edit"]
    previous = fingerprint(out["edit"])
    for r in range(1, rounds + 1):
        analyze, refine = round_kind("analyze", r), round_kind("refine", r)
        out[analyze] = {"refiner": t["refiner"], "input": previous}
        out[refine] = {
            "executor": t["executor"],
            "mode": mode,
            **seed,
            "analyze": fingerprint(out[analyze]),
        }
        out[round_label(r)] = out[refine]
        previous = fingerprint(out[refine])
    images = {label: fingerprint(out[label]) for label in labels(rounds)}
    for label in labels(rounds):
        out[judgement_kind(label)] = {"judge": t["judge"], "image": images[label]}
    return out


def unit_fingerprints(
    specs: dict[str, Spec | None], seeds: SeedRule, mode: str, rounds: int, legacy: bool = False
) -> dict[str, str]:
    """The fingerprint of every unit kind (see :func:`unit_settings`)."""
    return fingerprints_of(unit_settings(specs, seeds, mode, rounds, legacy))


def fingerprints_of(settings: dict[str, Any]) -> dict[str, str]:
    """Each unit kind's fingerprint, from what it hashes (:func:`unit_settings`)."""
    return {kind: fingerprint(v) for kind, v in settings.items()}


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict) and tree:
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): tree}


def changed_settings(old: Any, new: Any, known: dict[str, Any], depth: int = 0) -> list[str]:
    """``key: old → new`` for each setting that differs; an upstream fingerprint that differs is
    followed into the settings it hashes (``known``: fingerprint → settings)."""
    a, b = _flat(old), _flat(new)
    out: list[str] = []
    replaced = [k[: -len("_target_")] for k in a if k.endswith("_target_") and a[k] != b.get(k)]
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key, "(unset)"), b.get(key, "(unset)")
        if x == y or any(key.startswith(p) and not key.endswith("_target_") for p in replaced):
            continue  # another class: its own settings are not a change
        if depth < 8 and key in ("input", "analyze", "image") and x in known and y in known:
            out += changed_settings(known[x], known[y], known, depth + 1)
        else:
            out.append(f"{key}: {x!r} \u2192 {y!r}")
    return list(dict.fromkeys(out))


def unit_fp(base: str, substituted: str | None) -> str:
    """A unit's fingerprint: its kind's, marked when its input is a compat substitute."""
    return fingerprint([base, "substituted", substituted]) if substituted else base


class ResumePlan:
    """Which units of a stage are to do, given its records and the current fingerprints."""

    def __init__(
        self,
        root: Path,
        current: dict[str, str],
        legacy: dict[str, str] | None = None,
        *,
        settings: dict[str, Any] | None = None,
        fresh: Sequence[str] = (),
        retry_errors: bool = False,
        max_error_rate: float = 1.0,
    ) -> None:
        check_stage_names("fresh", fresh)
        first = min((STAGES.index(s) for s in fresh), default=len(STAGES))
        # A stage started afresh makes every later stage's stale records redoable.
        self.redo_stale = set(STAGES[first:])
        self.fresh = set(fresh)
        self.archived: set[str] = set()
        self.root = Path(root)
        self.current, self.legacy = current, legacy or {}
        self.retry_errors, self.max_error_rate = retry_errors, max_error_rate
        self.settings = settings or {}  # kind -> what its fingerprint hashes
        self._remembered = False
        self.epoch = 0  # stage executions planned so far (the ranks count alike)

    @property
    def settings_file(self) -> Path:
        return self.root / "records" / SETTINGS_FILE

    def known_settings(self) -> dict[str, Any]:
        """Fingerprint -> the settings it hashes, for every fingerprint this folder has seen."""
        try:
            return json.loads(self.settings_file.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}

    def remember(self) -> None:
        """Add the current fingerprints' settings to the folder's file (once per run)."""
        if self._remembered or not self.settings:
            return
        self._remembered = True
        known = self.known_settings()
        new = {fingerprint(v): v for v in self.settings.values()}
        if any(fp not in known for fp in new):
            text = json.dumps({**known, **new}, indent=1, sort_keys=True, default=str)
            write_bytes_atomic(text.encode(), self.settings_file)

    def what_changed(self, kind: str, old_fp: str | None) -> str:
        """The settings that differ between a record's fingerprint and the current one."""
        known = self.known_settings()
        if kind not in self.settings or old_fp not in known:
            return "the settings it was made with are not recorded (an older reedit wrote it)"
        changes = changed_settings(known[old_fp], self.settings[kind], known)
        return "changed: " + "; ".join(changes) if changes else "no setting differs by name"

    def expected(self, kind: str, substituted: str | None = None) -> str:
        """The fingerprint a new record of this unit kind carries."""
        return unit_fp(self.current[kind], substituted)

    def accepts(self, kind: str, substituted: str | None, fp: str | None) -> bool:
        """Whether a record's fingerprint is that of the current settings (or of the same
        settings written by an older version)."""
        if fp == unit_fp(self.current[kind], substituted):
            return True
        return kind in self.legacy and fp == unit_fp(self.legacy[kind], substituted)

    def open_store(self, stage: str, rank: int | None = None, primary: bool = True) -> RecordStore:
        """The stage's records; ``fresh``: the old ones archived first (by the ``primary``
        process only: the other ranks find them gone)."""
        if primary:
            self.remember()
        store = RecordStore(self.root, stage, rank)
        if stage in self.fresh and stage not in self.archived and not primary:
            self.archived.add(stage)
        elif stage in self.fresh and stage not in self.archived and store.files():
            self.archived.add(stage)
            moved = store.archive()
            log.info("%s: starting afresh; archived %s", stage, ", ".join(map(str, moved)))
        return store

    def pending(self, stage: str, existing: dict[str, Record], units: Sequence[Any]) -> list[Any]:
        """The units still to do: no record, a record of other settings, or (``retry_errors``)
        an error record. A record of other settings is refused unless the stage is redone
        (``fresh``) or its input was a compat substitute (redone once the real input exists)."""
        current = {u.key for u in units if u.key in existing and self._is_current(u, existing)}
        stale = [
            u.key
            for u in units
            if u.key in existing and u.key not in current and not existing[u.key].substituted
        ]
        if stale and stage not in self.redo_stale:
            unit = next(u for u in units if u.key == stale[0])
            changed = self.what_changed(unit.kind, existing[stale[0]].fingerprint)
            raise ConfigMismatch(
                f"{stage}: {len(stale)} record(s) in {self.root} were made with a different "
                f"configuration (e.g. '{stale[0]}'; {changed}); refusing to mix them with new "
                "ones. Add "
                f"fresh=[{stage}] to start the stage afresh (old records are archived), or "
                "choose another run_dir."
            )
        return [
            u
            for u in units
            if u.key not in current or (self.retry_errors and existing[u.key].status == ERROR)
        ]

    def _is_current(self, unit: Any, existing: dict[str, Record]) -> bool:
        return self.accepts(unit.kind, unit.substituted, existing[unit.key].fingerprint)

    def check_error_rate(self, stage: str, records: dict[str, Record], keys: Iterable[str]) -> None:
        keys = list(keys)
        errors = [k for k in keys if k in records and records[k].status == ERROR]
        if keys and len(errors) / len(keys) > self.max_error_rate:
            first = records[errors[0]]
            raise StageFailed(
                f"{stage}: {len(errors)} of {len(keys)} units failed "
                f"({100 * len(errors) / len(keys):.1f} % > max_error_rate "
                f"{100 * self.max_error_rate:.1f} %); first: {errors[0]}: "
                f"{first.error_type}: {first.error}. Records are kept in "
                f"{self.root / 'records'}; rerun with run_dir={self.root} "
                "retry_errors=true after fixing the cause."
            )
