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
