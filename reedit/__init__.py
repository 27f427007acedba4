"""reedit: evaluate instruction-based image editors on reasoning-aware editing benchmarks.

Importing the package is light: torch, diffusers and transformers are imported inside the
adapters' ``load()`` only.
"""

__version__ = "0.1.0"
