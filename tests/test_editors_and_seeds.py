"""The Editor base class contract (identity, precomputed, a failing adapter) and seeds."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from reedit.data.base import Sample
from reedit.models.base import Editor, EditRequest
from reedit.models.editors.identity import IdentityEditor
from reedit.models.editors.precomputed import PrecomputedEditor
from reedit.run import run
from reedit.seeds import SeedRule


def req(key: str, instruction: str = "make it red", size=(8, 6), category="physical"):
    return EditRequest(key, key, category, Image.new("RGB", size, (10, 20, 30)), instruction, 1)


class Flaky(Editor):
    """Fails for keys containing 'bad'; counts model calls."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.calls: list[list[str]] = []
        self.loads = 0

    def _load(self):
        self.loads += 1

    def _edit(self, requests):
        self.calls.append([r.key for r in requests])
        if any("bad" in r.key for r in requests):
            raise RuntimeError("boom")
        return [Image.new("RGBA", r.image.size) for r in requests]


def test_batches_isolate_a_failing_sample_and_keep_order():
    ed = Flaky(batch_size=3)
    results = ed.edit([req("a"), req("bad"), req("c"), req("d")])
    assert [r.ok for r in results] == [True, False, True, True]
    assert results[1].error_type == "RuntimeError" and results[1].error == "boom"
    assert all(r.image.mode == "RGB" for r in results if r.ok)  # outputs normalised to RGB
    # the failing batch of 3 was retried one by one; the last request ran in its own batch
    assert ed.calls == [["a", "bad", "c"], ["a"], ["bad"], ["c"], ["d"]]
    assert ed.loads == 1


def test_invalid_requests_are_errors_and_never_reach_the_model():
    ed = Flaky(batch_size=4)
    results = ed.edit([req("a", instruction="  "), req("b", size=(0, 5)), req("c")])
    assert [r.error_type for r in results] == ["InvalidRequest", "InvalidRequest", None]
    assert ed.calls == [["c"]]


def test_wrong_number_of_outputs_is_an_error():
    class Short(Editor):
        def _edit(self, requests):
            return []

    (res,) = Short().edit([req("a")])
    assert not res.ok and "0 images for 1 requests" in res.error


def test_close_then_load_again():
    ed = Flaky()
    ed.load()
    ed.close()
    assert not ed.loaded
    ed.edit([req("a")])
    assert ed.loads == 2


def test_identity_returns_the_source():
    src = req("a")
    (res,) = IdentityEditor(batch_size=2).edit([src])
    assert res.image.tobytes() == src.image.tobytes() and res.image is not src.image


def test_precomputed_reads_files_and_missing_is_an_error(tmp_path):
    (tmp_path / "physical").mkdir()
    Image.new("RGB", (5, 5), (255, 0, 0)).save(tmp_path / "physical" / "a.png")
    (tmp_path / "physical" / "broken.png").write_bytes(b"not a png")
    ed = PrecomputedEditor(images_dir=str(tmp_path), suffix=".png", batch_size=8)
    a, missing, broken = ed.edit([req("a"), req("nothere"), req("broken")])
    assert a.ok and a.image.getpixel((0, 0)) == (255, 0, 0)
    assert not missing.ok and missing.error_type == "FileNotFoundError"
    assert "nothere.png" in missing.error
    assert not broken.ok and "broken.png" in broken.error
    with pytest.raises(FileNotFoundError, match="model.images_dir"):
        PrecomputedEditor(images_dir=str(tmp_path / "no"), suffix=".png").load()


def test_precomputed_in_a_run_never_substitutes(compose, tmp_path):
    images = tmp_path / "images"
    (images / "physical").mkdir(parents=True)
    Image.new("RGB", (5, 5), (0, 255, 0)).save(images / "physical" / "00000_physical_easy.png")
    cfg = compose(
        "dataset=demo",
        "model=precomputed",
        f"model.images_dir={images}",
        "max_error_rate=1.0",
        "progress=false",
    )
    metrics = run(cfg, run_dir=tmp_path / "run")
    assert metrics["stages"]["edit"]["ok"] == 1 and metrics["stages"]["edit"]["error"] == 9
    assert metrics["stages"]["edit"]["errors_by_type"] == {"FileNotFoundError": 9}


# ------------------------------------------------------------------------------------- seeds
def sample(sid: str, index: int) -> Sample:
    return Sample(sid, "physical", "x", "", "", Path("/dev/null"), index, index)


def test_seed_from_id_ignores_order_and_index():
    rule = SeedRule(5)
    assert rule.edit(sample("s2", 1)) == rule.edit(sample("s2", 0))  # position does not count
    assert rule.edit(sample("s1", 0)) != rule.edit(sample("s2", 0))
    assert rule.refine(sample("s1", 0), 1, 0) != rule.edit(sample("s1", 0))
    assert rule.refine(sample("s1", 0), 1, 1) != rule.refine(sample("s1", 0), 1, 0)
    assert SeedRule(6).edit(sample("s2", 0)) != rule.edit(sample("s2", 0))
    assert 0 <= rule.edit(sample("s1", 0)) < 2**31


def test_seed_mode_index_reproduces_the_reference():
    rule = SeedRule(42, "index")
    assert [rule.edit(sample(n, i)) for n, i in (("a", 0), ("b", 1), ("c", 7))] == [42, 43, 49]


def test_limit_does_not_change_seeds(compose, tmp_path):
    from reedit.records import RecordStore

    run(compose("dataset=demo", "progress=false"), run_dir=tmp_path / "all")
    run(
        compose("dataset=demo", "limit=1", "categories=[causal]", "progress=false"),
        run_dir=tmp_path / "one",
    )
    full = RecordStore(tmp_path / "all", "edit").load()
    (one,) = RecordStore(tmp_path / "one", "edit").load().values()
    assert one["seed"] == full[one["key"]]["seed"]
