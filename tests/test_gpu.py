"""GPU checks (opt-in: `pytest -m gpu`, run by benchmarks/gpu_check.sh on a GPU machine)."""

from __future__ import annotations

import pytest
from PIL import Image

from reedit.config import instantiate
from reedit.models.base import EditRequest
from reedit.testing import locate

pytestmark = pytest.mark.gpu

TINY = ["tiny_qwen_image_edit", "tiny_qwen_image_edit_2511", "tiny_flux_kontext", "tiny_flux2"]


def req(seed: int = 1) -> EditRequest:
    return EditRequest(
        "s", "s", "physical", Image.new("RGB", (96, 64), (200, 40, 40)), "make it blue", seed
    )


@pytest.mark.parametrize("model", TINY)
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_tiny_editors_on_cuda(compose, model, dtype):
    import torch

    assert torch.cuda.is_available(), "a GPU test ran without a GPU"
    cfg = compose(f"model={model}", f"model.dtype={dtype}", "model.height=64", "model.width=96")
    ed = instantiate(cfg.model, what="model", gpus=[0], locate=locate)
    ed.load()
    try:
        assert str(ed.device) == "cuda:0"
        a, b = ed.edit([req(), req()])
        assert a.ok and a.image.size == (96, 64)
        assert a.image.tobytes() == b.image.tobytes()
    finally:
        ed.close()


def test_flux2_with_cpu_offload(compose):
    cfg = compose("model=tiny_flux2", "model.use_cpu_offload=true", "model.dtype=bfloat16")
    ed = instantiate(cfg.model, what="model", gpus=[0], locate=locate)
    ed.load()
    try:
        (res,) = ed.edit([req()])
        assert res.ok, res.error
    finally:
        ed.close()
