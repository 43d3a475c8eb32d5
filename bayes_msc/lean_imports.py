"""Keep plotting and Dask out of processes that do not use them.

Two libraries import far more than a fit needs, and a warm ``fit`` pays it on every run
(measured with ``python -X importtime``, 2 cores):

* nutpie imports the ``arviz`` meta-package to call ``arviz.from_dict`` and
  ``arviz.dict_to_dataset`` (both from ``arviz_base``); ``arviz`` itself imports
  ``arviz_plots`` and, through it, ``matplotlib.pyplot`` (about 0.5 s) and ``arviz_stats``'
  LOO machinery (about 0.6 s).
* xarray asks "is this a Dask array?" by importing ``dask.array`` and ``dask.base`` when
  Dask is installed (about 0.4 s), even for NumPy-backed data.

:func:`install` replaces both with exact, lazy stand-ins, only when the real module has
not been imported yet:

* ``arviz`` becomes a module that serves the two ``arviz_base`` functions nutpie calls and,
  on any other attribute, imports the real ``arviz`` and becomes it (its namespace is copied
  over and ``sys.modules`` points at the real module), so ``import arviz; arviz.plot_forest``
  in the same process still works;
* xarray's cached answer for "dask" reports no Dask array type while ``dask.array`` is not
  imported — no object can be a Dask array then — and defers to xarray's own lookup as
  soon as it is, or when anything else (version, availability) is asked; and xarray's
  "is this a Dask collection?" answers ``False`` itself for an object without a callable
  ``__dask_graph__`` (the first test of Dask's own function, which answers the same) and
  asks Dask otherwise.

Reports import ``arviz_plots`` themselves; ``--workers`` imports ``dask.distributed``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

_LIGHT_ARVIZ = ("from_dict", "dict_to_dataset")  # what nutpie 0.16 uses of `arviz`


class _DeferredArviz(types.ModuleType):
    """``arviz`` until something needs more of it than nutpie does."""

    def __getattr__(self, name: str):
        if name in _LIGHT_ARVIZ:
            import arviz_base

            return getattr(arviz_base, name)
        return getattr(self._become_real(), name)

    def _become_real(self) -> types.ModuleType:
        if sys.modules.get("arviz") is self:
            del sys.modules["arviz"]
        real = importlib.import_module("arviz")
        # Anyone holding this stand-in (nutpie.sample) now sees the real namespace.
        self.__dict__.update({k: v for k, v in real.__dict__.items() if k not in ("__class__",)})
        self.__class__ = types.ModuleType
        return real


class _DeferredDaskTypes:
    """xarray's record for "dask": no array types until ``dask.array`` is imported."""

    def __init__(self, real_factory):
        self._real_factory = real_factory

    @property
    def type(self):
        if "dask.array" not in sys.modules:
            return ()
        return self._resolve().type

    def _resolve(self):
        from xarray.namedarray import pycompat

        real = self._real_factory("dask")
        pycompat._cached_duck_array_modules["dask"] = real
        return real

    def __getattr__(self, name: str):  # module, version, available: ask for real
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._resolve(), name)


def _lazy_is_dask_collection(original):
    def is_dask_collection(x) -> bool:
        if isinstance(x, type) or not callable(getattr(x, "__dask_graph__", None)):
            return False  # what dask.base.is_dask_collection answers first, without importing dask
        return original(x)

    is_dask_collection.__wrapped__ = original
    return is_dask_collection


def install() -> None:
    """Put the stand-ins in place (idempotent; a no-op for modules already imported)."""
    if "arviz" not in sys.modules:
        spec = importlib.util.find_spec("arviz")
        if spec is not None:
            stand_in = _DeferredArviz("arviz", "lazy stand-in for arviz (see bayes_msc.lean_imports)")
            stand_in.__spec__ = spec
            stand_in.__file__ = spec.origin
            sys.modules["arviz"] = stand_in
    if "dask.array" not in sys.modules:
        try:
            from xarray.namedarray import pycompat
        except ImportError:  # pragma: no cover - xarray is a dependency
            return
        pycompat._cached_duck_array_modules.setdefault("dask", _DeferredDaskTypes(pycompat.DuckArrayModule))
    if "dask" not in sys.modules:
        from xarray.namedarray import utils

        if not hasattr(utils.is_dask_collection, "__wrapped__"):
            utils.is_dask_collection = _lazy_is_dask_collection(utils.is_dask_collection)
