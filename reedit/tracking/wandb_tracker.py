"""``logger=wandb``: one W&B run per job, from the launching process, offline unless told.

Everything W&B writes stays in the run folder (``<run>/wandb/``: the run, its staged table
media, its cache), so that ``wandb sync <run>/wandb/offline-run-*`` uploads it later. A resumed
run continues the same W&B run (its id is kept in ``<run>/wandb/reedit-run-id``). It logs the
resolved config (secrets redacted), each stage execution (units done, errors, seconds per unit),
the final metrics as the summary under flat keys (``physical/refined/yes_rate``,
``overall/primary/if``, ...), the plots, and a samples table (thumbnails of the source, primary
and refined images, the texts, verdicts, scores, statuses and errors) that the W&B UI filters
by category and verdict.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reedit.records import StageRun
from reedit.report.thumbs import thumbnail
from reedit.report.views import Report
from reedit.tracking import RunInfo, Tracker

RUN_ID = "reedit-run-id"  # in <run>/wandb/: the W&B run a resume continues
SCORES = {"if": "if", "sc": "sc", "pq": "pq"}


def flat_metrics(m: dict[str, Any]) -> dict[str, Any]:
    """``metrics.json`` as flat, readable summary keys: ``<category|overall>/<label>/yes_rate``
    (with ``_ci_low``/``_ci_high``, ``judged``, ``unscored``), ``<...>/<label>/if|sc|pq``,
    ``<...>/transitions/<label>/<improved|...>_rate`` and ``p_value``, ``stages/<stage>/<count>``.
    """
    out: dict[str, Any] = {"n_samples": m["run"]["n_samples"]}
    scores = m["scores"]
    blocks = {**scores.get("categories", {}), "overall": scores.get("overall", {})}
    for where, block in blocks.items():
        for label, v in (block.get("verdict") or {}).items():
            key = f"{where}/{label}"
            out[f"{key}/yes_rate"] = v["yes_rate"]
            out[f"{key}/judged"] = v["judged"]
            out[f"{key}/unscored"] = v["unscored"]
            if v.get("ci95"):
                out[f"{key}/yes_rate_ci_low"], out[f"{key}/yes_rate_ci_high"] = v["ci95"]
        for metric, name in SCORES.items():
            for label, b in ((block.get(metric) or {}).get("by_label") or {}).items():
                out[f"{where}/{label}/{name}"] = b["mean"]
        for label, t in (block.get("transitions") or {}).items():
            for kind in ("improved", "maintained", "regressed", "unchanged"):
                out[f"{where}/transitions/{label}/{kind}_rate"] = t[kind]["rate"]
            out[f"{where}/transitions/{label}/p_value"] = t["p_value"]
    for stage, c in m["stages"].items():
        for k in ("ok", "error", "unscored", "total"):
            out[f"stages/{stage}/{k}"] = c[k]
    for k in ("best_category", "worst_category"):
        if scores.get(k):
            out[k] = scores[k]
    return out


def samples_table_rows(report: Report, size: int) -> tuple[list[str], list[list[Any]]]:
    """The samples table's columns and rows (images as thumbnail files, for ``wandb.Image``)."""
    m = report.metrics
    labels, metrics = m["run"]["labels"], m["run"]["judge_metrics"]
    images = ["source", *labels]
    columns = ["sample_id", "category", "instruction", *images, "critique", "re_edit"]
    for label in labels:
        columns += [f"{label}_{k}" for k in ("verdict", *SCORES) if k in metrics or k == "verdict"]
    columns += ["outcome", "edit_status", "refine_status", "errors"]
    rows = []
    for v in report.views:
        thumbs = [thumbnail(report.root, v.image(label), size) for label in images]
        row: list[Any] = [v.id, v.category, v.instruction, *[t[0] if t else None for t in thumbs]]
        row += [" ".join(c for r in v.rounds for c in r.cot)]
        row += ["; ".join(e for r in v.rounds for e in r.re_edit)]
        for label in labels:
            per = v.judged[label]
            row.append(v.verdict(label) or (per["dimension"].status if "dimension" in per else ""))
            row += [per[k].score for k in SCORES if k in metrics]
        refine = v.rounds[-1].refine_status if v.rounds else ""
        row += [v.outcome, v.edit_status, refine, "\n".join(v.errors)]
        rows.append(row)
    return columns, rows


