"""A command imports only what it needs: no plotting or Dask for a fit (see
``bayes_msc.lean_imports``), and the lazy stand-ins are transparent to code that does use them."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("matplotlib", "arviz_plots", "dask", "distributed")


def _run(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_fit_command_imports_no_plotting_and_no_dask():
    found = _run(
        "import io, json, sys, contextlib\n"
        "from bayes_msc.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    code = main(['fit', 'mortality', '--json', '--chains', '2', '--draws', '50', '--tune', '50'])\n"
        f"print(json.dumps({{'code': code, 'heavy': sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})}}))"
    )
    assert found == {"code": 0, "heavy": []}


def test_stand_ins_become_the_real_modules_when_used():
    found = _run(
        "import json, sys\n"
        "from bayes_msc import lean_imports\n"
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
