"""A command imports only what it needs: no plotting or Dask for a fit (see
``bayes_msc.accel.lean_imports``, which only the command line installs), and the lazy stand-ins
are transparent to code that does use them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import require_accel

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("matplotlib", "arviz_plots", "dask", "distributed")


@pytest.fixture
def lean():
    """The lean imports apply in this environment (their exact versions; always in CI)."""
    require_accel("imports")


def _run(code: str, environ: dict | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(environ or {})}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_fit_command_imports_no_plotting_and_no_dask(lean):
    found = _run(
        "import io, json, sys, contextlib\n"
        "from bayes_msc.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    code = main(['fit', 'mortality', '--json', '--chains', '2', '--draws', '50', '--tune', '50'])\n"
        f"print(json.dumps({{'code': code, 'heavy': sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})}}))"
    )
    assert found == {"code": 0, "heavy": []}


def test_stand_ins_become_the_real_modules_when_used(lean):
    found = _run(
        "import json, sys\n"
        "from bayes_msc.accel import lean_imports\n"
        "lean_imports.install()\n"
        "import nutpie  # imports `arviz` (the stand-in)\n"
        "stand_in = sys.modules['arviz']\n"
        "lazy = type(stand_in).__name__\n"
        "light = 'arviz_plots' not in sys.modules\n"
        "import arviz\n"
        "plots = callable(arviz.plot_forest)  # the real arviz, loaded on first use\n"
        "import dask.array as da, xarray as xr\n"
        "lazy_array = xr.DataArray(da.zeros(4, chunks=2))\n"
        "print(json.dumps({'lazy': lazy, 'light': light, 'plots': plots,\n"
        "                  'real': sys.modules['arviz'] is not stand_in and type(sys.modules['arviz']).__name__,\n"
        "                  'nutpie_sees_real': sys.modules['nutpie.sample'].arviz.plot_forest is arviz.plot_forest,\n"
        "                  'dask_chunks': lazy_array.chunks, 'dask_kept': type(lazy_array.data).__module__}))"
    )
    assert found["lazy"] == "_DeferredArviz" and found["light"]
    assert found["plots"] and found["real"] == "module" and found["nutpie_sees_real"]
    # xarray still recognises a Dask array made after the stand-in was installed
    assert found["dask_chunks"] == [[2, 2]] and found["dask_kept"].startswith("dask.array")


def test_help_imports_no_numerical_library():
    # `--help` must be instant: the lean-import patches for xarray wait for xarray's own import
    found = _run(
        "import io, json, sys, contextlib\n"
        "from bayes_msc.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        code = main(['--help'])\n"
        "    except SystemExit as exc:\n"
        "        code = exc.code\n"
        "print(json.dumps({'code': code, 'heavy': sorted(m for m in sys.modules\n"
        "                  if m.split('.')[0] in ('numpy', 'xarray', 'pandas', 'scipy', 'pytensor'))}))"
    )
    assert found == {"code": 0, "heavy": []}


def test_xarray_patched_when_imported_after_install(lean):
    found = _run(
        "import json, sys\n"
        "from bayes_msc.accel import lean_imports\n"
        "lean_imports.install()\n"
        "assert 'xarray' not in sys.modules\n"
        "import numpy as np, xarray as xr\n"
        "from xarray.namedarray import pycompat, utils\n"
        "from xarray.core import utils as core_utils\n"
        "print(json.dumps({'dask_types': type(pycompat._cached_duck_array_modules.get('dask')).__name__,\n"
        "                  'lazy': hasattr(utils.is_dask_collection, '__wrapped__'),\n"
        "                  'core_lazy': core_utils.is_dask_collection is utils.is_dask_collection,\n"
        "                  'dask': 'dask' in sys.modules,\n"
        "                  'works': float(xr.DataArray(np.arange(3.0)).sum())}))"
    )
    assert found == {"dask_types": "_DeferredDaskTypes", "lazy": True, "core_lazy": True, "dask": False, "works": 3.0}


def test_pytensor_c_exceptions_without_setuptools_until_used(lean):
    """pytensor's C virtual machine imports ``pytensor.link.c.exceptions`` for ``MissingGXX``;
    setuptools (the base of its ``CompileError``) is imported only when that is asked for,
    and the module is then pytensor's own (same classes, ``MissingGXX`` unchanged)."""
    found = _run(
        "import json, sys\n"
        "from bayes_msc.accel import lean_imports\n"
        "lean_imports.install()\n"
        "from pytensor.link.c.exceptions import MissingGXX\n"
        "before = 'setuptools' in sys.modules\n"
        "import pytensor.link.c.exceptions as exceptions\n"
        "from pytensor.link.c.exceptions import CompileError\n"
        "import setuptools.errors\n"
        "print(json.dumps({'before': before, 'after': 'setuptools' in sys.modules,\n"
        "                  'gxx': issubclass(MissingGXX, Exception) and exceptions.MissingGXX is MissingGXX,\n"
        "                  'gxx_module': MissingGXX.__module__,\n"
        "                  'compile_error': issubclass(CompileError, setuptools.errors.CompileError),\n"
        "                  'message': str(CompileError('g++ said no')),\n"
        "                  'base': exceptions.BaseCompileError is setuptools.errors.CompileError,\n"
        "                  'missing': not hasattr(exceptions, 'no_such_name')}))"
    )
    assert found == {"before": False, "after": True, "gxx": True, "gxx_module": "pytensor.link.c.exceptions",
                     "compile_error": True, "message": "g++ said no", "base": True, "missing": True}


