"""The bad-input corpus (``tests/data/bad/make_corpus.py``, made by code): every malformed
dataset file or record gets its own one-paragraph error naming the record and the field, within
seconds (never a hang, never a traceback); the odd images that are valid load as the picture they
show; ids from the data never lead a write outside the run folder. Then malformed configurations,
through the command line: exit 2 and the key named."""

from __future__ import annotations

import importlib.util
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, reedit_env

from reedit.config import ReeditError, build, spec_of
from reedit.run import run

spec = importlib.util.spec_from_file_location("make_corpus", ROOT / "tests/data/bad/make_corpus.py")
corpus = importlib.util.module_from_spec(spec)
sys.modules["make_corpus"] = corpus  # its dataclasses look their module up
spec.loader.exec_module(corpus)

QUICK = ["model=identity", "executor=identity", "refiner=none", "judge=none", "logger=none"]
QUICK += ["progress=false"]
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class Hang(Exception):
    pass


def _within(seconds: int):
    def alarm(signum, frame):
        raise Hang(f"no outcome within {seconds} s")

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)


def test_the_corpus_is_large_enough_and_its_script_writes_every_case(tmp_path):
    assert len(corpus.CASES) >= 30
    assert len({c.name for c in corpus.CASES}) == len(corpus.CASES)
    subprocess.run(
        [sys.executable, str(ROOT / "tests/data/bad/make_corpus.py"), str(tmp_path)],
        check=True,
        timeout=120,
        env=reedit_env(),
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(c.name for c in corpus.CASES)
    assert all((tmp_path / c.name / "case.json").is_file() for c in corpus.CASES)


@pytest.mark.parametrize("case", corpus.CASES, ids=lambda c: c.name)
def test_each_bad_input_is_named_or_loads_as_what_it_shows(case, compose, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    over = [*QUICK, *case.write(data), f"dataset.cache_dir={tmp_path / 'cache'}"]
    cfg = compose(*over)
    _within(60)
    try:
        if case.expect is not None:
            with pytest.raises(ReeditError, match=case.expect) as err:
                run(cfg, run_dir=tmp_path / "run")
            assert "Traceback" not in str(err.value)
            return
        loaded = build(spec_of(cfg.dataset, "dataset")).load()
        (s,) = loaded.samples
        _accepted(case.accepts, s)
        run(cfg, run_dir=tmp_path / "run")  # and the run goes through, inside its folder
    finally:
        signal.alarm(0)
    # what the run wrote from the data's id stays in its folder: images/<category>/<id>/
    (image,) = (tmp_path / "run" / "images").glob("*/*/primary.png")
    assert image.parent.name == s.id and image.parent.parent.parent == tmp_path / "run" / "images"
    (source,) = (tmp_path / "run" / "sources").glob("*/*")
    assert source.stem == s.id
    assert not Path("/tmp/evil").exists()  # the ../../../../tmp/evil/lamp.png record's folder


def _accepted(what: str, s) -> None:
    kind, _, value = what.partition(" ")
    if kind == "loads":
        assert s.instruction
    elif kind == "category":
        assert s.category == value
    elif kind == "size":
        size, _, colour = value.partition(" ")
        img = s.image
        assert img.mode == "RGB" and f"{img.width}x{img.height}" == size
        if colour == "red":
            assert img.getpixel((0, 0)) == (255, 0, 0)  # the first frame
    elif kind == "id":
        assert SAFE_ID.match(s.id) and ".." not in s.id and "/" not in s.id, s.id
        if value != "safe":
            assert s.id == value
    elif kind == "metadata":
        assert value in s.metadata
    else:
        raise AssertionError(f"unknown check {what!r}")


# ------------------------------------------------------------------ malformed configurations
CONFIGS = [
    (
        ["model.num_inference_step=3", "model=tiny_flux2"],
        r"model\.num_inference_step.*Did you mean",
    ),
    (["seed=abc"], r"seed=abc: .*the type of 'seed'"),
    (["model=identiy"], r"Did you mean 'model=identity'\?"),
    (["dataset=folder"], r"dataset\.root"),
    (["'gpus=[0,0]'"], r"GPU 0 is listed twice|listed twice"),
    (["limit=-1"], r"limit must be a positive integer or null, got -1"),
    (
        ["dataset.path=/no/such/RE-Edit.json"],
        r"dataset\.path: no such file: /no/such/RE-Edit\.json",
    ),
    (["categories=[physics]"], r"unknown category 'physics'.*Did you mean 'physical'\?"),
    (["max_error_rate=2"], r"max_error_rate must be within 0\.\.1, got 2"),
    (["report.thumb_size=0"], r"report\.thumb_size must be >= 16"),
    (["png_compress_level=12"], r"png_compress_level must be within 0\.\.9, got 12"),
    (["dataset.max_pixels=abc"], r"dataset\.max_pixels"),
]


@pytest.mark.parametrize("args, expect", CONFIGS, ids=[c[0][0] for c in CONFIGS])
def test_a_malformed_configuration_is_one_paragraph_naming_the_key(tmp_path, args, expect):
    argv = [a.strip("'") for a in args]
    proc = subprocess.run(
        [sys.executable, "-m", "reedit", "dataset=demo", "logger=none", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=reedit_env(),
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert re.search(expect, proc.stderr), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*.json"))
