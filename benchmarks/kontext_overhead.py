"""reedit's wall time against a bare loop over the same tiny FLUX.1-Kontext pipeline.

Both sides load the tiny pipeline (built locally, random weights) from the same folder and edit
the same demo samples with the model's YAML settings at its default resolution (1024x1024 output);
the bare loop only calls the pipeline, reedit also seeds, records, writes every PNG and the report.
Process start and imports are excluded (both run in this process after a warm-up).
Target: ratio <= 1.05.

    python benchmarks/kontext_overhead.py [--steps 2] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path


def main() -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import diffusers
    import torch
    from hydra import compose, initialize_config_dir

    from reedit.cli import config_dir
    from reedit.data.re_edit import ReEditDataset
    from reedit.run import run
    from reedit.tiny import ensure

    folder = ensure("flux_kontext")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        overrides = [
            "dataset=demo",
            "model=tiny_flux_kontext",
            "stages=[edit,report]",
            f"model.num_inference_steps={args.steps}",
            "progress=false",
            f"dataset.cache_dir={tmp / 'cache'}",
        ]
        with initialize_config_dir(str(config_dir()), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        samples = ReEditDataset(path=cfg.dataset.path, cache_dir=str(tmp / "cache")).load().samples
        m = cfg.model

        def bare() -> float:
            t0 = time.perf_counter()
            pipe = diffusers.FluxKontextPipeline.from_pretrained(folder, dtype=torch.float32)
            pipe.set_progress_bar_config(disable=True)
            for s in samples:
                with torch.inference_mode():
                    pipe(
                        image=s.image,
                        prompt=s.instruction,
                        guidance_scale=m.guidance_scale,
                        num_inference_steps=m.num_inference_steps,
                        max_area=m.max_area,
                        generator=torch.Generator().manual_seed(0),
                    ).images[0]
            return time.perf_counter() - t0

        def framework(i: int) -> float:
            t0 = time.perf_counter()
            run(cfg, run_dir=tmp / f"run{i}")
            return time.perf_counter() - t0

        framework(-1), bare()  # warm-up: imports, caches, first-call costs
        bares, runs = [], []
        for i in range(args.repeat):  # interleaved, so drift hits both sides alike
            runs.append(framework(i))
            bares.append(bare())
        size = next((tmp / "run0" / "images").rglob("primary.png"))
        from PIL import Image

        out_size = Image.open(size).size
    result = {
        "samples": len(samples),
        "steps": args.steps,
        "output_size": list(out_size),
        "reedit_seconds": [round(x, 3) for x in runs],
        "bare_seconds": [round(x, 3) for x in bares],
        "ratio_of_medians": round(sorted(runs)[len(runs) // 2] / sorted(bares)[len(bares) // 2], 3),
        "target": 1.05,
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
