"""What every stage shares: the run context, resume planning, models held across rounds."""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig

from reedit.config import ReeditError, instantiate, to_plain
from reedit.data.base import BadRecord, Sample
from reedit.records import ERROR, OK, RecordStore, fingerprint
from reedit.schema import STAGES

log = logging.getLogger(__name__)
T = TypeVar("T")

# Keys that change how a model runs, not what it produces: left out of fingerprints.
RUNTIME_KEYS = frozenset(
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


class ModelLoadError(ReeditError):
    """A model could not be loaded (the message names the config group and the cause)."""


def output_config(node: Any) -> Any:
    """The part of a model config that determines its outputs (runtime keys dropped)."""
    plain = to_plain(node)
    if isinstance(plain, dict):
        return {k: output_config(v) for k, v in plain.items() if k not in RUNTIME_KEYS}
    if isinstance(plain, list):
        return [output_config(v) for v in plain]
    return plain


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), max(1, size)):
        yield list(items[start : start + size])


def round_label(r: int) -> str:
    """Image label of refinement round r: refined, refined_r2, ..."""
    return "refined" if r == 1 else f"refined_r{r}"


@dataclass
class RunContext:
    cfg: DictConfig
    run_dir: Path
    samples: list[Sample]
    bad_records: list[BadRecord] = field(default_factory=list)
    dataset_source: str = ""
    choices: dict[str, str] = field(default_factory=dict)  # Hydra group choices (names)
    models: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fresh = list(self.cfg.fresh)
        for name in fresh:
            if name not in STAGES:
                raise ReeditError(f"fresh: unknown stage '{name}'; stages are {list(STAGES)}")
        first = min((STAGES.index(s) for s in fresh), default=len(STAGES))
        # A stage started afresh makes every later stage's stale records redoable.
        self.redo_stale = set(STAGES[first:])
        self.fresh = set(fresh)
        self.archived: set[str] = set()
        self.by_id = {s.id: s for s in self.samples}
        self.rounds = int(self.cfg.refine.rounds)
        self.fp = stage_fingerprints(self.cfg, self.rounds)

    # -- seeds and paths ---------------------------------------------------------------------
    def seed(self, sample: Sample, purpose: str = "edit") -> int:
        """Per-sample seed: from the sample id (default) or the reference's seed + index."""
        if self.cfg.seed_mode == "index":
            return int(self.cfg.seed) + sample.index
        digest = hashlib.sha256(f"{self.cfg.seed}|{sample.id}|{purpose}".encode()).hexdigest()
        return int(digest[:8], 16) & 0x7FFFFFFF

    def image_path(self, sample: Sample, label: str) -> Path:
        return self.run_dir / "images" / sample.category / sample.id / f"{label}.png"

    def rel(self, path: Path) -> str:
        return str(Path(path).relative_to(self.run_dir))

    # -- planning ----------------------------------------------------------------------------
    def open_store(self, stage: str) -> RecordStore:
        store = RecordStore(self.run_dir, stage)
        if stage in self.fresh and stage not in self.archived and store.files():
            self.archived.add(stage)
            moved = store.archive()
            log.info("%s: starting afresh; archived %s", stage, ", ".join(map(str, moved)))
        return store

    def plan(self, stage: str, existing: dict[str, dict], expected: dict[str, str]) -> list[str]:
        """Keys still to do. ``expected`` maps each key to the fingerprint its record must carry."""
        # A record made from a compat substitute is redone once the real input exists.
        stale = [
            k
            for k, fp in expected.items()
            if k in existing
            and existing[k].get("fingerprint") != fp
            and not existing[k].get("substituted")
        ]
        if stale and stage not in self.redo_stale:
            raise ConfigMismatch(
                f"{stage}: {len(stale)} record(s) in {self.run_dir} were made with a different "
                f"configuration (e.g. '{stale[0]}'); refusing to mix them with new ones. Add "
                f"fresh=[{stage}] to start the stage afresh (old records are archived), or "
                "choose another run_dir."
            )
        retry = bool(self.cfg.retry_errors)
        return [
            k
            for k, fp in expected.items()
            if k not in existing
            or existing[k].get("fingerprint") != fp
            or (retry and existing[k]["status"] == ERROR)
        ]

    def check_error_rate(self, stage: str, records: dict[str, dict], keys: Iterable[str]) -> None:
        keys = list(keys)
        errors = [k for k in keys if records.get(k, {}).get("status") == ERROR]
        if keys and len(errors) / len(keys) > float(self.cfg.max_error_rate):
            first = records[errors[0]]
            raise StageFailed(
                f"{stage}: {len(errors)} of {len(keys)} units failed "
                f"({100 * len(errors) / len(keys):.1f} % > max_error_rate "
                f"{100 * float(self.cfg.max_error_rate):.1f} %); first: {errors[0]}: "
                f"{first.get('error_type')}: {first.get('error')}. Records are kept in "
                f"{self.run_dir / 'records'}; rerun with run_dir={self.run_dir} "
                "retry_errors=true after fixing the cause."
            )

    # -- models held across rounds -----------------------------------------------------------
    def model(self, group: str) -> Any:
        """The loaded model of a config group (model, executor, refiner, judge), built once."""
        if group not in self.models:
            self.models[group] = load_model(self.cfg, group)
        return self.models[group]

    def release(self, group: str) -> None:
        obj = self.models.pop(group, None)
        if obj is not None:
            obj.close()

    def release_all(self) -> None:
        for group in list(self.models):
            self.release(group)

    def progress(self, stage: str, total: int):
        from tqdm import tqdm

        return tqdm(
            total=total,
            desc=stage,
            unit="unit",
            disable=not self.cfg.progress,
            file=sys.stderr,
            dynamic_ncols=True,
        )

    # -- what exists -------------------------------------------------------------------------
    def ok_records(self, stage: str) -> dict[str, dict]:
        return {
            k: r for k, r in RecordStore(self.run_dir, stage).load().items() if r["status"] == OK
        }


