"""TEST-ONLY: the tiny Janus sizes, registered into Janus's own size tables.

Janus builds its SigLIP tower from ``janus.models.siglip_vit.SigLIP_MODEL_CONFIG[model_name]`` and
its VQ tokenizer as ``janus.models.vq_model.VQ_models[cls]()`` (no arguments): both sizes come
from module-level dicts, not from the saved config. A tiny model names ``"siglip_tiny"`` and
``"VQ-tiny"``, so every interpreter that builds or loads one (the tiny builder, the worker) needs
those two entries. The test env imports this module at interpreter start
(``model_env("janus", ..., startup=["tiny_external.janus_sizes"])``, a ``.pth`` line); it imports
nothing of Janus itself (that would load torch and transformers into every interpreter of the
env) but adds the entries right after Janus's own modules run, through an import hook.
Real models never name these sizes; the real entries are left as they are. Standard library only.
"""

from __future__ import annotations

import importlib.abc
import sys
from typing import Any

SIGLIP = "siglip_tiny"
VQ = "VQ-tiny"
# 32 px images, patch 16: 2x2 = 4 understanding tokens (the tiny processor's num_image_tokens).
SIGLIP_SIZE = {
    "image_size": 32,
    "patch_size": 16,
    "width": 32,
    "layers": 2,
    "heads": 2,
    "mlp_ratio": 2,
    "global_pool": "map",
    "use_checkpoint": False,
}
# 5 levels (4 down-samplings: patch 16) of width multiplier 1; the encoder's base width (128) is
# fixed in vq_model.py. A 64 x 8 codebook (8 channels, as the real VQ-16).
VQ_SIZE = {
    "codebook_size": 64,
    "codebook_embed_dim": 8,
    "encoder_ch_mult": [1, 1, 1, 1, 1],
    "decoder_ch_mult": [1, 1, 1, 1, 1],
    "z_channels": 16,
}


def register_siglip(module: Any) -> None:
    module.SigLIP_MODEL_CONFIG.setdefault(SIGLIP, dict(SIGLIP_SIZE))


def register_vq(module: Any) -> None:
    def tiny_vq(**kwargs: Any) -> Any:
        return module.VQModel(module.ModelArgs(**{**VQ_SIZE, **kwargs}))

    module.VQ_models.setdefault(VQ, tiny_vq)


AFTER = {"janus.models.siglip_vit": register_siglip, "janus.models.vq_model": register_vq}


class _Then(importlib.abc.Loader):
    """The module's own loader, then the registration."""

    def __init__(self, loader: Any, then: Any) -> None:
        self.loader, self.then = loader, then

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        self.then(module)


class _AfterImport(importlib.abc.MetaPathFinder):
    janus_sizes = True  # the mark of this hook (the module may be imported under two names)

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        then = AFTER.get(name)
        if then is None:
            return None
        for finder in sys.meta_path:
            if getattr(finder, "janus_sizes", False) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _Then(spec.loader, then)
                return spec
        return None


def install() -> None:
    for name, then in AFTER.items():  # already imported (e.g. by hand): register now
        if name in sys.modules:
            then(sys.modules[name])
    if not any(getattr(f, "janus_sizes", False) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())


install()
