"""The one stage loop. A stage is a declaration (its name, model group, payload type, how it builds
its units, calls its model on a chunk and turns a result into a record); :func:`drive` does the
rest for every stage: resume planning, "nothing to do -> no model loaded", the model from the
run's pool, the progress bar, chunking, the background image writer, appending records, the
stage log (``records/stages.jsonl``: each execution's model load and wall seconds) and the
error-rate check.

``shard`` says which records file this process appends to and how it takes pending units: alone
(all of them, ``records/<stage>.jsonl``), or as one of the run's ranks (``records/<stage>.rank<k>
.jsonl``), claiming chunks of the pending units one at a time from a counter the ranks share, so
that the ranks stay busy however uneven the units' costs. With ranks, every rank plans the stage
from the same records (a barrier before anyone writes), and after a barrier at the end each checks
that every pending unit got exactly one record, then the error rate, so all ranks agree.
"""

from __future__ import annotations

import abc
import itertools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from reedit.config import ReeditError
from reedit.data.base import Sample
from reedit.distributed import SOLO, Ranks
from reedit.layout import RunLayout
from reedit.records import (
    ERROR,
    PAYLOADS,
    UNSCORED,
    ArtefactWriter,
    Record,
    RecordStore,
    StageLog,
    StageRun,
    end_of_complete_lines,
)
from reedit.runtime.pool import ModelPool
from reedit.stages.inputs import Source, Upstream
from reedit.stages.resume import ResumePlan

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Unit:
    """One unit of work; stages add their own fields (frozen dataclasses)."""

    key: str
    sample: Sample

    @property
    def kind(self) -> str:
        """The fingerprint kind of this unit (edit, analyze/r1, judge/primary, ...)."""
        raise NotImplementedError

    @property
    def substituted(self) -> str | None:
        return


@dataclass(frozen=True, eq=False)
class ImageUnit(Unit):
    """A unit that works on an image an earlier stage made (or, under compat, its stand-in)."""

    input: Source | None = None

    @property
    def substituted(self) -> str | None:
        return self.input.substituted


@dataclass
class Output:
    """A unit's record, and the image to write first (at ``path``) when it made one."""

    record: Record
    image: Any = None
    path: Path | None = None


@dataclass
class Workspace:
    """What every stage of a run shares."""

    samples: list[Sample]
    layout: RunLayout
    plan: ResumePlan
    pool: ModelPool
    names: dict[str, str] = field(default_factory=dict)  # group -> option name
    compat: bool = False  # the reference's substitutions (compat.upstream_failures)
    progress: bool = True
    png_compress_level: int = 1


@dataclass(frozen=True)
class Shard:
    """Which of the pending units this process takes, and the records file it appends to."""

    rank: int | None = None  # None: the only process (records/<stage>.jsonl)
    ranks: Ranks = SOLO  # the run's ranks: barriers and the shared claim counter

    def take(self, pending: list[Unit]) -> list[Unit]:
        return pending

    @classmethod
    def of(cls, ranks: Ranks) -> Shard:
        """This rank's shard (one process alone: :data:`ALL`)."""
        return cls(ranks.rank, ranks) if ranks.world > 1 else ALL


ALL = Shard()


class IncompleteStage(ReeditError):
    """After every rank finished a stage, a pending unit had no record, or more than one."""


class Stage(abc.ABC):
    name: ClassVar[str]  # records/<name>.jsonl (its payload: reedit.records.PAYLOADS[name])
    group: ClassVar[str]  # the config group of its model
    noun: ClassVar[str] = "units"  # for the log: "<n> <noun> to <verb>"
    verb: ClassVar[str] = "do"
    round: int | None = None

    @property
    def label(self) -> str:
        return self.name if self.round is None else f"{self.name} r{self.round}"

    @abc.abstractmethod
    def units(self, upstream: Upstream) -> list[Unit]:
        """Every unit this stage has, from the samples and the earlier stages' records."""

    @abc.abstractmethod
    def call(self, model: Any, units: list[Unit]) -> list[Any]:
        """The model's results for a chunk of units, in order."""

    @abc.abstractmethod
    def output(self, unit: Unit, result: Any, model: Any, ws: Workspace) -> Output:
        """A unit's record (its fingerprint is set by the driver)."""

    def chunk_size(self, model: Any) -> int:
        return model.batch_size

    def order(self, units: list[Unit]) -> list[Unit]:
        return units

    def note(self, upstream: Upstream, units: list[Unit]) -> str:
        """More for the stage's log line (e.g. samples without an input)."""
        return ""


