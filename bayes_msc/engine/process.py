"""Set-up of a process this package owns: the command line (``python -m bayes_msc``) and the
benchmark's child processes, never a library caller's process (see :mod:`bayes_msc.engine.runtime`)."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

from . import runtime
from .runtime import CACHE_ENV, user_chose_compiledir

# gen-0 threshold of a process this package owns: numba's compiler allocates millions of objects
YOUNG_THRESHOLD = 20_000


def own_process() -> None:
    """Set up a process this package owns (the command line; not for library callers).

    * ``BAYES_MSC_CACHE_DIR`` (when set, and ``PYTENSOR_FLAGS`` does not choose a compile
      folder itself) becomes pytensor's compile folder: ``<dir>/pytensor``. It must be set
      before pytensor is imported; a process that imported it already keeps its folder.
    * Python's young garbage collections run every 20,000 allocations instead of 700:
      measured on 2 cores, the collector took 1.3 s of a 14.8 s cold fit (1,647 collections)
      and 0.23 s of a 2.1 s warm one, walking the millions of objects the imports create
      while numba's compiler allocates. The collector still runs; no result depends on
      when it does (bit-identical draws, checked). At the first compile the objects alive
      then are frozen out of its way (:func:`bayes_msc.engine.runtime.before_compile`).
    * The lean imports (:mod:`bayes_msc.accel.lean_imports`), where their versions match.
    """
    if os.environ.get(CACHE_ENV) and not user_chose_compiledir() and "pytensor" not in sys.modules:
        flags = [f for f in os.environ.get("PYTENSOR_FLAGS", "").split(",") if f]
        os.environ["PYTENSOR_FLAGS"] = ",".join(flags + [f"base_compiledir={Path(os.environ[CACHE_ENV]) / 'pytensor'}"])
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], YOUNG_THRESHOLD), *thresholds[1:])
    runtime.mark_owned()  # the imports' objects are frozen at the first compile (runtime.before_compile)
    from .. import accel

    if accel.enabled("imports"):
        from ..accel import lean_imports

        accel.guarded("lean imports", lean_imports.install)


