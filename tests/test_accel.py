"""``bayes_msc.accel``: used only at its exact versions, and any failure inside it falls back to
the public path with the same numbers.

Each entry point is made to raise in turn; the fit still succeeds, says under ``-v`` (the
``bayes_msc.accel`` logger) that it fell back, and gives exactly the numbers of the public
path (nutpie's own ``compile_pymc_model``, the accelerations switched off).
"""

from __future__ import annotations

import logging
import tomllib

import numpy as np
import pytest

from conftest import ROOT, require_accel, run_python

require_accel("compile")

SETTINGS = dict(chains=2, draws=150, tune=150, seed=17)


def _fit():
    import bayes_msc
    from bayes_msc.engine import sampling

    sampling._CACHE.clear()  # compile (or reassemble) anew, as a fresh process would
    return bayes_msc.fit("mortality", **SETTINGS)


def _numbers(result):
    return result.tree["posterior"]["log_or"].values, result.prob_benefit()


@pytest.fixture(scope="module")
def public_path():
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("BAYES_MSC_ACCEL", "0")
        return _numbers(_fit())


def _boom(*args, **kwargs):
    raise RuntimeError("injected failure")


# what raises: (module, class or None, attribute, the path it is on: "warm" for reassembling a
# compiled model from disk, "cold" for compiling one)
ENTRY_POINTS = {
    "the whole accelerated compile": ("bayes_msc.accel.compile", None, "compile_model", "warm"),
    "the warm start": ("bayes_msc.accel.warm_start", None, "load", "warm"),
    "loading a cached callback": ("bayes_msc.accel.callback_cache", None, "load_cfunc", "warm"),
    "the version check": ("bayes_msc.accel", None, "version_mismatches", "warm"),
    "recording the warm start": ("bayes_msc.accel.warm_start", None, "record", "cold"),
    "the lean log-density callback": ("bayes_msc.accel.nutpie_callbacks", None, "make_logp_callback", "cold"),
    "the lean expand callback": ("bayes_msc.accel.nutpie_callbacks", None, "make_expand_callback", "cold"),
    "the callback cache's key": ("bayes_msc.accel.callback_cache", None, "key_for", "cold"),
    "the compile helper's switch": ("bayes_msc.accel.compile_helper", None, "enabled", "cold"),
    "starting the compile helper": ("bayes_msc.accel.compile_helper", "Help", "spawn", "cold"),
    "handing graphs to the compile helper": ("bayes_msc.accel.compile_helper", None, "later_operations", "cold"),
}


@pytest.mark.parametrize("what", sorted(ENTRY_POINTS))
def test_a_failure_inside_accel_falls_back_with_the_same_numbers(what, public_path, monkeypatch, caplog):
    import importlib

    from bayes_msc.accel import warm_start

    module_name, class_name, attribute, path = ENTRY_POINTS[what]
    if path == "warm":
        _fit()  # the compiled model is on disk to be reassembled
    else:
        monkeypatch.setattr(warm_start, "load", lambda *args: None)  # nothing on disk: compile
    owner = importlib.import_module(module_name)
    monkeypatch.setattr(getattr(owner, class_name) if class_name else owner, attribute, _boom)
    with caplog.at_level(logging.INFO, logger="bayes_msc"):
        draws, prob = _numbers(_fit())
    np.testing.assert_array_equal(draws, public_path[0])
    assert prob == public_path[1]
    # said under -v: the failure itself, or (a factory that no longer looks like nutpie's) why not used
    assert "injected failure" in caplog.text or "do not take the arguments ours do" in caplog.text, caplog.text


def test_the_accelerated_path_gives_the_public_paths_numbers(public_path, caplog):
    with caplog.at_level(logging.INFO, logger="bayes_msc"):
        draws, prob = _numbers(_fit())
    assert "lean callbacks" in caplog.text  # really the accelerated path
    np.testing.assert_array_equal(draws, public_path[0])
    assert prob == public_path[1]


def test_other_versions_or_the_switch_mean_the_public_path(monkeypatch):
    from bayes_msc import accel

    assert accel.enabled("compile") and accel.enabled("imports")
    monkeypatch.setenv(accel.SWITCH, "0")
    assert not accel.enabled("compile") and not accel.enabled("imports")
    monkeypatch.delenv(accel.SWITCH)
    monkeypatch.setitem(accel.VERSIONS, "nutpie", "0.0.1")
    assert not accel.enabled("compile")
    assert accel.version_mismatches("compile") == [f"nutpie {accel._installed('nutpie')}, needs 0.0.1"]


def test_the_accel_extra_pins_exactly_the_versions_accel_checks():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = dict(requirement.split("==") for requirement in project["project"]["optional-dependencies"]["accel"])
    from bayes_msc import accel

    assert pins == accel.VERSIONS


def test_a_failing_lean_import_patch_leaves_the_module_working(tmp_path):
    """The lean imports run inside other libraries' imports (the command line's process): a
    patch that raises must leave the library importable and working, unpatched."""
    require_accel("imports")
    code = ("import json, sys\n"
            "from bayes_msc.accel import lean_imports\n"
            "def boom(module): raise RuntimeError('injected failure')\n"
            "lean_imports._defer_dask_types = boom\n"
            "lean_imports._defer_dask_collection = boom\n"
            "lean_imports._c_exceptions_without_setuptools = lambda module, loader: 1 / 0\n"
            "lean_imports.install()\n"
            "import numpy as np, xarray as xr\n"
            "from pytensor.link.c.exceptions import CompileError, MissingGXX\n"
            "print(json.dumps({'sum': float(xr.DataArray(np.arange(4.0)).sum()),\n"
            "                  'compile_error': CompileError.__name__}))")
    run = run_python(code, tmp_path, timeout=300)
    assert run.stdout.strip().endswith('{"sum": 6.0, "compile_error": "CompileError"}')


def test_the_command_line_survives_lean_imports_that_fail(tmp_path):
    code = ("import sys\n"
            "from bayes_msc.accel import lean_imports\n"
            "def boom(): raise RuntimeError('injected failure')\n"
            "lean_imports.install = boom\n"
            "from bayes_msc.cli import main\n"
            "sys.exit(main(['-v', 'fit', 'mortality', '--json', '--chains', '2', '--draws', '50', '--tune', '50']))")
    run = run_python(code, tmp_path, timeout=600)
    assert "lean imports failed (RuntimeError: injected failure)" in run.stderr


def test_the_warm_start_key_follows_every_model_source(monkeypatch):
    """A recorded warm start is keyed by the whole package's source: a changed model builder
    (outside bayes_msc/accel) must not reuse what the earlier builder recorded."""
    from pathlib import Path

    from bayes_msc.accel import warm_start

    before = warm_start._code_and_versions.__wrapped__()  # uncached: computed now
    original = Path.read_bytes
    builder = Path(warm_start.__file__).resolve().parents[1] / "models" / "mortality.py"

    def edited(self):
        data = original(self)
        return data + b"\n# edited\n" if self.resolve() == builder else data

    monkeypatch.setattr(Path, "read_bytes", edited)
    assert warm_start._code_and_versions.__wrapped__() != before