def record(unit: Unit, result: Any, payload: Any, model: str | None = None) -> Record:
    """A unit's record: the shared fields from the unit and from the model's result (an
    EditResult or a VLM Answer: status, seconds, errors, and the answering model)."""
    s = unit.sample
    return Record(
        unit.key,
        s.id,
        s.category,
        result.status,
        payload,
        seconds=round(result.seconds, 4),
        model=model or getattr(result, "model", None),
        error_type=result.error_type,
        error=result.error,
    )


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), max(1, size)):
        yield list(items[start : start + size])


def drive(
    stage: Stage,
    ws: Workspace,
    shard: Shard = ALL,
    on_stage: Callable[[StageRun], None] | None = None,
) -> None:
    """Run a stage's pending units (those of ``shard``) and record each; an execution with work
    to do appends its :class:`StageRun` (model load, busy and wall time, errors) to
    ``records/stages.jsonl`` and hands it to ``on_stage`` (also when it failed)."""
    started = time.perf_counter()
    ranks = shard.ranks
    ws.plan.epoch += 1  # the same count on every rank: names this execution's claim counter
    key = f"{ws.plan.epoch}/{stage.label}"
    upstream = Upstream(ws.samples, ws.layout, ws.plan, ws.compat)
    units = stage.units(upstream)
    if ranks.world > 1 and stage.name in ws.plan.fresh:
        if ranks.primary:  # archives the old records (once), before anyone plans the stage
            ws.plan.open_store(stage.name, shard.rank).close()
        ranks.barrier()
    store = ws.plan.open_store(stage.name, shard.rank, primary=ranks.primary)
    if ranks.primary:  # no rank appends to the stage's files before the barrier below
        store.cut_partial_tails()  # (a killed rank's torn line; its rank may claim nothing now)
    payload = PAYLOADS[stage.name]
    pending = ws.plan.pending(stage.name, store.records(payload), units)
    note = stage.note(upstream, units)
    if not pending:
        log.info("%s: nothing to do (%d %s done%s)", stage.label, len(units), stage.noun, note)
        return
    if ranks.primary:
        log.info(
            "%s: %d of %d %s to %s%s",
            stage.label,
            len(pending),
            len(units),
            stage.noun,
            stage.verb,
            note,
        )
    mine = stage.order(shard.take(pending))
    if not mine:  # other shards have them: no model is loaded here
        log.info("%s: no pending unit falls to this shard", stage.label)
        return
    marks = _ends(store) if ranks.world > 1 else {}
    ranks.barrier()  # every rank has planned from the same records: now they may write
    run = StageRun(
        stage.name,
        stage.round,
        stage.group,
        ws.names.get(stage.group),
        units=len(units),
        pending=len(mine) if ranks.world == 1 else 0,  # ranks: the units of their claims
        rank=shard.rank,
        pid=os.getpid() if shard.rank is not None else None,
        execution=f"{ranks.launch}/{ws.plan.epoch}" if ranks.world > 1 else None,
    )
    batches = list(chunks(mine, stage.chunk_size(ws.pool.built(stage.group))))
    writer = ArtefactWriter(store, compress_level=ws.png_compress_level)
    try:
        claims = ranks.claims(key, len(batches))
        first = next(claims, None)
        taken = [] if first is None else [first]
        model = _load(ws.pool, stage.group, run) if taken else None  # no claim: no load
        with _progress(stage.label, len(mine), ws.progress and ranks.primary) as bar:
            for index in itertools.chain(taken, claims):
                t0 = time.perf_counter()
                chunk = batches[index]
                run.pending += len(chunk) if ranks.world > 1 else 0
                for unit, result in zip(chunk, stage.call(model, chunk)):
                    out = stage.output(unit, result, model, ws)
                    out.record.fingerprint = ws.plan.expected(unit.kind, unit.substituted)
                    run.errors += out.record.status == ERROR
                    run.unscored += out.record.status == UNSCORED
                    if out.image is not None:  # the record follows its image
                        writer.submit(out.image, out.path, out.record)
                    else:
                        store.append(out.record)
                    run.done += 1
                run.busy_seconds += time.perf_counter() - t0
                done = ranks.add(f"{key}/done", len(chunk)) if ranks.world > 1 else run.done
                bar.update(done - bar.n)
    except BaseException as exc:
        run.completed, run.error = False, f"{type(exc).__name__}: {exc}"[:500]
        raise
    finally:
        try:
            writer.close()  # an image write's error surfaces here at the latest
        except BaseException as exc:
            if run.error is not None:  # the loop's own error is the one raised
                log.error(
                    "%s: a pending write failed too: %s: %s", stage.label, type(exc).__name__, exc
                )
            else:
                run.completed, run.error = False, f"{type(exc).__name__}: {exc}"[:500]
                raise
        finally:
            store.close()
            run.wall_seconds = round(time.perf_counter() - started, 6)
            run.busy_seconds = round(run.busy_seconds, 6)
            if run.pending or not run.completed or shard.rank is None:
                StageLog(ws.layout.root, shard.rank).append(run)
            if on_stage is not None:
                on_stage(run)
    if run.done:
        log.info(
            "%s: %d %s in %.2f s (model load %.2f s)",
            stage.label,
            run.done,
            stage.noun,
            run.wall_seconds,
            run.load_seconds,
        )
    else:
        log.info("%s: the other ranks took every unit (no model loaded here)", stage.label)
    if ranks.world > 1:
        ranks.barrier()  # every rank's records are written
        _check_complete(store, marks, pending, stage.label)
    ws.plan.check_error_rate(stage.name, store.records(payload), [u.key for u in units])


