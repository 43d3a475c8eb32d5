"""Loading cached callbacks without numba's compiler registries (``callback_cache._loading_only``).

A warm process loads nutpie's two callbacks from numba's disk cache; numba would first import
and install its typing and lowering rules, which only compiling needs. These tests run in
fresh processes (what a warm ``fit`` is): the callback loads and computes the right value
without those modules, a compile later in the same process still works, and a library whose
external symbols are not all known gets numba's full refresh before it is linked.
Cost: two or three short subprocesses (a few seconds with a warm cache; one small compile
when cold).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import child_env, require_accel, require_module

require_module("nutpie", "the callbacks are nutpie's")
require_accel("compile")

ROOT = Path(__file__).resolve().parents[1]
ONLY_FOR_COMPILING = "numba.np.polynomial.polynomial_core"  # imported by numba's full refresh only

SCRIPT = r"""
import ctypes, json, math, sys
from bayes_msc.accel import callback_cache, nutpie_callbacks, warm_start
import numpy as np, pymc as pm, nutpie

def model():
    with pm.Model() as m:
        data = pm.Data("model_data", np.array([0.6]))
        pm.Normal("mu", mu=data[0], sigma=1.0)
    return m

phase = sys.argv[1]
if phase == "compile":
    m = model()
    with nutpie_callbacks.lean_callbacks():
        compiled = nutpie.compile_pymc_model(m, backend="numba", cache=True)
    warm_start.record("callback-loading-test", m, compiled)
    print(json.dumps({"recorded": True}))
    sys.exit(0)
if phase == "unknown-symbol":
    callback_cache.external_symbols_resolve = lambda bitcode: False
compiled = warm_start.load("callback-loading-test", model())
lean = "MODULE" not in sys.modules
logp_fn = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                           ctypes.c_void_p)(compiled.compiled_logp_func.address)
x, grad, logp = np.array([1.1]), np.zeros(1), np.zeros(1)
code = logp_fn(1, x.ctypes.data, grad.ctypes.data, logp.ctypes.data, compiled.user_data.ctypes.data)
import numba

@numba.njit
def later(values):  # a compile after the load: needs the registries the load skipped
    return np.sort(values)[0] + np.sum(values)

print(json.dumps({"hits": compiled.compiled_logp_func.cache_hits + compiled.compiled_expand_func.cache_hits,
                  "lean": lean, "full_refresh": callback_cache.STATS["full_refresh"], "code": code,
                  "logp_error": abs(logp[0] - (-0.5 * 0.5 ** 2 - 0.5 * math.log(2 * math.pi))),
                  "grad": grad[0], "later": later(np.array([3.0, 1.0, 2.0]))}))
""".replace("MODULE", ONLY_FOR_COMPILING)


def _run(phase: str, cache: Path) -> dict:
    env = child_env(cache)
    result = subprocess.run([sys.executable, "-c", SCRIPT, phase], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("callback_loading")
    assert _run("compile", path) == {"recorded": True}
    return path


def test_cached_callbacks_load_without_the_compiler_registries(cache):
    found = _run("load", cache)
    assert found["hits"] == 2 and found["lean"] and found["full_refresh"] == 0
    # N(0.6, 1) at 1.1: the callback's value and gradient (-0.5) from the loaded machine code
    assert found["code"] == 0 and found["logp_error"] < 1e-12 and abs(found["grad"] + 0.5) < 1e-12
    assert found["later"] == 7.0


def test_unknown_external_symbols_get_numbas_full_refresh_first(cache):
    found = _run("unknown-symbol", cache)
    assert found["hits"] == 2 and not found["lean"] and found["full_refresh"] == 2
    assert found["code"] == 0 and found["logp_error"] < 1e-12 and found["later"] == 7.0


def test_external_symbols_resolve_names_only_known_symbols():
    import llvmlite.binding as ll
    from numba.core.registry import cpu_target

    from bayes_msc.accel.callback_cache import external_symbols_resolve

    cpu_target.target_context  # numba's helper symbols (numba_gil_ensure, ...) are registered with the context
    known = ll.parse_assembly("declare i32 @numba_gil_ensure(i8*)\ndeclare double @llvm.exp.f64(double)\n")
    unknown = ll.parse_assembly("declare double @bayes_msc_no_such_symbol(double)\n")
    assert external_symbols_resolve(known.as_bitcode())
    assert not external_symbols_resolve(unknown.as_bitcode())
