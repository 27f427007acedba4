"""The fault suite's fixtures: ``runs`` (a fork server's children run reedit, see harness.py)
``uninterrupted`` (the digest of the demo run without a fault) and ``two_ranks`` (the same
over two CPU ranks)."""

from __future__ import annotations

import multiprocessing

import pytest
from digest import digest

from faults.harness import DEMO, Runs, log_tail
from faults.injector import PRELOAD


@pytest.fixture(scope="session")
def runs() -> Runs:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return Runs(ctx)


@pytest.fixture(scope="session")
def uninterrupted(runs, tmp_path_factory) -> dict:
    """The digest of the demo run without a fault (tests/digest.py)."""
    folder = tmp_path_factory.mktemp("uninterrupted") / "run"
    assert runs(folder, *DEMO) == 0, log_tail(folder)
    return digest(folder)


@pytest.fixture(scope="session")
def two_ranks(runs, tmp_path_factory) -> dict:
    """The demo over two CPU ranks without a fault (one thread each: what a rerun over two
    ranks computes to the last bit)."""
    folder = tmp_path_factory.mktemp("two_ranks") / "run"
    assert runs(folder, *DEMO, "cpu_ranks=2") == 0, log_tail(folder)
    return digest(folder)
