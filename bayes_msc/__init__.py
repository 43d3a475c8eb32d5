"""bayes_msc: Bayesian evidence synthesis of mesenchymal stromal cell therapy in ARDS.

Library use::

    import bayes_msc
    result = bayes_msc.fit("mortality", seed=1)
    result.prob_benefit()            # P(OR < 1) with its Monte Carlo SE
    result.summary()                 # ArviZ summary, 95% equal-tailed intervals
    register = bayes_msc.load_register("my_register/")
    bayes_msc.figure(result, "forest", "forest.pdf", sort="weight")  # a figure for a manuscript

Heavy dependencies (PyMC, nutpie) load on first use, so importing the package is cheap, and
importing it changes nothing in the caller's process: no environment variable, import hook,
module stand-in, or pytensor or numba setting (:mod:`bayes_msc.engine.runtime`).
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bayes_msc")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

_LAZY = {
    "fit": ("bayes_msc.api", "fit"),
    "warm": ("bayes_msc.api", "warm"),
    "resolve_spec": ("bayes_msc.api", "resolve_spec"),
    "load_register": ("bayes_msc.evidence.register", "load_register"),
    "Register": ("bayes_msc.evidence.register", "Register"),
    "load_binary_trials": ("bayes_msc.evidence.onetable", "load_binary_trials"),
    "load_continuous_trials": ("bayes_msc.evidence.onetable", "load_continuous_trials"),
    "load_spec": ("bayes_msc.spec", "load_spec"),
    "AnalysisSpec": ("bayes_msc.spec", "AnalysisSpec"),
    "FitResult": ("bayes_msc.results", "FitResult"),
    "load_result": ("bayes_msc.results", "load_result"),
    "figure": ("bayes_msc.report.manuscript", "figure"),
    "PriorSet": ("bayes_msc.priors", "PriorSet"),
    "InputError": ("bayes_msc.io.errors", "InputError"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        module, attribute = _LAZY[name]
        return getattr(import_module(module), attribute)
    raise AttributeError(f"module 'bayes_msc' has no attribute {name!r}")
