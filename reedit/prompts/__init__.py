"""Prompt templates, one folder per version (the version is recorded with every output).

Change a prompt by adding a new version folder, never by editing a released one: records and
caches made with the old wording stay comparable.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_DIR = Path(__file__).parent


@cache
def load_prompt(version: str, name: str) -> str:
    path = _DIR / version / f"{name}.txt"
    if not path.is_file():
        versions = sorted(p.name for p in _DIR.iterdir() if p.is_dir() and p.name[0] != "_")
        raise FileNotFoundError(
            f"prompt_version '{version}' has no template '{name}' (versions: {', '.join(versions)})"
        )
    return path.read_text(encoding="utf-8").strip()


def templates(version: str) -> list[str]:
    """Every template text of ``version``, in file-name order."""
    return [p.read_text(encoding="utf-8") for p in sorted((_DIR / version).glob("*.txt"))]
