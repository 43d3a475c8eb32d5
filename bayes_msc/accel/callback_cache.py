"""An on-disk cache for nutpie's two C callbacks, so a warm process does not compile them.

pytensor caches the numba code of the log density and its gradient across processes, but
nutpie wraps them in two ``numba.cfunc`` callbacks (the log density for the sampler, the
"expand" function that writes a draw's stored variables) that numba compiled again in every
process: about 3 s of a 7 s warm ``fit`` on 2 cores. numba can cache a cfunc only if it can
recognise it in a later process, and it cannot recognise nutpie's: they are closures over a
numba dispatcher, and numba keys a cached function by its bytecode plus the pickled closure,
which for a dispatcher differs in every process.

So :mod:`bayes_msc.accel.nutpie_callbacks` generates the callbacks from source with their
collaborators as globals (no closure), and this module tells numba where their cache
entries live and how to tell them apart (a numba cache *locator*, as pytensor's own numba
cache does for its generated code). The disambiguating key is a hash of everything the
machine code depends on:

* pytensor's key of the inner compiled graph (a hash of the graph, constants included,
  which pytensor computes for its own cache) — so a different model, layout or prior
  family never shares an entry;
* the callback's source, its sizes (``n_dim``, ``n_expanded``), and the byte layout of
  nutpie's ``user_data`` record with the field names left out (nutpie names the fields with
  a fresh uuid in every process; the compiled code reads them by offset);
* the versions of numba, llvmlite, pytensor and nutpie (numba also checks its own version
  and the CPU in its index).

A callback whose inner graph pytensor does not cache has no key; it is compiled as before
(its numba cache entry goes to a private temporary directory removed at exit, so it is
never found again). The entries sit next to pytensor's (``<cache>/pytensor/.../numba``), so
clearing the compile cache clears them too; numba writes them atomically, so processes that
share a cache directory (``--workers``) can fill and read it concurrently.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_KEYS: weakref.WeakKeyDictionary[Callable, str | None] = weakref.WeakKeyDictionary()
_PRIVATE_DIR: list[str] = []  # lazily made; for callbacks that cannot be cached
STATS = {"generated": 0, "keyed": 0, "full_refresh": 0}  # callbacks made/loaded in this process (tests, bench)


def key_for(kind: str, source: str, inner, user_data, shared_keys, **sizes: int) -> str | None:
    """The cache key of one callback, or ``None`` when its inner graph has no pytensor key."""
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    graph_key = CACHED_SRC_FUNCTIONS.get(getattr(inner, "py_func", None))
    if graph_key is None:
        return None
    fields = list(user_data.dtype["shared"]["data"].names or ())
    payload = {
        "kind": kind,
        "source": source,
        "graph": graph_key,
        "sizes": {name: int(size) for name, size in sizes.items()},
        "record": anonymous_layout(user_data.dtype),
        "reads": [fields.index(key) for key in shared_keys],  # which record slots this callback reads
        "versions": _versions(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def key_of(function) -> str | None:
    """The key a generated callback was registered under (``None``: not generated here, or
    not cacheable)."""
    try:
        return _KEYS.get(function)
    except TypeError:  # not weak-referenceable: not one of ours
        return None


def load_cfunc(function, signature):
    """numba's ``cfunc`` of ``function`` from the disk cache, or ``None`` when the cache has
    no entry for it (then nothing is compiled)."""
    from numba.core import sigutils
    from numba.core.ccallback import CFunc

    class Missing(Exception):
        pass

    def missing():
        raise Missing

    # what numba.cfunc(signature, cache=True) makes, before it compiles
    cfunc = CFunc(function, sigutils.normalize_signature(signature), locals={}, options={})
    with locator_registered():  # numba asks the locators here
        cfunc.enable_caching()
    cfunc._compile_uncached = missing  # load, or give up: never compile here
    try:
        with locator_registered(), _loading_only(cfunc._targetdescr.target_context):
            cfunc.compile()
    except Missing:
        return None
    return cfunc


@contextlib.contextmanager
def _loading_only(target_context):
    """Load compiled code without first importing numba's compiler registries.

    Before loading anything from its cache numba "refreshes" its CPU target: it imports some
    forty modules of typing and lowering rules (``numba.cpython.*``, ``numba.np.*``) and
    installs them — 0.2-0.3 s of a warm ``fit`` on 2 cores, and needed only to *compile*.
    Loading machine code needs the runtime (NRT) and the symbols its code calls, so while a
    callback is loaded (and nothing compiled: :func:`load_cfunc` refuses to) the refresh only
    initialises the runtime, and every external symbol of the code about to be linked is
    checked first: if one is not known (a few of numba's modules register symbols when they
    are imported, e.g. the hash secret), numba's full refresh runs first, as it would have
    anyway. The first compile later in the process refreshes in full as usual. All of
    it under numba's compiler lock, so no other thread compiles meanwhile.
    """
    from numba.core.compiler_lock import global_compiler_lock
    from numba.core.runtime import rtsys

    full_refresh = target_context.refresh
    codegen = target_context.codegen()
    unserialize = codegen.unserialize_library

    def lean_refresh():
        rtsys.initialize(target_context)

    def checked_unserialize(serialized):
        _, kind, data = serialized
        if kind != "object" or not external_symbols_resolve(data[1]):
            STATS["full_refresh"] += 1
            full_refresh()
        return unserialize(serialized)

    with global_compiler_lock:
        target_context.refresh = lean_refresh
        codegen.unserialize_library = checked_unserialize
        try:
            yield
        finally:
            del target_context.refresh, codegen.unserialize_library  # the class's methods again


def external_symbols_resolve(bitcode: bytes) -> bool:
    """Whether every function and global a compiled library declares but does not define is
    known to LLVM's symbol table (a name LLVM cannot resolve would abort the process when the
    code is linked)."""
    import llvmlite.binding as ll

    module = ll.parse_bitcode(bitcode)
    declared = [f.name for f in module.functions if f.is_declaration and not f.name.startswith("llvm.")]
    declared += [g.name for g in module.global_variables if g.is_declaration]
    return all(ll.address_of_symbol(name) for name in declared)


def function_from_source(source: str, name: str, env: dict[str, Any], key: str | None) -> Callable:
    """Execute ``source`` with ``env`` (plus ``numba`` and ``np``) as its globals and return
    the function ``name``, registered for caching under ``key``."""
    import numba
    import numpy as np

    # __name__: numba rebuilds a cached function's environment by importing its module
    namespace = {"__name__": __name__, "numba": numba, "np": np, **env}
    exec(compile(source, f"<bayes_msc_callback_{name}>", "exec"), namespace)  # noqa: S102
    function = namespace[name]
    _KEYS[function] = key
    STATS["generated"] += 1
    STATS["keyed"] += key is not None
    return function


def anonymous_layout(dtype) -> Any:
    """A dtype's byte layout (offsets, kinds, shapes) without its field names."""
    if dtype.names:
        return [[int(dtype.fields[n][1]), anonymous_layout(dtype.fields[n][0])] for n in dtype.names]
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return [base.str, list(shape)]
    return dtype.str


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("numba", "llvmlite", "pytensor", "nutpie")}


