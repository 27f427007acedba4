"""Thin Hydra entry point: compose the config and call :func:`reedit.run.run`.

Importing this module loads Hydra and OmegaConf only (``python -m reedit --help`` stays fast).
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from reedit import app, schema

_PKG = Path(__file__).resolve().parent


def config_dir() -> Path:
    """The config folder: packaged inside a wheel (reedit/conf) or beside the source tree."""
    packaged = _PKG / "conf"
    return packaged if (packaged / "config.yaml").is_file() else _PKG.parent / "conf"


def _run_dir(run_dir: str | None, default: str) -> str:
    return str(run_dir) if run_dir else default


def _output_subdir(run_dir: str | None) -> str:
    """A resumed run keeps its first `.hydra/`; later invocations save theirs beside it."""
    if run_dir and (Path(run_dir) / ".hydra" / "config.yaml").is_file():
        return ".hydra/resume-" + _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    return ".hydra"


def _package_file(relative: str) -> str:
    return str(_PKG / relative)


def _options(group: str) -> str:
    """The options of a config group (its YAML stems), for help texts."""
    return ", ".join(sorted(p.stem for p in (config_dir() / group).glob("*.yaml")))


def register_resolvers() -> None:
    for name, fn in (
        ("reedit_options", _options),
        ("reedit_run_dir", _run_dir),
        ("reedit_output_subdir", _output_subdir),
        ("reedit_package_file", _package_file),
    ):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn, use_cache=True)


register_resolvers()
schema.register()


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def _app(cfg: DictConfig) -> dict:
    from reedit.run import run

    return app.run_task(cfg, lambda folder: run(cfg, folder))


def main() -> None:
    app.launch(_app, config_dir(), "config")


if __name__ == "__main__":
    main()
