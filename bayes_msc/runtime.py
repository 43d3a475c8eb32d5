"""Process-wide settings that must be in place before pytensor is first imported.

* pytensor's compile cache goes to a persistent per-user directory
  (:func:`bayes_msc.paths.cache_dir`), so a second process starts warm.
* numba's fastmath is switched off: with it on, a seeded run has been seen to differ in the
  last digits between a cold and a warm compile cache; off, the numbers are bit-identical and
  no slower for these models.

* plotting and Dask are not imported by a fit (:mod:`bayes_msc.lean_imports`).

A user who sets ``PYTENSOR_FLAGS`` themselves keeps their choices.
"""

from __future__ import annotations

import os
import sys

from .paths import cache_dir


def configure() -> None:
    from . import lean_imports

    lean_imports.install()
    flags = [f for f in os.environ.get("PYTENSOR_FLAGS", "").split(",") if f]
    names = {f.split("=", 1)[0].strip() for f in flags}
    if not names & {"base_compiledir", "compiledir"}:
        flags.append(f"base_compiledir={cache_dir() / 'pytensor'}")
    if "numba__fastmath" not in names:
        flags.append("numba__fastmath=False")
    os.environ["PYTENSOR_FLAGS"] = ",".join(flags)
    if "pytensor" in sys.modules:  # imported before us: at least make the numbers reproducible
        import pytensor

        if "numba__fastmath" not in names:
            pytensor.config.numba__fastmath = False
