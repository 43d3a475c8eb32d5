"""Optional speed-ups that rely on private names of nutpie, numba, pytensor, xarray and
arviz_base: the one place in the package allowed to.

Everything here is an optimisation of something the core does through public APIs alone,
and the core works, with the same numbers, without it:

* :mod:`.nutpie_callbacks` and :mod:`.callback_cache`: nutpie's two C callbacks written so
  numba compiles them faster and caches them on disk (a warm process loads them instead of
  compiling them);
* :mod:`.warm_start`: a warm process reassembles nutpie's compiled model from disk without
  building any pytensor function;
* :mod:`.compile_helper`: on two or more cores, a helper process compiles part of a cold
  model's log density meanwhile;
* :mod:`.lean_imports`: keeps plotting, Dask, setuptools and jax out of a process that does
  not use them. It installs import hooks and a stand-in module, so only a process this
  package owns uses it (the command line), never ``import bayes_msc`` or a library call.

Each feature is used only when exactly the versions it was written against are installed
(:data:`VERSIONS`; the ``bayes_msc[accel]`` extra and the project's lock file install them),
and ``BAYES_MSC_ACCEL=0`` switches all of them off. Any exception inside a feature falls
back to the public path (:func:`guarded`) and says so under ``-v``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

SWITCH = "BAYES_MSC_ACCEL"

# The exact versions whose private names this package's accelerations were written against.
# Keep in step with the `accel` extra in pyproject.toml (a test checks they agree).
VERSIONS = {
    "nutpie": "0.16.11",
    "numba": "0.68.0",
    "llvmlite": "0.50.0",
    "pytensor": "3.3.8",
    "pymc": "6.4.0",
    "xarray": "2026.9.0",
    "arviz-base": "1.3.1",
    "lazy-loader": "0.6",
}

# What each feature reaches into, hence which versions it needs.
FEATURES = {
    "compile": ("nutpie", "numba", "llvmlite", "pytensor", "pymc"),  # callbacks, warm start, helper
    "imports": ("nutpie", "pytensor", "xarray", "arviz-base", "lazy-loader"),  # lean_imports
}


@functools.cache
def _installed(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def version_mismatches(feature: str) -> list[str]:
    """``name installed X, needs Y`` for each library ``feature`` needs at another version."""
    return [f"{name} {_installed(name) or 'not installed'}, needs {VERSIONS[name]}"
            for name in FEATURES[feature] if _installed(name) != VERSIONS[name]]


def switched_off() -> bool:
    from ..engine.runtime import switched_off as off

    return off(SWITCH)


def enabled(feature: str) -> bool:
    """Whether ``feature`` ("compile" or "imports") may be used in this process."""
    if switched_off():
        return False
    mismatches = guarded("checking versions", version_mismatches, feature, fallback=["version check failed"])
    if mismatches:
        _say_once(f"accel {feature}: not used ({'; '.join(mismatches)}); the public path is used")
        return False
    return True


@functools.cache
def _say_once(message: str) -> None:
    log.info(message)


T = TypeVar("T")


def guarded(what: str, function: Callable[..., T], *args: Any, fallback: T = None, **kwargs: Any) -> T:
    """``function(*args, **kwargs)``, or ``fallback`` if it raises anything but an interrupt:
    a failure inside an acceleration is never the user's problem, the public path does the
    same work. Logged (``-v``) with what failed."""
    try:
        return function(*args, **kwargs)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 — any failure: fall back to the public path
        log.info("accel: %s failed (%s: %s); falling back to the public path", what, type(exc).__name__, exc)
        return fallback
