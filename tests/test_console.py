"""What a normal run prints: reedit's own log lines and one progress bar per stage, nothing from
the libraries under it (outside `make`, whose HF_HUB_DISABLE_PROGRESS_BARS hides some)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import ROOT, reedit_env
from hubs import Silent

LOG_LINE = re.compile(r"\[\d{4}-\d\d-\d\d [\d:,]+\]\[reedit(\.[\w.]+)?\]\[(INFO|WARNING)\] - ")
# a whole tqdm bar and nothing glued to it (a warning printed mid-bar follows it on its line)
BAR = re.compile(r"(edit|analyze r\d+|refine r\d+|judge): +\d+%\|[^|]*\| *\d+/\d+ \[[^\]]*\]")
PY = sys.executable
STAGES = ("edit", "analyze r1", "refine r1", "judge")


def test_demo_run_prints_only_reedit_lines_and_stage_bars(tmp_path):
    """Before: a "Loading weights" bar per model load (and "Writing model shards" bars while the
    tiny models are built), transformers' "Kwargs passed to `processor.__call__` have to be in
    `processor_kwargs`" once per refine call (diffusers' FLUX.2 prompt encoding) and, while the
    demo's models are trained, transformers' torchvision deprecation line."""
    hub = Silent()  # nothing in the demo needs the hub: it is never asked
    env = reedit_env()
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        env.pop(name, None)
    env["HF_ENDPOINT"] = hub.url
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env["PYTHONPATH"]])  # this tree's reedit
    (tmp_path / "home").mkdir()
    env["HOME"] = str(tmp_path / "home")
    try:
        proc = subprocess.run(
            [PY, "-m", "reedit", "+experiment=demo", "limit=1", "categories=[physical]"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,  # a hang guard: the first run in a session builds and trains the models
        )
    finally:
        hub.close()
    assert proc.returncode == 0, proc.stderr
    pieces = [p for p in re.split(r"[\r\n]", proc.stderr) if p.strip()]
    foreign = [p for p in pieces if not (LOG_LINE.match(p) or BAR.fullmatch(p))]
    assert foreign == [], "\n".join(foreign)
    for stage in STAGES:
        assert any(p.startswith(f"{stage}:") for p in pieces), stage
    assert hub.connections == 0
