"""Process-wide settings that must be in place before pytensor is first imported.

* pytensor's compile cache goes to a persistent per-user directory
  (:func:`bayes_msc.paths.cache_dir`), so a second process starts warm.
* numba's fastmath is switched off: with it on, a seeded run has been seen to differ in the
  last digits between a cold and a warm compile cache; off, the numbers are bit-identical and
  no slower for these models.
* numba compiles for a generic CPU of this architecture (``NUMBA_CPU_NAME=generic``), not
  for this machine's CPU model: numba files compiled code under the CPU it was compiled for,
  so only portable machine code can be shipped with the package (:mod:`bayes_msc.prebuilt`)
  or shared by machines with different CPUs (a network home directory, Dask workers on
  several hosts). Measured on the mortality model (2 cores): sampling 0.30 s either way, and
  the draws bit-identical (fastmath off: no fused or reordered arithmetic either way).

* plotting and Dask are not imported by a fit (:mod:`bayes_msc.lean_imports`).

A user who sets ``PYTENSOR_FLAGS``, ``NUMBA_CPU_NAME`` or ``NUMBA_CPU_FEATURES`` themselves
keeps their choices.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from pathlib import Path

from .paths import cache_dir


# Whether the user's own PYTENSOR_FLAGS chose pytensor's compile folder (None: not configured yet).
USER_CHOSE_COMPILEDIR: bool | None = None


def user_chose_compiledir() -> bool:
    if USER_CHOSE_COMPILEDIR is not None:
        return USER_CHOSE_COMPILEDIR
    return bool(_flag_names(os.environ.get("PYTENSOR_FLAGS", "")) & {"base_compiledir", "compiledir"})


def _flag_names(text: str) -> set[str]:
    return {f.split("=", 1)[0].strip() for f in text.split(",") if f}


def configure() -> None:
    """Set pytensor's flags once per process. A second call must not read the flags the first
    one wrote as the user's own choice of compile folder."""
    global USER_CHOSE_COMPILEDIR
    if USER_CHOSE_COMPILEDIR is not None:
        return
    from . import lean_imports

    lean_imports.install()
    _portable_machine_code()
    flags = [f for f in os.environ.get("PYTENSOR_FLAGS", "").split(",") if f]
    names = _flag_names(",".join(flags))
    USER_CHOSE_COMPILEDIR = bool(names & {"base_compiledir", "compiledir"})
    if not USER_CHOSE_COMPILEDIR:
        flags.append(f"base_compiledir={cache_dir() / 'pytensor'}")
    if "numba__fastmath" not in names:
        flags.append("numba__fastmath=False")
    os.environ["PYTENSOR_FLAGS"] = ",".join(flags)
    if "pytensor" in sys.modules:  # imported before us: at least make the numbers reproducible
        import pytensor

        if "numba__fastmath" not in names:
            pytensor.config.numba__fastmath = False


PORTABLE_CPU = "generic"


def _portable_machine_code() -> None:
    """Have numba compile for a generic CPU (see the module docstring), unless the user chose a
    CPU, or numba has already set up code generation for this machine's CPU in this process
    (then its own choice stands: changing it midway would file new code under a CPU name that
    does not describe it)."""
    if "NUMBA_CPU_NAME" in os.environ or "NUMBA_CPU_FEATURES" in os.environ:
        return
    if "numba" in sys.modules:
        from numba.core.registry import cpu_target

        if "_toplevel_target_context" in vars(cpu_target):
            return
    os.environ["NUMBA_CPU_NAME"] = PORTABLE_CPU  # children (helper, workers) inherit it
    if "numba" in sys.modules:
        from numba.core import config

        config.reload_config()


def switched_off(variable: str) -> bool:
    """Whether the environment variable ``variable`` (one of the package's on/off switches,
    on by default) says off: ``0``, ``false``, ``no`` or ``off``."""
    return os.environ.get(variable, "").strip().lower() in ("0", "false", "no", "off")


def child_environment(cache: Path, **environ: str) -> dict[str, str]:
    """The environment for a fresh ``python`` process of this package that compiles into
    ``cache``: this process's, less the ``PYTENSOR_FLAGS`` :func:`configure` wrote into it
    (they name this process's compile folder; the child's own import sets its flags for
    ``cache``), plus ``environ``."""
    env = {name: value for name, value in os.environ.items() if name != "PYTENSOR_FLAGS"}
    return {**env, "BAYES_MSC_CACHE_DIR": str(cache), **environ}


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the system has one)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def check_cache_dir() -> Path | None:
    """The compile cache is usable: a writable folder (or creatable), with no comma in its
    path (pytensor's flags are comma-separated: a comma would silently split the path).
    Raises an :class:`InputError` naming ``BAYES_MSC_CACHE_DIR`` when it is set. Nothing to
    check when ``PYTENSOR_FLAGS`` chooses pytensor's folder itself."""
    from .errors import InputError, Location
    from .fileio import check_output_dir

    if user_chose_compiledir():
        return None
    path = cache_dir()
    what = "BAYES_MSC_CACHE_DIR" if os.environ.get("BAYES_MSC_CACHE_DIR") else "compile cache"
    if "," in str(path):
        raise InputError(f"{path} contains a comma, which pytensor's flags cannot hold; choose another folder",
                         Location(what))
    return check_output_dir(path, what)


# gen-0 threshold while a model is built and compiled: numba allocates millions of objects
YOUNG_THRESHOLD_WHILE_COMPILING = 20_000
_FROZEN: list[bool] = []


@contextlib.contextmanager
def fewer_collections():
    """Less of Python's cyclic garbage collection while a model is built and compiled.

    Measured on 2 cores, the collector took 1.3 s of a 14.8 s cold fit (1,647 collections, 9
    of them full) and 0.23 s of a 2.1 s warm one: each full collection walks every object
    the imports created (pytensor, PyMC, numba, scipy: a few million), and numba's compiler
    allocates enough to trigger hundreds of young ones. So at the first compile in a process
    the objects alive then — nearly all of them modules, classes and functions that live as
    long as the process — are moved out of the collector's way (``gc.freeze``; garbage among
    them is never reclaimed, a bounded one-off), and while compiling young collections run
    every 20,000 allocations instead of 700 (the threshold is restored afterwards). The
    collector still runs; no result depends on when it does (bit-identical draws, checked).
    Measured: cold 1.3 -> 0.44 s of collection, warm 0.23 -> 0.05 s.
    """
    if not _FROZEN:
        gc.freeze()
        _FROZEN.append(True)
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], YOUNG_THRESHOLD_WHILE_COMPILING), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