class WandbTracker(Tracker):
    """``logger=wandb``: a W&B run per job (offline by default: no account, no network)."""

    @dataclass
    class Settings(Tracker.Settings):
        project: str = "reedit"
        entity: str | None = None
        group: str | None = None  # null: the sweep's folder for a sweep job
        job_type: str = "eval"
        tags: list[str] = field(default_factory=list)  # the model, dataset and judge are added
        name: str | None = None  # null: the run folder's name
        mode: str = "offline"  # offline | online | disabled (the YAML reads WANDB_MODE first)
        thumb_size: int = 256  # px, the samples table's thumbnails
        log_samples: bool = True

    run: Any = None  # the W&B run; None while disabled (mode=disabled: nothing is written)

    def _start(self, info: RunInfo) -> None:
        s = self.settings
        if s.mode == "disabled":
            return
        import wandb

        root = Path(info.folder)
        home = root / "wandb"
        home.mkdir(parents=True, exist_ok=True)
        self._env = {
            k: os.environ.get(k) for k in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR")
        }
        # W&B stages a table's media in WANDB_DATA_DIR, not in the run: keep all of it here
        os.environ.update(
            WANDB_DIR=str(root),
            WANDB_DATA_DIR=str(home / "data"),
            WANDB_CACHE_DIR=str(home / "cache"),
        )
        id_file = home / RUN_ID
        run_id = id_file.read_text().strip() if id_file.is_file() else secrets.token_hex(4)
        c = info.choices
        tags = [*s.tags, *(f"{g}:{c[g]}" for g in ("model", "dataset", "judge") if c.get(g))]
        try:
            self.run = wandb.init(
                project=s.project,
                entity=s.entity,
                group=s.group or (_sweep_id(info.sweep) if info.sweep else None),
                job_type=s.job_type,
                tags=tags,
                name=s.name or info.name,
                dir=str(root),
                id=run_id,
                resume="allow",
                config={**info.config, "choices": info.choices},  # runs group by choices.model
                mode=s.mode,
                reinit="finish_previous",
                settings=wandb.Settings(console="off", silent=True, x_disable_stats=True),
            )
            id_file.write_text(run_id)  # what a resume continues
        except BaseException:
            if self.run is not None:
                self.run.finish(exit_code=1)
            self._restore()
            raise

    def _log_stage(self, run: StageRun) -> None:
        if self.run is None:
            return
        label = run.stage if run.round is None else f"{run.stage}_r{run.round}"
        self.run.log(
            {
                f"stage/{label}/done": run.done,
                f"stage/{label}/errors": run.errors,
                f"stage/{label}/seconds_per_unit": run.busy_seconds / run.done
                if run.done
                else None,
                f"stage/{label}/load_seconds": run.load_seconds,
                f"stage/{label}/wall_seconds": run.wall_seconds,
            }
        )

    def _log_report(self, report: Report) -> None:
        if self.run is None:
            return
        import wandb

        self.run.summary.update(flat_metrics(report.metrics))
        plots = {f"plots/{p.stem}": wandb.Image(str(p)) for p in report.files if p.suffix == ".png"}
        if plots:
            self.run.log(plots)
        if self.settings.log_samples:
            columns, rows = samples_table_rows(report, self.settings.thumb_size)
            images = {"source", *report.metrics["run"]["labels"]}
            table = wandb.Table(columns=columns)
            for row in rows:
                table.add_data(
                    *[
                        (wandb.Image(str(v)) if v is not None else None) if col in images else v
                        for col, v in zip(columns, row)
                    ]
                )
            self.run.log({"samples": table})

    def _finish(self, exit_code: int) -> None:
        if self.run is None:
            return
        try:
            self.run.finish(exit_code=exit_code)
        finally:
            self._restore()

    def _restore(self) -> None:
        """The W&B folders of the process as they were (a sweep's next job is another run)."""
        for k, v in self._env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _sweep_id(sweep: str) -> str:
    """A sweep's W&B group: its folder's last two parts (``multirun/<date>/<time>``)."""
    parts = Path(sweep).parts
    return "_".join(parts[-2:])
