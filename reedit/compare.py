"""``python -m reedit.compare <sweep dir | run dirs...> [--out DIR] [--wandb]``: the runs side by
side — ``comparison.{md,csv,html,json,tex}`` and plots, from each run's ``metrics.json`` and
records (:mod:`reedit.report.compare`); with ``--wandb`` (online) also a W&B Report of the runs.
A sweep ends with one by itself (the ``compare`` callback in ``conf/config.yaml``)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from reedit.config import ReeditError

log = logging.getLogger("reedit.compare")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m reedit.compare",
        description="Compare reedit runs: a sweep's folder, or run folders.",
    )
    p.add_argument(
        "paths", nargs="+", help="a sweep folder (multirun/<date>/<time>) or run folders"
    )
    p.add_argument(
        "--out",
        help="where to write (default: the sweep folder, for one sweep; else "
        "comparisons/<date>/<time>)",
    )
    p.add_argument(
        "--allow-mixed-judges",
        action="store_true",
        help="compare runs scored by different judges or judge settings (marked as such)",
    )
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (paired tests)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--browse-limit", type=int, default=300, help="most samples in the disagreement browser"
    )
    p.add_argument("--wandb", action="store_true", help="also build a W&B Report (online only)")
    p.add_argument("--project", default="reedit", help="the W&B project of the runs (--wandb)")
    p.add_argument("--entity", default=None, help="the W&B entity of the runs (--wandb)")
    return p


def default_out(paths: list[str]) -> Path:
    if len(paths) == 1 and (Path(paths[0]) / "jobs.jsonl").is_file():
        return Path(paths[0])
    return Path("comparisons") / time.strftime("%Y-%m-%d") / time.strftime("%H-%M-%S")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(name)s][%(levelname)s] %(message)s")
    from reedit.report.compare import make

    out = Path(args.out) if args.out else default_out(args.paths)
    try:
        c, files = make(
            args.paths,
            out,
            allow_mixed_judges=args.allow_mixed_judges,
            n_boot=args.bootstrap,
            seed=args.seed,
            browse_limit=args.browse_limit,
        )
    except ReeditError as exc:
        log.error("%s", exc)
        return 2
    sys.stdout.write(f"{out / 'comparison.html'}\n")  # the result, for scripts
    if args.wandb:
        from reedit.tracking.wandb_report import publish

        try:
            url = publish(c, project=args.project, entity=args.entity)
        except ReeditError as exc:
            log.error("W&B Report: %s (the local comparison is complete: %s)", exc, out)
            return 2
        sys.stdout.write(f"{url}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