def _ends(store: RecordStore) -> dict[Path, int]:
    """Where each of the stage's record files' complete lines end now: this execution appends
    after that (a line left half written by a killed rank is cut before the first append)."""
    return {path: end_of_complete_lines(path) for path in store.files()}


def _check_complete(
    store: RecordStore, marks: dict[Path, int], pending: list[Unit], label: str
) -> None:
    """Every pending unit has exactly one record among what the ranks appended."""
    counts: dict[str, int] = {}
    for path in store.files():
        with open(path, "rb") as f:
            f.seek(marks.get(path, 0))
            data = f.read()
            # a line half written before the marks was cut by the primary while planning
            for line in data[: data.rfind(b"\n") + 1].splitlines():
                if line.strip():
                    k = json.loads(line)["key"]
                    counts[k] = counts.get(k, 0) + 1
    missing = [u.key for u in pending if counts.get(u.key, 0) == 0]
    twice = [u.key for u in pending if counts.get(u.key, 0) > 1]
    if missing or twice:
        raise IncompleteStage(
            f"{label}: after every rank finished, {len(missing)} pending unit(s) have no record "
            f"(e.g. {missing[:3]}) and {len(twice)} have more than one (e.g. {twice[:3]}) in "
            f"{store.dir}; rerun with run_dir=... to redo the missing ones"
        )


def _load(pool: ModelPool, group: str, run: StageRun) -> Any:
    """The group's model from the pool; the time of its load (when this stage is the one that
    loads it) goes to ``run.load_seconds``."""
    loaded = pool.is_loaded(group)
    t0 = time.perf_counter()
    model = pool.get(group)
    if not loaded:
        run.load_seconds = round(time.perf_counter() - t0, 6)
    return model


def _progress(label: str, total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=label,
        unit="unit",
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
    )
