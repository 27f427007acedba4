"""One rank of a run: ``python -m reedit.rank <run>/ranks/job.pkl``, started by
:func:`reedit.distributed.launch` through ``accelerate launch`` (never by hand).

It joins the other ranks, sees only its replica's GPUs, checks the configuration the launching
process already checked (building its own models: each loads once in this rank), works through
the stages (:func:`reedit.run.work`) and writes what happened to ``ranks/rank<k>.json``; its log
goes to ``ranks/rank<k>.log`` and to stderr. Hydra, the report and the tracker stay in the
launching process.
"""

from __future__ import annotations

import logging
import pickle
import signal
import sys
from pathlib import Path
from typing import Any

from reedit import distributed
from reedit.files import disk_full, is_disk_full

log = logging.getLogger("reedit")


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # so that `finally` stops this rank's workers


def main(argv: list[str]) -> int:
    job: distributed.RankJob = pickle.loads(Path(argv[0]).read_bytes())
    folder = Path(job.folder)
    signal.signal(signal.SIGTERM, _stop)  # torchrun stops the other ranks when one fails
    ranks = distributed.join(job.world, job.launch)
    distributed.pin(job.replicas[ranks.local] if job.replicas else [])
    _logging(folder, ranks.rank)
    distributed.write_outcome(folder, ranks.rank, {"status": "started"})
    try:
        from omegaconf import OmegaConf

        from reedit import run

        cfg = OmegaConf.create(job.config)
        s = run.setup(cfg, dataset=False)
        run.work(s, folder, job.samples, job.choices, ranks)
    except SystemExit as exc:
        distributed.write_outcome(folder, ranks.rank, {"status": "stopped", "code": exc.code})
        raise
    except BaseException as exc:
        error = str(exc)
        if is_disk_full(exc):  # the run's plain message, no traceback
            error = disk_full(exc)
            log.error("rank %d stopped: %s", ranks.rank, error)
        else:
            log.exception("rank %d failed", ranks.rank)
        outcome = {"status": "error", "error_type": type(exc).__name__, "error": error}
        try:
            distributed.write_outcome(folder, ranks.rank, outcome)
        except OSError as lost:  # e.g. the disk is full: the launcher reads "ended"
            log.error("rank %d: its outcome could not be written: %s", ranks.rank, lost)
        return 1
    distributed.write_outcome(folder, ranks.rank, {"status": "ok"})
    return 0


def _logging(folder: Path, rank: int) -> None:
    fmt = logging.Formatter(f"[%(asctime)s][rank {rank}][%(name)s][%(levelname)s] %(message)s")
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in (
        logging.StreamHandler(sys.stderr),
        logging.FileHandler(folder / distributed.RANKS_DIR / f"rank{rank}.log"),
    ):
        handler.setFormatter(fmt)
        root.addHandler(handler)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
