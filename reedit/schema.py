"""The typed schema of the top-level config (``conf/config.yaml``), stored in Hydra's
ConfigStore as ``schema/config``: a misspelt top-level key or a wrong type fails at composition,
naming the key.

The groups' keys (model, executor, refiner, judge, dataset, logger) are declared once, beside
their classes (``<class>.Settings``, see :mod:`reedit.settings`), and checked at set-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

STAGES = ("edit", "analyze", "refine", "judge", "report")
CATEGORIES = ("physical", "environmental", "cultural", "causal", "referential")


# ----------------------------------------------------------------------------- top level
@dataclass
class RefineSettings:
    mode: str = "joined"  # joined | sequential
    rounds: int = 1


@dataclass
class CompatSettings:
    # Apply the reference implementation's failure substitutions (for score parity only).
    upstream_failures: bool = False


@dataclass
class ReportSettings:
    bootstrap: int = 1000
    plots: bool = True  # plots/*.png
    html: bool = True  # report.html
    thumb_size: int = 192  # px, report.html's thumbnails


@dataclass
class MachineSettings:
    """One run over several machines (each runs the same command on a shared run folder)."""

    count: Any = "auto"  # auto: the tasks of the srun / submitit job step (1 outside one)
    rank: Any = "auto"  # this machine's index; auto: its task's rank in that step
    main_ip: str | None = None  # how the others reach machine 0; null: its host name
    start: Any = "auto"  # one name for this start on every machine; auto: the job step's id
    wait_s: float = 600.0  # how long machines 1.. wait for machine 0's job file


@dataclass
class Config:
    model: Any = MISSING
    executor: Any = MISSING
    refiner: Any = MISSING
    judge: Any = MISSING
    dataset: Any = MISSING
    logger: Any = MISSING
    gpus: list[int] = field(default_factory=list)
    gpus_per_replica: Any = None  # null: 1 (one rank per GPU), or all of gpus for parallel=model
    cpu_ranks: int = 1  # with gpus=[]: how many CPU ranks share the work
    machines: MachineSettings = field(default_factory=MachineSettings)
    seed: int = 0
    seed_mode: str = "id"  # id | index
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    run_dir: Any = None
    limit: Any = None
    categories: list[str] = field(default_factory=lambda: list(CATEGORIES))
    max_error_rate: float = 0.1
    retry_errors: bool = False
    fresh: list[str] = field(default_factory=list)
    refine: RefineSettings = field(default_factory=RefineSettings)
    compat: CompatSettings = field(default_factory=CompatSettings)
    report: ReportSettings = field(default_factory=ReportSettings)
    progress: bool = True
    png_compress_level: int = 1
    sources: str = "link"  # link | copy: the sources used, in <run>/sources/
    # Shown at the start and end of the run and in the report (e.g. "random weights" in a demo).
    notice: str | None = None


@dataclass
class EditRefineConfig(Config):
    """``python -m reedit.editrefine``: one image through the run's stages (a one-sample run)."""

    image: str = MISSING  # the source image file
    instruction: str = MISSING  # the edit instruction
    id: str | None = None  # the sample id; null: the image's file stem (as dataset=folder)
    # The RE-Edit dimension the image belongs to: the judge's dimension prompt and the folder
    # layout use it; the edits do not depend on it.
    category: str = "physical"


def register() -> None:
    """Store the schemas in Hydra's ConfigStore (called once before composition)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(group="schema", name="config", node=Config)
    cs.store(group="schema", name="editrefine", node=EditRefineConfig)
