"""Per-sample framework overhead of the edit stage (identity editor, 512x512 or 1024x1024 images).

overhead = (edit-stage wall time - bare loop time) / N, where the bare loop decodes each source
and calls the same identity editor's model call; the framework adds validation, seeding, the PNG
write of every output, its record and the progress bar. Target: <= 20 ms per sample.

    python benchmarks/pipeline_overhead.py [N] [SIDE]
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def make_folder(root: Path, n: int, side: int = 512) -> None:
    rng = np.random.default_rng(0)
    cats = ["physical", "environmental", "cultural", "causal", "referential"]
    lines = []
    y, x = np.mgrid[0:side, 0:side]
    for i in range(n):
        # photo-like content: gradients plus sensor-like noise (sigma 6), different per sample
        smooth = np.stack([(x / 2 + i) % 256, (y / 2) % 256, ((x + y) / 4 + 3 * i) % 256], -1)
        img = np.clip(smooth + rng.normal(0, 6, smooth.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"{i:05d}.png")
        lines.append(
            {
                "id": f"s{i:05d}",
                "image": f"{i:05d}.png",
                "instruction": "make it red",
                "category": cats[i % 5],
            }
        )
    (root / "samples.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")


def main(n: int = 200, side: int = 512) -> dict:
    from hydra import compose, initialize_config_dir

    from reedit.cli import config_dir
    from reedit.data.folder import FolderDataset
    from reedit.models.base import EditRequest
    from reedit.models.editors.identity import IdentityEditor
    from reedit.run import run

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        data.mkdir()
        make_folder(data, n, side)
        cache = tmp / "cache"
        overrides = [
            f"dataset.root={data}",
            f"dataset.cache_dir={cache}",
            "dataset=folder",
            "model=identity",
            "stages=[edit]",
            "progress=false",
        ]
        with initialize_config_dir(str(config_dir()), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        # warm the source cache and the imports with a throw-away run
        run(cfg, run_dir=tmp / "warm")
        samples = FolderDataset(root=str(data), cache_dir=str(cache)).load().samples

        t0 = time.perf_counter()
        run(cfg, run_dir=tmp / "run")
        framework = time.perf_counter() - t0
        # the stage alone, from its records
        recs = [json.loads(x) for x in (tmp / "run" / "records" / "edit.jsonl").open()]
        assert len(recs) == n and all(r["status"] == "ok" for r in recs)

        editor = IdentityEditor(batch_size=16)
        editor.load()
        t0 = time.perf_counter()
        for s in samples:
            editor._edit([EditRequest(s.id, s.id, s.category, s.image, s.instruction, 0)])
        bare = time.perf_counter() - t0
    result = {
        "n": n,
        "image_size": f"{side}x{side}",
        "run_seconds": round(framework, 3),
        "bare_loop_seconds": round(bare, 3),
        "overhead_ms_per_sample": round(1000 * (framework - bare) / n, 2),
        "target_ms": 20,
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
