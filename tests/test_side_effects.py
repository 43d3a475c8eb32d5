"""``import bayes_msc`` and library calls leave the caller's process as they found it.

A fresh interpreter, as a notebook with the user's own PyMC model would be (a small model
compiled and sampled with nutpie first), records its environment variables, ``sys.meta_path``,
``sys.path``, what ``sys.modules`` holds (no stand-ins), the type of ``sys.modules["arviz"]``,
pytensor's and numba's settings, numba's cache locators, the garbage collector's settings,
the warning filters and the nutpie/numba functions the accelerations swap for the length of
a compile; then compares them after ``import bayes_msc``, after a cold ``fit`` (the compile
path, with the compile helper where there are two cores), after a second fit of the same
structure in a fresh compile (the warm-start path) and after ``warm``.
"""

from __future__ import annotations

import json

import pytest

from conftest import run_python

SCRIPT = r"""
import gc, json, os, sys, types, warnings
# The user's own world, before ours: a small PyMC model compiled and sampled with nutpie, so
# that what the dependencies themselves do on first use (pytensor registering its numba cache
# locator and warning filters, say) has happened already and only our changes would show.
import numba, pytensor, pymc as pm, nutpie
import nutpie.compile_pymc as compile_pymc
from numba.core import caching
with pm.Model() as users_model:
    pm.Normal("x", 0.0, 1.0)
nutpie.sample(nutpie.compile_pymc_model(users_model, backend="numba"), chains=1, draws=20, tune=20,
              progress_bar=False)

def snapshot():
    import numba.core.config as numba_config
    modules = sys.modules
    return {
        "environ": dict(os.environ),
        "meta_path": [f"{type(f).__module__}.{type(f).__qualname__}" for f in sys.meta_path],
        "path": list(sys.path),
        "arviz": type(modules["arviz"]).__name__ if "arviz" in modules else None,
        "stand_ins": sorted(name for name, module in list(modules.items())
                            if module is None or type(module).__module__.startswith("bayes_msc")),
        "pytensor": str(pytensor.config),
        "numba": {k: repr(v) for k, v in vars(numba_config).items() if k.isupper()},
        "locators": [c.__qualname__ for c in caching.CacheImpl._locator_classes],
        "gc": [list(gc.get_threshold()), gc.get_freeze_count(), gc.isenabled()],
        "warnings": [repr(f) for f in warnings.filters],
        "swapped": [id(compile_pymc._make_c_logp_func), id(compile_pymc._make_c_expand_func),
                    id(compile_pymc._make_functions), id(caching.Cache.load_overload)],
    }

def changed(before, after):
    return {key: [before[key], after[key]] for key in before if before[key] != after[key]}

steps = {}
snapshot()  # reading every pytensor setting once computes the lazy ones (blas__ldflags puts its folder on PATH)
before = snapshot()
import bayes_msc
steps["import"] = changed(before, snapshot())
result = bayes_msc.fit("mortality", chains=2, draws=100, tune=100, seed=3)
steps["fit"] = changed(before, snapshot())
import bayes_msc.engine.sampling
bayes_msc.engine.sampling._CACHE.clear()  # the same structure again: compiled anew in this process
result = bayes_msc.fit("mortality", chains=2, draws=100, tune=100, seed=3)
steps["second fit"] = changed(before, snapshot())
bayes_msc.warm("oxygenation")
steps["warm"] = changed(before, snapshot())
steps["arviz"] = type(sys.modules.get("arviz")).__name__
print(json.dumps(steps, default=str))
"""


@pytest.mark.slow
def test_import_and_library_calls_change_nothing_global(tmp_path):
    run = run_python(SCRIPT, tmp_path / "cache", timeout=900)
    steps = json.loads(run.stdout.strip().splitlines()[-1])
    assert steps.pop("arviz") == "module"  # nutpie imported the real arviz, not a stand-in
    for step, changes in steps.items():
        assert changes == {}, f"after {step}: {_describe(changes)}"


def _describe(changes: dict) -> str:
    lines = []
    for key, (before, after) in changes.items():
        if isinstance(before, dict):
            diff = {k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)}
            lines.append(f"{key}: {diff}")
        else:
            lines.append(f"{key}: {str(before)[:1500]} -> {str(after)[:1500]}")
    return "\n".join(lines)


def test_importing_alone_imports_no_numerical_library_and_sets_nothing(tmp_path):
    code = ("import json, os, sys\n"
            "env, hooks = dict(os.environ), list(sys.meta_path)\n"
            "import bayes_msc\n"
            "print(json.dumps({'env': dict(os.environ) == env, 'hooks': list(sys.meta_path) == hooks,\n"
            "                  'heavy': sorted(m for m in sys.modules if m.split('.')[0] in\n"
            "                                  ('numpy', 'pytensor', 'numba', 'nutpie', 'arviz', 'xarray'))}))")
    run = run_python(code, tmp_path, timeout=120)
    assert json.loads(run.stdout) == {"env": True, "hooks": True, "heavy": []}
