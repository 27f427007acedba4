"""What the tiny-model builders of this folder share. Each builder is a script run in its model's
own environment (``tests/external.py: tiny_model``) as ``python <builder>.py OUT [ARGS]``: it builds
the model from the repository's own classes with small random weights, seeded, and saves it with
the model's own ``save_pretrained`` layout into OUT. Standard library only at import."""

from __future__ import annotations

import sys
from pathlib import Path


def out_dir() -> Path:
    """The folder the builder writes (its first argument), created."""
    if len(sys.argv) < 2:
        raise SystemExit(f"usage: python {sys.argv[0]} OUT [ARGS]")
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    return out


def seeded(seed: int = 0) -> None:
    """Seed torch's global RNG before building a component (byte-identical rebuilds)."""
    import torch

    torch.manual_seed(seed)
