"""``python -m bayes_msc warm``: compiles analyses into the cache ahead of their first fit, with a
progress line; every analysis is checked before anything compiles."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT, child_env


def _run(cache, *argv):
    return subprocess.run([sys.executable, "-m", "bayes_msc", *argv], capture_output=True, text=True,
                          env=child_env(cache), cwd=ROOT, timeout=900)


@pytest.mark.slow
def test_warm_compiles_ahead_so_the_first_fit_compiles_nothing(tmp_path):
    cache = tmp_path / "cache"
    run = _run(cache, "warm", "mortality")
    assert run.returncode == 0, run.stderr
    assert "warm: compiling mortality (1/1) ... done in" in run.stderr
    fit = _run(cache, "-v", "fit", "mortality", "--json", "--chains", "2", "--draws", "100", "--tune", "100")
    assert fit.returncode == 0, fit.stderr
    assert "no pytensor function built" in fit.stderr or "(nutpie's callbacks)" in fit.stderr, fit.stderr
    assert "a helper process" not in fit.stderr  # nothing left to compile cold


def test_a_bad_analysis_is_refused_before_anything_compiles(tmp_path):
    cache = tmp_path / "cache"
    run = _run(cache, "warm", "mortality", "no_such_analysis")
    assert run.returncode == 2
    assert "unknown analysis 'no_such_analysis'" in run.stderr and "Traceback" not in run.stderr
    assert "compiling" not in run.stderr
    assert not list(cache.rglob("*.nbi")), "something was compiled before the bad name was refused"


def test_the_library_warm_returns_the_structure_it_compiled():
    import bayes_msc
    from bayes_msc.engine import sampling

    key = bayes_msc.warm("mortality")
    assert key in sampling._CACHE  # the fit that follows in this process compiles nothing
    count = sampling.COMPILE_COUNT["nutpie"]
    bayes_msc.fit("mortality", chains=2, draws=100, tune=100, seed=1)
    assert sampling.COMPILE_COUNT["nutpie"] == count
