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

* pytensor's ``pytensor.link.c.exceptions`` imports ``setuptools`` (about 0.1 s: setuptools
  imports distutils and packaging) for the base class of its ``CompileError``, which only a
  C compile raises; every pytensor function with the C virtual machine imports the module
  for ``MissingGXX`` — a warm fit's starting-point function does. The module is executed
  without its first line, and completed with it (``CompileError`` and all) when anything
  else is asked of it; only for the exact source this was written against.

* pytensor's virtual machine imports its C loop (``pytensor.link.c.cvm``) for every function
  it links, also for functions compiled without it (``use_cloop=False``: PyMC's
  starting-point function, ``FAST_COMPILE``), where it is then not used. Importing it
  compiles pytensor's ``lazylinker_c`` extension with the C compiler into a fresh compile
  cache (about 1 s of a first fit). For such functions the import is skipped (it fails as
  it does without a C compiler, and the VM pytensor would have chosen anyway is built);
  functions that do use the C loop import it as before. Only for pytensor 3.3.

* arviz_base's NumPyro converter loads ``jax`` and ``numpyro`` with lazy_loader, whose
  placeholders got jax executed in every fit where jax is installed (0.35 s, 100 MB): the
  converter gets stand-ins that import them on first use, and ``sys.modules`` holds nothing.

None of this imports xarray or pytensor: the patches for them are applied the moment their
modules are first imported (an import hook), so ``--help`` does not pay for xarray. A patch
that fails leaves its module as the library wrote it.

The upstream fix for each is a lazy import in that library (nutpie importing
``arviz_base`` instead of ``arviz``; xarray asking ``sys.modules`` whether Dask is loaded;
pytensor importing setuptools where a C compile needs it; pytensor's VM importing its C
loop only with ``use_cloop``; lazy_loader not executing placeholders found on the stack).

Reports import ``arviz_plots`` themselves; ``--workers`` imports ``dask.distributed``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import logging
import sys
import types

from . import guarded

log = logging.getLogger(__name__)

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


class _OnImport(importlib.abc.MetaPathFinder):
    """Runs ``hook(module, loader)`` in place of ``loader.exec_module(module)`` the first time
    a module is imported (the hook executes the module itself, then patches it)."""

    def __init__(self):
        self.hooks: dict[str, object] = {}

    def find_spec(self, fullname, path=None, target=None):
        hook = self.hooks.pop(fullname, None)
        if hook is None:
            return None
        try:
            return self._hooked_spec(fullname, path, target, hook)
        except Exception as exc:  # noqa: BLE001 — the import goes on as if we were not here
            log.info("accel: lean import of %s not applied (%s)", fullname, exc)
            return None

    def _hooked_spec(self, fullname, path, target, hook):
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _HookedLoader(spec.loader, hook)
        return spec


class _HookedLoader(importlib.abc.Loader):
    def __init__(self, loader, hook):
        self._loader, self._hook = loader, hook

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._hook(module, self._loader)

    def __getattr__(self, name: str):  # get_source, get_code, ...: the real loader's
        return getattr(self._loader, name)


_HOOKS = _OnImport()


def _on_import(name: str, hook) -> None:
    """``hook(module, loader)`` executes and patches ``name`` when it is first imported."""
    if _HOOKS not in sys.meta_path:
        sys.meta_path.insert(0, _HOOKS)
    _HOOKS.hooks[name] = hook


def _then(patch):
    """A hook that executes the module as usual, then applies ``patch`` to it (a patch that
    fails leaves the module as it is)."""

    def hook(module, loader):
        loader.exec_module(module)
        guarded(f"lean import of {module.__name__}", patch, module)

    return hook


def _safe(hook):
    """A hook that executes the module itself: if it fails, the module is executed as usual
    (what failed was ours, not the module's)."""

    def run(module, loader):
        try:
            hook(module, loader)
        except Exception as exc:  # noqa: BLE001
            log.info("accel: lean import of %s failed (%s); imported as usual", module.__name__, exc)
            loader.exec_module(module)

    return run


def _defer_dask_types(pycompat) -> None:
    if "dask.array" not in sys.modules:
        pycompat._cached_duck_array_modules.setdefault("dask", _DeferredDaskTypes(pycompat.DuckArrayModule))


def _defer_dask_collection(utils) -> None:
    if "dask" not in sys.modules and not hasattr(utils.is_dask_collection, "__wrapped__"):
        utils.is_dask_collection = _lazy_is_dask_collection(utils.is_dask_collection)


# pytensor.link.c.exceptions as this was written against (pytensor 3.3): the stand-in is used
# only for exactly this source.
_SETUPTOOLS_LINE = "from setuptools.errors import CompileError as BaseCompileError\n"
_MISSING_GXX = '''class MissingGXX(Exception):
    """This error is raised when we try to generate c code, but g++ is not available."""
'''
_C_EXCEPTIONS = _SETUPTOOLS_LINE + "\n\n" + _MISSING_GXX + '''

class CompileError(BaseCompileError):  # pyright: ignore
    """Custom `Exception` prints compilation errors with their original formatting."""

    def __str__(self):
        return self.args[0]
'''


