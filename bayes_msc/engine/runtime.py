"""Settings for this package's own compiled code, and for processes this package owns.

A library must leave its caller's process as it found it: ``import bayes_msc`` and library
calls change no environment variable, import hook, module table entry, or pytensor or numba
setting (a test checks each). So there are two kinds of setting here:

* :func:`compile_settings`, in force only while this package compiles or evaluates its own
  models: numba's fastmath off. With it on, a seeded run has been seen to differ in the
  last digits between a cold and a warm compile cache; off, the numbers are bit-identical
  and no slower for these models. pytensor reads the flag when it compiles each operation
  and keys its cache by it, so entries compiled here never serve a caller's fastmath
  functions, nor the other way round.
* :func:`bayes_msc.engine.process.own_process`, for a process this package started and owns
  (``python -m bayes_msc``, the benchmark's children): pytensor's compile folder under
  ``BAYES_MSC_CACHE_DIR`` when that is set, fewer garbage collections, and the lean
  imports of :mod:`bayes_msc.accel.lean_imports`.

Without ``BAYES_MSC_CACHE_DIR`` both the command line and library calls compile into
pytensor's own cache folder (``PYTENSOR_FLAGS`` chooses it, as for any PyMC model), so
``python -m bayes_msc warm`` fills the cache that library calls use too.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

CACHE_ENV = "BAYES_MSC_CACHE_DIR"


@contextlib.contextmanager
def compile_settings() -> Iterator[None]:
    """pytensor's settings for compiling and evaluating this package's models, restored
    afterwards (pytensor's public ``config.change_flags``). While the block runs they hold
    for the whole process, as pytensor's settings do: another thread compiling at that
    moment would compile with them too."""
    import pytensor

    with pytensor.config.change_flags(numba__fastmath=False):
        yield


# Set by bayes_msc.engine.process.own_process only: in a process this package owns, the objects the
# imports created are frozen out of the garbage collector's way at the first compile.
_OWNED_PROCESS = {"owned": False, "frozen": False}


def mark_owned() -> None:
    """This process is the package's own (:func:`bayes_msc.engine.process.own_process`)."""
    _OWNED_PROCESS["owned"] = True


def before_compile() -> None:
    """At the first compile in a process this package owns (never in a caller's process):
    freeze the objects alive then — nearly all of them modules, classes and functions that
    live as long as the process, a few million after importing pytensor, PyMC, numba and
    scipy — so that no full collection walks them again (``gc.freeze``). Measured on 2 cores:
    full collections took a share of every fit in a process that refits (sweeps, SBC), and
    1.3 s of a cold fit with the default thresholds. No result depends on when the collector
    runs (bit-identical draws, checked)."""
    if _OWNED_PROCESS["owned"] and not _OWNED_PROCESS["frozen"]:
        import gc

        gc.freeze()
        _OWNED_PROCESS["frozen"] = True


def _flag_names(text: str) -> set[str]:
    return {f.split("=", 1)[0].strip() for f in text.split(",") if f}


def user_chose_compiledir() -> bool:
    return bool(_flag_names(os.environ.get("PYTENSOR_FLAGS", "")) & {"base_compiledir", "compiledir"})


def switched_off(variable: str) -> bool:
    """Whether the environment variable ``variable`` (one of the package's on/off switches,
    on by default) says off: ``0``, ``false``, ``no`` or ``off``."""
    return os.environ.get(variable, "").strip().lower() in ("0", "false", "no", "off")


def child_environment(cache: Path, **environ: str) -> dict[str, str]:
    """The environment for a fresh ``python`` process of this package that compiles into
    ``cache``: this process's, less ``PYTENSOR_FLAGS``' choice of compile folder (the child
    sets its own from ``BAYES_MSC_CACHE_DIR``: :func:`bayes_msc.engine.process.own_process`), plus ``environ``."""
    env = dict(os.environ)
    kept = [f for f in env.pop("PYTENSOR_FLAGS", "").split(",")
            if f and f.split("=", 1)[0].strip() not in ("base_compiledir", "compiledir")]
    if kept:
        env["PYTENSOR_FLAGS"] = ",".join(kept)
    return {**env, CACHE_ENV: str(cache), **environ}


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the system has one)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def check_cache_dir() -> Path | None:
    """``BAYES_MSC_CACHE_DIR``, when set, is usable: a writable folder (or creatable), with
    no comma in its path (pytensor's flags are comma-separated: a comma would silently split
    the path). Raises an :class:`InputError` naming it. Nothing to check when it is not set
    (pytensor's own folder) or ``PYTENSOR_FLAGS`` chooses pytensor's folder itself."""
    from ..io.errors import InputError, Location
    from ..io.fileio import check_output_dir

    if not os.environ.get(CACHE_ENV) or user_chose_compiledir():
        return None
    path = Path(os.environ[CACHE_ENV])
    if "," in str(path):
        raise InputError(f"{path} contains a comma, which pytensor's flags cannot hold; choose another folder",
                         Location(CACHE_ENV))
    return check_output_dir(path, CACHE_ENV)
