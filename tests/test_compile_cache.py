"""A damaged compile cache is moved aside, named in a warning and compiled afresh: never a crash,
and the same numbers (``bayes_msc.engine.compile_cache``)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pytest

from conftest import ROOT, child_env
from bayes_msc.engine.compile_cache import damaged_entries, quarantine, reads_as_pickles


def test_complete_pickles_read_and_damaged_ones_do_not(tmp_path):
    one, two = tmp_path / "one.nbc", tmp_path / "two.nbi"
    one.write_bytes(pickle.dumps({"a": [1, 2, 3]}, protocol=-1))
    two.write_bytes(pickle.dumps((0, 68), protocol=-1) + pickle.dumps(("stamp", {"k": "v"}), protocol=-1))
    assert reads_as_pickles(one) and reads_as_pickles(two)
    damaged = {
        "truncated": two.read_bytes()[:-7],
        "empty": b"",
        "junk": b"\x00garbage that is no pickle\xff",
        "half a second pickle": pickle.dumps(1) + pickle.dumps([1, 2, 3])[:4],
    }
    for name, content in damaged.items():
        path = tmp_path / f"{name}.nbi"
        path.write_bytes(content)
        assert not reads_as_pickles(path), name
    assert [p.name for p in damaged_entries(tmp_path)] == sorted(f"{n}.nbi" for n in damaged)
    moved = quarantine(tmp_path)
    assert len(moved) == len(damaged) and all(p.name.endswith(".nbi.damaged") and p.exists() for p in moved)
    assert damaged_entries(tmp_path) == [] and one.exists() and two.exists()


def _fit(cache):
    run = subprocess.run(
        [sys.executable, "-m", "bayes_msc", "fit", "mortality", "--json", "--chains", "2", "--draws", "200",
         "--tune", "200", "--seed", "5"],
        capture_output=True, text=True, env=child_env(cache), cwd=ROOT, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    return json.loads(run.stdout)["decisions"], run.stderr


@pytest.mark.slow
def test_a_truncated_or_overwritten_cache_is_repaired_with_the_same_numbers(tmp_path):
    cache = tmp_path / "cache"
    first, _ = _fit(cache)
    indexes = sorted(cache.rglob("*.nbi"))
    data = sorted(cache.rglob("*.nbc"))
    facts = sorted(cache.rglob("bayes_msc_warm_start/*.json"))
    assert indexes and data
    for path in indexes[::3]:  # truncated
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    for path in data[::4]:  # overwritten
        path.write_bytes(b"not what numba wrote")
    for path in facts:
        path.write_text("{ half a JSON", encoding="utf-8")
    again, log = _fit(cache)
    assert again == first
    assert "damaged" in log and str(cache) in log, log
    assert list(cache.rglob("*.damaged"))
    assert damaged_entries(cache) == []
    third, log = _fit(cache)  # repaired: nothing more to move aside
    assert third == first and "damaged" not in log