def _c_exceptions_without_setuptools(module, loader) -> None:
    """Execute ``pytensor.link.c.exceptions`` up to ``MissingGXX``; the rest (which imports
    setuptools) on first use of anything else in it."""
    try:
        source = loader.get_source(module.__name__)
    except Exception:  # noqa: BLE001 — no source to check: execute it as it is
        source = None
    if source != _C_EXCEPTIONS:
        loader.exec_module(module)
        return
    filename = module.__spec__.origin or "<pytensor.link.c.exceptions>"
    exec(compile("\n" * 3 + _MISSING_GXX, filename, "exec"), module.__dict__)  # noqa: S102 (same lines as the file)
    missing_gxx = module.MissingGXX

    def complete(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        module.__dict__.pop("__getattr__", None)
        exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102
        module.MissingGXX = missing_gxx  # the class anyone imported already
        try:
            return module.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}") from None

    module.__getattr__ = complete


_CVM = "pytensor.link.c.cvm"


def _vm_without_unused_cvm(vm) -> None:
    """Let ``VMLinker.make_vm`` skip importing the C loop when it will not use it."""
    original = vm.VMLinker.make_vm
    if hasattr(original, "__wrapped__"):
        return

    def make_vm(self, *args, **kwargs):
        if self.use_cloop or _CVM in sys.modules:
            return original(self, *args, **kwargs)
        sys.modules[_CVM] = None  # `from pytensor.link.c.cvm import CVM` raises ImportError: CVM = None
        try:
            return original(self, *args, **kwargs)
        finally:
            if _CVM in sys.modules and sys.modules[_CVM] is None:
                del sys.modules[_CVM]

    make_vm.__wrapped__ = original
    vm.VMLinker.make_vm = make_vm


class _ImportOnUse(types.ModuleType):
    """A module name that imports the real module on first attribute access, without
    putting anything in ``sys.modules`` beforehand."""

    def __getattr__(self, name: str):
        return getattr(importlib.import_module(self.__name__), name)


def _numpyro_converter_without_placeholders(module, loader) -> None:
    """Execute ``arviz_base.io_numpyro`` with its two lazy_loader imports (``jax``,
    ``numpyro``) answered by :class:`_ImportOnUse`.

    lazy_loader puts a not-yet-executed module in ``sys.modules`` for an installed package,
    and for a missing one inspects the call stack, which reads every module in
    ``sys.modules`` and so executes such a placeholder. Either way jax ended up executed:
    at this import (jax installed, numpyro not), or when scipy's array-API checks read
    ``sys.modules["jax"].Array`` during a fit (both installed) — 0.35 s and 100 MB of every
    fit, measured with jax 0.12. With the stand-ins nothing is put in ``sys.modules``; the
    converter imports jax and numpyro when a NumPyro conversion first uses them."""
    import lazy_loader

    load = lazy_loader.load

    def load_on_use(fullname, *args, **kwargs):
        if fullname in ("jax", "numpyro") and fullname not in sys.modules:
            return _ImportOnUse(fullname)
        return load(fullname, *args, **kwargs)

    lazy_loader.load = load_on_use
    try:
        loader.exec_module(module)
    finally:
        lazy_loader.load = load


def install() -> None:
    """Put the stand-ins in place (idempotent; a no-op for modules already imported).

    For a process this package owns (the command line): it changes ``sys.modules`` and
    ``sys.meta_path``, which a library must not do to its caller's process."""
    if "arviz" not in sys.modules:
        spec = importlib.util.find_spec("arviz")
        if spec is not None:
            stand_in = _DeferredArviz("arviz", "lazy stand-in for arviz (see bayes_msc.accel.lean_imports)")
            stand_in.__spec__ = spec
            stand_in.__file__ = spec.origin
            sys.modules["arviz"] = stand_in
    for name, patch in (("xarray.namedarray.pycompat", _defer_dask_types),
                        ("xarray.namedarray.utils", _defer_dask_collection)):
        if name in sys.modules:
            patch(sys.modules[name])
        else:
            _on_import(name, _then(patch))
    if "arviz_base.io_numpyro" not in sys.modules:
        _on_import("arviz_base.io_numpyro", _safe(_numpyro_converter_without_placeholders))
    if "pytensor.link.c.exceptions" not in sys.modules:
        _on_import("pytensor.link.c.exceptions", _safe(_c_exceptions_without_setuptools))
    if "pytensor.link.vm" in sys.modules:
        _vm_without_unused_cvm(sys.modules["pytensor.link.vm"])
    else:
        _on_import("pytensor.link.vm", _then(_vm_without_unused_cvm))
