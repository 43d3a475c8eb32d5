"""Our nutpie C callbacks (``bayes_msc.accel.nutpie_callbacks``) behave exactly like nutpie's own.

They exist only to compile faster, so the test is equivalence: the same return codes and
outputs on ordinary, non-finite and wrong-size calls, and bit-identical draws for a seed.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from conftest import require_accel, require_module  # noqa: E402

nutpie = require_module("nutpie", "the lean callbacks are compared with nutpie's own")
require_accel("compile")

from bayes_msc.accel import nutpie_callbacks  # noqa: E402


def _model():
    """mu ~ N(centre, 1) plus log(mu + shift): finite for mu > -shift, -inf at it, nan below."""
    import pymc as pm
    import pytensor.tensor as pt

    with pm.Model() as model:
        data = pm.Data("model_data", np.array([0.5, 2.0]))
        mu = pm.Normal("mu", mu=data[0], sigma=1.0)
        pm.Deterministic("shifted", mu + data[1])
        pm.Potential("barrier", pt.log(mu + data[1]))
    return model


def _compile(lean: bool):
    if not lean:  # nutpie's public path, its own callbacks
        return nutpie.compile_pymc_model(_model(), backend="numba")
    with nutpie_callbacks.lean_callbacks() as applied:
        compiled = nutpie.compile_pymc_model(_model(), backend="numba")
    assert applied
    return compiled


@pytest.fixture(scope="module")
def both():
    return {"lean": _compile(True), "nutpie": _compile(False)}


def test_they_apply_to_the_nutpie_this_package_is_tested_with():
    assert nutpie_callbacks.lean_callbacks_apply()


def test_nutpies_callbacks_and_numbas_locators_are_restored_after_the_block():
    import nutpie.compile_pymc as compile_pymc
    import pytensor.link.numba.cache  # noqa: F401  (registers pytensor's own locator when first imported)
    from numba.core.caching import CacheImpl

    original, locators = compile_pymc._make_c_logp_func, list(CacheImpl._locator_classes)
    with nutpie_callbacks.lean_callbacks() as applied:
        assert applied and compile_pymc._make_c_logp_func is nutpie_callbacks.make_logp_callback
        assert len(CacheImpl._locator_classes) == len(locators) + 1
    assert compile_pymc._make_c_logp_func is original  # restored on exit
    assert CacheImpl._locator_classes == locators


def _call_logp(compiled, x, dim=None):
    x = np.ascontiguousarray(x, dtype="float64")
    grad = np.zeros(len(x))
    logp = np.zeros(1)
    pointer = lambda a: a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))  # noqa: E731
    code = compiled.compiled_logp_func.ctypes(
        len(x) if dim is None else dim, pointer(x), pointer(grad), pointer(logp),
        ctypes.c_void_p(compiled.user_data.ctypes.data),
    )
    return code, logp[0], grad


def _call_expand(compiled, x):
    x = np.ascontiguousarray(x, dtype="float64")
    out = np.zeros(compiled.n_expanded)
    code = compiled.compiled_expand_func.ctypes(
        len(x), compiled.n_expanded, x.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
        out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), ctypes.c_void_p(compiled.user_data.ctypes.data),
    )
    return code, out


@pytest.mark.parametrize(
    "mu, expected_code",
    [(0.3, 0), (-2.0, 3), (-3.0, 4)],  # finite; log(0): -inf with an infinite gradient; log(<0): nan
)
def test_logp_codes_and_values_equal_nutpies(both, mu, expected_code):
    lean, theirs = _call_logp(both["lean"], [mu]), _call_logp(both["nutpie"], [mu])
    assert lean[0] == theirs[0] == expected_code
    np.testing.assert_array_equal(lean[1], theirs[1])
    np.testing.assert_array_equal(lean[2], theirs[2])


def test_wrong_size_is_refused_by_both(both):
    assert _call_logp(both["lean"], [0.3], dim=2)[0] == _call_logp(both["nutpie"], [0.3], dim=2)[0] == -1


def test_expand_equals_nutpies(both):
    lean, theirs = _call_expand(both["lean"], [0.3]), _call_expand(both["nutpie"], [0.3])
    assert lean[0] == theirs[0] == 0
    np.testing.assert_array_equal(lean[1], theirs[1])
    assert 2.3 in lean[1]  # the deterministic mu + shift is really computed


def test_draws_are_bit_identical_including_after_with_data(both):
    def draws(compiled):
        trace = nutpie.sample(compiled, chains=2, draws=200, tune=200, seed=11, progress_bar=False)
        return trace["posterior"]["mu"].values

    np.testing.assert_array_equal(draws(both["lean"]), draws(both["nutpie"]))
    moved = {name: compiled.with_data(model_data=np.array([3.0, 2.0])) for name, compiled in both.items()}
    np.testing.assert_array_equal(draws(moved["lean"]), draws(moved["nutpie"]))
    assert draws(moved["lean"]).mean() > draws(both["lean"]).mean() + 1.0  # the new data were used


# -- the disk cache of the callbacks (bayes_msc.accel.callback_cache) -------------------------------


def _centred_model(centre: float):
    """mu ~ N(centre, 1) with ``centre`` compiled in as a constant: one graph per centre."""
    import pymc as pm
    import pytensor.tensor as pt

    with pm.Model() as model:
        pm.Normal("mu", mu=pt.constant(centre), sigma=1.0)
    return model


def _compile_cached(model, monkeypatch):
    with nutpie_callbacks.lean_callbacks() as applied:
        assert applied
        return nutpie.compile_pymc_model(model, backend="numba", cache=True)


def _assert_normal_logp(compiled, centre: float, at: float = 0.0):
    code, logp, grad = _call_logp(compiled, [at])
    assert code == 0
    np.testing.assert_allclose(logp, -0.5 * (at - centre) ** 2 - 0.5 * np.log(2 * np.pi), rtol=1e-12)
    np.testing.assert_allclose(grad, [centre - at], rtol=1e-12)


def test_cached_callbacks_are_reused_only_for_the_same_graph(monkeypatch):
    # Different constants are different graphs: each must get its own machine code back,
    # and compiling a graph seen before must come from the disk cache.
    first = _compile_cached(_centred_model(0.25), monkeypatch)
    _assert_normal_logp(first, 0.25)
    other = _compile_cached(_centred_model(1.5), monkeypatch)
    _assert_normal_logp(other, 1.5)
    again = _compile_cached(_centred_model(0.25), monkeypatch)
    _assert_normal_logp(again, 0.25)
    assert again.compiled_logp_func.cache_hits == 1 and again.compiled_expand_func.cache_hits == 1


def test_callbacks_without_a_pytensor_key_are_compiled_every_time(monkeypatch):
    import pytensor

    with pytensor.config.change_flags(numba__cache=False):  # pytensor then keys nothing
        for _ in range(2):
            compiled = _compile_cached(_centred_model(-0.75), monkeypatch)
            _assert_normal_logp(compiled, -0.75)
            assert compiled.compiled_logp_func.cache_hits == 0


# -- a compiled model reassembled from disk (bayes_msc.accel.warm_start) ----------------------------


def test_reassembled_model_samples_the_same_draws_and_refuses_other_models(monkeypatch, tmp_path):
    from bayes_msc.accel import warm_start

    model = _centred_model(0.6)
    compiled = _compile_cached(model, monkeypatch)
    warm_start.record("centred", model, compiled)
    again = warm_start.load("centred", _centred_model(0.6))
    assert again is not None
    assert again.compiled_logp_func.cache_hits == 1 and again.compiled_expand_func.cache_hits == 1
    _assert_normal_logp(again, 0.6)

    def draws(c):
        return nutpie.sample(c, chains=2, draws=100, tune=100, seed=3, progress_bar=False)["posterior"]["mu"].values

    np.testing.assert_array_equal(draws(again), draws(compiled))
    assert warm_start.load("unknown structure", model) is None

    import pymc as pm

    with pm.Model() as renamed:  # same graph shape, another variable: the facts do not fit it
        pm.Normal("nu", mu=0.6, sigma=1.0)
    assert warm_start.load("centred", renamed) is None
