"""The W&B Report of a comparison (``python -m reedit.compare --wandb``), built with
``wandb-workspaces``: the compared runs as one run set grouped by model, a bar plot per
dimension (primary and refined yes-rates) and per score, a run comparer, and the runs' samples
tables. Building it needs neither a login nor the network; saving it (``publish``) needs both,
so the local comparison stays the primary output."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from reedit.config import ReeditError
from reedit.tracking.wandb_tracker import RUN_ID

SCORES = {"if": "IF", "sc": "SC", "pq": "PQ"}


def wandb_ids(c: dict[str, Any]) -> dict[str, str]:
    """Each compared run's W&B run id (from ``<run>/wandb/reedit-run-id``), by run name."""
    out = {}
    for r in c["runs"]:
        path = Path(r["run_dir"]) / "wandb" / RUN_ID
        if path.is_file():
            out[r["name"]] = path.read_text().strip()
    return out


def build_report(c: dict[str, Any], project: str, entity: str, title: str | None = None) -> Any:
    """The ``wandb_workspaces`` Report of the comparison ``c`` (not saved)."""
    import wandb_workspaces.reports.v2 as wr
    from wandb_workspaces import expr

    ids = wandb_ids(c)
    if not ids:
        raise ReeditError(
            "none of the compared runs logged to W&B (no <run>/wandb/reedit-run-id): run them "
            "with logger=wandb"
        )
    runset = wr.Runset(
        entity=entity,
        project=project,
        name="reedit runs",
        filters=expr.And(expr.Metric("ID").isin(sorted(ids.values()))),
        groupby=["config.choices.model"],
    )
    labels = c["labels"]
    panels: list[Any] = []
    for where in [*c["categories"], "overall"] if "dimension" in c["metrics"] else []:
        panels.append(
            wr.BarPlot(
                title=f"{where}: yes-rate (%)",
                metrics=[f"{where}/{label}/yes_rate" for label in labels],
                groupby="config.choices.model",
            )
        )
    for k, name in SCORES.items():
        if k in c["metrics"]:
            panels.append(
                wr.BarPlot(
                    title=f"{name} (0-10)",
                    metrics=[f"overall/{label}/{k}" for label in labels],
                    groupby="config.choices.model",
                )
            )
    panels += [wr.RunComparer(diff_only="split"), wr.WeavePanelSummaryTable(table_name="samples")]
    missing = [r["name"] for r in c["runs"] if r["status"] != "ok"]
    intro = (
        f"{len(ids)} runs judged by {(c.get('judge') or {}).get('name', '?')}, compared by "
        "reedit (python -m reedit.compare); the local comparison.html has the paired tests."
    )
    blocks: list[Any] = [wr.H1(title or "reedit comparison"), wr.P(intro)]
    if missing:
        blocks.append(wr.P(f"Missing (failed or without a report): {', '.join(missing)}."))
    blocks.append(wr.PanelGrid(runsets=[runset], panels=panels))
    return wr.Report(
        project=project,
        entity=entity,
        title=title or "reedit comparison",
        description=intro,
        blocks=blocks,
    )


def publish(c: dict[str, Any], project: str, entity: str | None = None) -> str:
    """Build and save the Report (online, logged in); its URL."""
    if os.environ.get("WANDB_MODE", "online") in ("offline", "disabled"):
        raise ReeditError(
            f"WANDB_MODE={os.environ['WANDB_MODE']}: a W&B Report is saved online only (sync "
            "the runs first: wandb sync <run>/wandb/offline-run-*)"
        )
    import wandb

    try:
        entity = entity or wandb.Api().default_entity
        report = build_report(c, project, entity)
        report.save()
    except ReeditError:
        raise
    except Exception as exc:  # no login, no network
        raise ReeditError(f"could not save the W&B Report ({type(exc).__name__}: {exc})") from exc
    return str(report.url)
