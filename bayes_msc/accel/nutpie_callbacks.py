"""nutpie's C callbacks, written so numba compiles them in a fraction of the time.

nutpie hands its Rust sampler two ``numba.cfunc`` callbacks: the log density with its
gradient, and the "expand" function that turns a draw into the stored variables. They are
compiled in every process — pytensor's cache does not cover them — and nutpie 0.16 copies
the results with array assignments (``out[...] = grad``, ``logp[()] = value``,
``np.all(np.isfinite(out))``). numba lowers such an assignment together with a
shape-mismatch error path whose message formatting is slow to compile: on the 2-core
benchmark machine the two callbacks took 5.0 s with a warm cache, of which about 2 s was
that error path. The versions below do the same with element loops (the shapes are fixed by
construction, so the error path cannot be reached) and compile in 2.9 s. They are also
generated from source without closures, so numba can cache them on disk
(:mod:`bayes_msc.accel.callback_cache`): a warm process loads them instead of compiling (about
0.1 s instead of 2.9 s).

They are used only with the nutpie version they were checked against
(:data:`bayes_msc.accel.VERSIONS`, and the private factories' signatures checked again
here); a test asserts bit-identical draws against nutpie's own callbacks. Otherwise, or
with ``BAYES_MSC_ACCEL=0``, nutpie's own callbacks are used through its public
``compile_pymc_model``: slower to compile, the same numbers.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator

from . import callback_cache



def _c_signatures():
    import numba

    double_ptr = numba.types.CPointer(numba.types.double)
    logp = numba.types.int64(numba.types.uint64, double_ptr, double_ptr, double_ptr, numba.types.voidptr)
    expand = numba.types.int64(numba.types.uint64, numba.types.uint64, double_ptr, double_ptr, numba.types.voidptr)
    return logp, expand


# The callbacks are generated from source with their collaborators as module globals, not
# closure cells: numba keys a cached function by its bytecode and the pickled contents of its
# closure, and a closure holding a numba dispatcher pickles differently in every process
# (its uuid), so a closure could never be found in the cache again.
_LOGP_SOURCE = """
def logp_numba(dim, x_, out_, logp_, user_data_):
    if dim != n_dim:
        return -1
    try:
        x = numba.carray(x_, (n_dim,))
        out = numba.carray(out_, (n_dim,))
        logp = numba.carray(logp_, (1,))
        logp_val, grad = extract(x, user_data_)
        logp[0] = logp_val
        finite = True
        for i in range(n_dim):
            out[i] = grad[i]
            finite = finite and np.isfinite(grad[i])
        if not finite:
            return 3
        if not np.isfinite(logp_val):
            return 4
    except Exception:  # a numba cfunc cannot raise; the code tells Rust
        return 1
    return 0
"""

_EXPAND_SOURCE = """
def expand_numba(dim, expanded, x_, out_, user_data_):
    if dim != n_dim:
        return -1
    if expanded != n_expanded:
        return -1
    try:
        x = numba.carray(x_, (n_dim,))
        out = numba.carray(out_, (n_expanded,))
        (values,) = extract(x, user_data_)
        for i in range(n_expanded):
            out[i] = values[i]
    except Exception:
        return -2
    return 0
"""


def make_logp_callback(n_dim, logp_fn, user_data, shared_keys, shared_data):
    """Drop-in for ``nutpie.compile_pymc._make_c_logp_func`` (same arguments, same codes:
    0 ok, 1 exception, 3 non-finite gradient, 4 non-finite log density, -1 wrong size)."""
    from nutpie.compile_pymc import make_extraction_fn

    extract = make_extraction_fn(logp_fn, shared_data, shared_keys, user_data.dtype)
    key = callback_cache.key_for("logp", _LOGP_SOURCE, logp_fn, user_data, shared_keys, n_dim=n_dim)
    function = callback_cache.function_from_source(
        _LOGP_SOURCE, "logp_numba", {"n_dim": n_dim, "extract": extract}, key)
    return function, _c_signatures()[0]


def make_expand_callback(n_dim, n_expanded, expand_fn, user_data, shared_var_keys, shared_data):
    """Drop-in for ``nutpie.compile_pymc._make_c_expand_func`` (codes: 0 ok, -1 wrong size,
    -2 exception)."""
    from nutpie.compile_pymc import make_extraction_fn

    extract = make_extraction_fn(expand_fn, shared_data, shared_var_keys, user_data.dtype)
    key = callback_cache.key_for("expand", _EXPAND_SOURCE, expand_fn, user_data, shared_var_keys,
                                 n_dim=n_dim, n_expanded=n_expanded)
    function = callback_cache.function_from_source(
        _EXPAND_SOURCE, "expand_numba", {"n_dim": n_dim, "n_expanded": n_expanded, "extract": extract}, key)
    return function, _c_signatures()[1]


def cached_callback(kind: str, key: str, **sizes: int):
    """The ``kind`` ("logp" or "expand") callback stored under ``key``, loaded from numba's
    disk cache without compiling anything; ``None`` if the cache does not have it. Its
    collaborators are not needed: only compiling would look at them."""
    source, name, signature = {
        "logp": (_LOGP_SOURCE, "logp_numba", _c_signatures()[0]),
        "expand": (_EXPAND_SOURCE, "expand_numba", _c_signatures()[1]),
    }[kind]
    function = callback_cache.function_from_source(source, name, {**sizes, "extract": None}, key)
    return callback_cache.load_cfunc(function, signature)


def _factories_match(module) -> bool:
    """nutpie's private factories exist with the arguments ours take."""
    expected = {
        "_make_c_logp_func": list(inspect.signature(make_logp_callback).parameters),
        "_make_c_expand_func": list(inspect.signature(make_expand_callback).parameters),
    }
    for name, params in expected.items():
        factory = getattr(module, name, None)
        if factory is None or list(inspect.signature(factory).parameters) != params:
            return False
    return callable(getattr(module, "make_extraction_fn", None))


def lean_callbacks_apply() -> bool:
    """Whether :func:`lean_callbacks` will replace nutpie's callbacks: nutpie's private
    factories still take the arguments ours do (the versions are checked by
    :func:`bayes_msc.accel.enabled` before anything here runs)."""
    import nutpie.compile_pymc as compile_pymc

    return _factories_match(compile_pymc)


@contextlib.contextmanager
def lean_callbacks() -> Iterator[bool]:
    """Compile nutpie models inside this block with the callbacks above (when they apply).

    Yields whether they did. nutpie looks its factories up as module globals at compile
    time, so replacing them for the duration of one ``compile_pymc_model`` call is enough.
    """
    import nutpie.compile_pymc as compile_pymc

    if not lean_callbacks_apply():
        yield False
        return
    saved = compile_pymc._make_c_logp_func, compile_pymc._make_c_expand_func
    compile_pymc._make_c_logp_func, compile_pymc._make_c_expand_func = make_logp_callback, make_expand_callback
    try:
        with callback_cache.locator_registered():
            yield True
    finally:
        compile_pymc._make_c_logp_func, compile_pymc._make_c_expand_func = saved