def _private_dir() -> str:
    if not _PRIVATE_DIR:
        path = tempfile.mkdtemp(prefix="bayes_msc_uncached_")
        atexit.register(shutil.rmtree, path, True)
        _PRIVATE_DIR.append(path)
    return _PRIVATE_DIR[0]


_LOCATOR: list[type] = []
_LOCATOR_USERS = [0]
_LOCATOR_LOCK = threading.Lock()


@contextlib.contextmanager
def locator_registered() -> Iterator[None]:
    """Our locator first in numba's list of cache locators, for the duration of the block
    only (numba asks the locators when a function's cache is set up, which happens while
    the callbacks are compiled or loaded, inside the block); re-entrant and thread-safe."""
    from numba.core.caching import CacheImpl

    locator = _locator_class()
    with _LOCATOR_LOCK:
        if _LOCATOR_USERS[0] == 0:
            CacheImpl._locator_classes.insert(0, locator)
        _LOCATOR_USERS[0] += 1
    try:
        yield
    finally:
        with _LOCATOR_LOCK:
            _LOCATOR_USERS[0] -= 1
            if _LOCATOR_USERS[0] == 0 and locator in CacheImpl._locator_classes:
                CacheImpl._locator_classes.remove(locator)


def _locator_class() -> type:
    """The locator class (defined once per process: numba compares classes by identity)."""
    if _LOCATOR:
        return _LOCATOR[0]
    from numba.core.caching import _CacheLocator
    from pytensor.link.numba.cache import NUMBA_CACHE_PATH

    class CallbackCacheLocator(_CacheLocator):
        """Cache entries of generated callbacks, told apart by their key."""

        def __init__(self, py_func, py_file, key: str | None):
            self._py_func, self._py_file, self._key = py_func, py_file, key

        def ensure_cache_path(self):
            Path(self.get_cache_path()).mkdir(parents=True, exist_ok=True)

        def get_cache_path(self):
            return str(NUMBA_CACHE_PATH) if self._key is not None else _private_dir()

        def get_source_stamp(self):
            return 0  # the key covers the source

        def get_disambiguator(self):
            if self._key is None:  # never found again: each process compiles it
                import uuid

                return "uncached" + uuid.uuid4().hex
            return self._key

        @classmethod
        def from_function(cls, py_func, py_file):
            if py_func in _KEYS:
                return cls(py_func, py_file, _KEYS[py_func])
            return None

    _LOCATOR.append(CallbackCacheLocator)
    return CallbackCacheLocator