def load_model(cfg: DictConfig, group: str) -> Any:
    """Build a config group's model (model, executor, refiner, judge) for the run's ``gpus`` and
    load it; a failure to load is a :class:`ModelLoadError` naming the group and the cause."""
    gpus = list(cfg.gpus)
    extra = {"gpus": gpus} if group in ("model", "executor") else {}
    obj = instantiate(cfg[group], what=group, **extra)
    if hasattr(getattr(obj, "vlm", None), "gpus"):  # refiner/judge backends that use GPUs
        obj.vlm.gpus = gpus
    try:
        obj.load()
    except Exception as exc:
        raise ModelLoadError(
            f"{group}: loading {cfg[group]._target_} failed: {type(exc).__name__}: {exc}"
        ) from exc
    return obj


def unit_fp(base: str, substituted: str | None) -> str:
    """A unit's fingerprint: its stage's, marked when its input is a compat substitute."""
    return fingerprint([base, "substituted", substituted]) if substituted else base


def stage_fingerprints(cfg: DictConfig, rounds: int) -> dict[str, str]:
    """Fingerprint of every unit kind: edit, analyze/r, refine/r, and the image labels."""
    fp = {
        "edit": fingerprint(
            {"model": output_config(cfg.model), "seed": cfg.seed, "seed_mode": cfg.seed_mode}
        )
    }
    fp["primary"] = fp["edit"]
    previous = fp["edit"]
    for r in range(1, rounds + 1):
        fp[f"analyze/r{r}"] = fingerprint(
            {"refiner": output_config(cfg.refiner), "input": previous}
        )
        fp[f"refine/r{r}"] = fingerprint(
            {
                "executor": output_config(cfg.executor),
                "mode": cfg.refine.mode,
                "seed": cfg.seed,
                "seed_mode": cfg.seed_mode,
                "analyze": fp[f"analyze/r{r}"],
            }
        )
        fp[round_label(r)] = previous = fp[f"refine/r{r}"]
    judge = {k: v for k, v in (output_config(cfg.judge) or {}).items() if k != "metrics"}
    for label in ["primary"] + [round_label(r) for r in range(1, rounds + 1)]:
        fp[f"judge/{label}"] = fingerprint({"judge": judge, "image": fp[label]})
    return fp


def produced(ctx: RunContext) -> dict[str, dict[str, dict]]:
    """Ok records whose fingerprint matches the current config, by stage."""
    out = {}
    for stage in ("edit", "analyze", "refine"):
        recs = ctx.ok_records(stage)
        out[stage] = {
            k: r
            for k, r in recs.items()
            if r.get("fingerprint") == unit_fp(ctx.fp[_fp_key(stage, k)], r.get("substituted"))
        }
    return out


def _fp_key(stage: str, key: str) -> str:
    return "edit" if stage == "edit" else f"{stage}/{key.rsplit('/', 1)[1]}"


def image_for(
    ctx: RunContext, done: dict[str, dict[str, dict]], sample: Sample, label: str
) -> tuple[Path, str | None] | None:
    """The image under ``label`` (primary, refined, refined_r2...) and what it substitutes.

    Without ``compat.upstream_failures`` a missing image is None. With it, the reference's
    substitutions apply: a failed primary edit is the source image, a failed refinement is the
    image it was meant to refine.
    """
    compat = bool(ctx.cfg.compat.upstream_failures)
    if label == "primary":
        if sample.id in done["edit"]:
            return ctx.image_path(sample, "primary"), None
        return (sample.source_path, "source") if compat else None
    r = 1 if label == "refined" else int(label.rsplit("_r", 1)[1])
    if f"{sample.id}/r{r}" in done["refine"]:
        return ctx.image_path(sample, label), None
    if not compat:
        return None
    previous = "primary" if r == 1 else round_label(r - 1)
    found = image_for(ctx, done, sample, previous)
    return (found[0], found[1] or previous) if found else None
