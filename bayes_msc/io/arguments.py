"""Library arguments: a wrong type is named as the argument it was passed as.

``fit(priors=5)`` would otherwise fail deep inside with a bare ``TypeError``; here it is an
:class:`~bayes_msc.io.errors.InputError` that says ``fit(priors=...): expected a list of preset
names or prior strings, got int``. The pipeline (:mod:`bayes_msc.api`) and saved results
(:mod:`bayes_msc.results`) both check through this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import InputError
from ..priors import PriorSet
from ..spec import AnalysisSpec


def _kind(value: Any) -> str:
    return type(value).__name__


def _fail(caller: str, name: str, expected: str, value: Any) -> None:
    raise InputError(f"{caller}({name}=...): expected {expected}, got {_kind(value)}"
                     + (f" ({value!r})" if isinstance(value, (str, int, float)) and len(repr(value)) < 40 else ""))


def check_arguments(caller: str, **arguments: Any) -> None:
    """Refuse arguments of the wrong type, naming them as passed (``fit(priors=...)``)."""
    import numbers
    import os

    for name, value in arguments.items():
        if value is None:
            continue
        if name == "analysis":
            if not isinstance(value, (str, os.PathLike, AnalysisSpec)):
                _fail(caller, name, "an analysis name, a spec path or an AnalysisSpec", value)
        elif name == "priors":
            if isinstance(value, PriorSet) or isinstance(value, str):
                continue
            if isinstance(value, dict) or not isinstance(value, Iterable) or isinstance(value, bytes):
                _fail(caller, name, "a list of preset names or prior strings", value)
            for item in value:
                if not isinstance(item, str):
                    raise InputError(f"{caller}(priors=...): expected a list of preset names or prior strings, "
                                     f"got an item of type {_kind(item)} ({item!r})")
        elif name == "prior_params":
            if not isinstance(value, dict):
                _fail(caller, name, "a dict of 'role.parameter': number, e.g. {'effect.sigma': 1.0}", value)
            for key, number in value.items():
                if not isinstance(key, str):
                    raise InputError(f"{caller}(prior_params=...): keys are 'role.parameter' text, got {_kind(key)}")
                if isinstance(number, bool) or not isinstance(number, numbers.Real):
                    raise InputError(f"{caller}(prior_params=...): {key!r} must be a number, got {_kind(number)} "
                                     f"({number!r})")
        elif name in ("seed", "chains", "draws", "tune"):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                _fail(caller, name, "a whole number", value)
        elif name in ("clinically_meaningful", "target_accept", "threshold"):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                _fail(caller, name, "a number", value)
        elif name in ("evidence", "dose_response", "measure", "unit", "likelihood", "benefit_direction",
                      "effect_measure"):
            if not isinstance(value, str):
                _fail(caller, name, "text", value)


def check_data(caller: str, spec: AnalysisSpec, data: Any) -> None:
    """``data`` is a path (register folder, or the outcome's data file) or loaded data."""
    import os

    from ..evidence.estimates import EstimateTable
    from ..evidence.onetable import ContinuousTrials
    from ..evidence.register import Register

    if data is not None and not isinstance(data, (str, os.PathLike, Register, EstimateTable, ContinuousTrials)):
        _fail(caller, "data", f"{spec.outcome_type.data_description} (a path) or a loaded register", data)