def test_pytensor_c_exceptions_stand_in_only_for_the_source_it_knows(lean):
    """A pytensor whose module differs from the one the stand-in mirrors is executed as it is."""
    import types

    from bayes_msc.accel import lean_imports

    class Loader:
        def __init__(self, source):
            self.source, self.executed = source, False

        def get_source(self, name):
            return self.source

        def exec_module(self, module):
            self.executed = True

    for source, executed in ((lean_imports._C_EXCEPTIONS, False), (lean_imports._C_EXCEPTIONS + "X = 1\n", True)):
        module = types.ModuleType("pytensor.link.c.exceptions")
        module.__spec__ = types.SimpleNamespace(origin=None)
        loader = Loader(source)
        lean_imports._c_exceptions_without_setuptools(module, loader)
        assert loader.executed is executed
        assert hasattr(module, "MissingGXX") is not executed


def test_functions_without_the_c_loop_do_not_import_it(lean):
    """PyMC's starting-point function (``FAST_COMPILE``: no C loop) must not import pytensor's
    C loop, whose import compiles it with the C compiler into a fresh cache; functions that
    use the C loop still get it. Same VM, same values either way."""
    found = _run(
        "import json, sys\n"
        "from bayes_msc.accel import lean_imports\n"
        "lean_imports.install()\n"
        "import numpy as np, pytensor, pytensor.tensor as pt\n"
        "from pytensor.compile.mode import Mode\n"
        "x = pt.dvector('x')\n"
        "fast = pytensor.function([x], pt.exp(x).sum(), mode='FAST_COMPILE')\n"
        "fast_cvm = 'pytensor.link.c.cvm' in sys.modules\n"
        "cloop = pytensor.function([x], pt.exp(x).sum(), mode=Mode(linker='cvm'))\n"
        "print(json.dumps({'fast_cvm': fast_cvm, 'fast_vm': type(fast.vm).__name__,\n"
        "                  'fast': float(fast(np.array([0.0, 1.0]))), 'cloop': float(cloop(np.array([0.0, 1.0]))),\n"
        "                  'cloop_vm': type(cloop.vm).__name__, 'cxx': bool(pytensor.config.cxx),\n"
        "                  'cvm_after': 'pytensor.link.c.cvm' in sys.modules}))"
    )
    assert not found["fast_cvm"] and found["fast_vm"] == "Loop"
    assert found["fast"] == found["cloop"] == 1.0 + np.e
    if found["cxx"]:  # the C loop needs a C compiler
        assert found["cvm_after"] and found["cloop_vm"] == "CVM"


def _fake_jax(tmp_path: Path, with_numpyro: bool = False) -> tuple[dict, Path]:
    """A stand-in ``jax`` package that records being executed (the test needs no real jax),
    and optionally an empty ``numpyro``: lazy_loader treats a missing and an installed
    numpyro differently, and each route used to execute jax."""
    package = tmp_path / "site" / "jax"
    package.mkdir(parents=True)
    if with_numpyro:
        (tmp_path / "site" / "numpyro").mkdir()
        (tmp_path / "site" / "numpyro" / "__init__.py").write_text("")
    marker = tmp_path / "jax_executed"
    (package / "__init__.py").write_text(
        "import os\n"
        "open(os.environ['FAKE_JAX_MARKER'], 'a').write('executed\\n')\n"
        "class Array: pass\n"
        "def device_get(x): return ['device_get', x]\n"
    )
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(package.parent)]), "FAKE_JAX_MARKER": str(marker)}
    return env, marker


@pytest.mark.parametrize("with_numpyro", [False, True])
def test_a_fit_does_not_import_jax_where_jax_is_installed(tmp_path, with_numpyro, lean):
    """arviz_base's NumPyro converter loaded jax lazily with lazy_loader, whose placeholder got
    executed (by lazy_loader itself when numpyro is missing, by scipy's array-API checks
    during the fit when it is installed): every fit imported jax. Not any more."""
    env, marker = _fake_jax(tmp_path, with_numpyro)
    found = _run(
        "import io, json, sys, contextlib\n"
        "from bayes_msc.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    code = main(['fit', 'mortality', '--json', '--chains', '2', '--draws', '50', '--tune', '50'])\n"
        "print(json.dumps({'code': code, 'arviz_base': 'arviz_base' in sys.modules, 'jax': 'jax' in sys.modules}))",
        env,
    )
    assert found == {"code": 0, "arviz_base": True, "jax": False}
    assert not marker.exists(), "the fit executed jax"


def test_the_numpyro_converter_still_reaches_jax(tmp_path, lean):
    env, marker = _fake_jax(tmp_path)
    found = _run(
        "import json, sys\n"
        "from bayes_msc.accel import lean_imports\n"
        "lean_imports.install()\n"
        "import arviz_base.io_numpyro as converter\n"
        "before = 'jax' in sys.modules\n"
        "first = converter.jax.device_get(3)  # imports jax on first use\n"
        "import jax\n"
        "print(json.dumps({'before': before, 'first': first, 'same': converter.jax.device_get is jax.device_get,\n"
        "                  'real': type(sys.modules['jax']).__name__}))",
        env,
    )
    assert found == {"before": False, "first": ["device_get", 3], "same": True, "real": "module"}
    assert marker.read_text() == "executed\n"  # once
