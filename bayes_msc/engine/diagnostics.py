"""Sampler diagnostics on every fit, with a plain pass/fail per check.

Thresholds follow Vehtari et al. (Bayesian Analysis 2021) for R-hat and ESS, and Betancourt
(2016) for E-BFMI. ``arviz_stats.diagnose`` does not look at nutpie's tree-depth flag
(``maxdepth_reached``), so it is counted here explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

RHAT_MAX = 1.01
ESS_MIN = 400
BFMI_MIN = 0.3


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    threshold: str
    passed: bool
    detail: str = ""

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "value": _json_number(self.value),
            "threshold": self.threshold,
            "passed": self.passed,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Diagnostics:
    checks: tuple[Check, ...]
    per_variable: pd.DataFrame  # index: variable[coord]; columns r_hat, ess_bulk, ess_tail

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def verdict(self) -> str:
        if self.passed:
            return "PASS: all sampler diagnostics are within thresholds; the fit can be trusted."
        failed = ", ".join(c.name for c in self.checks if not c.passed)
        return f"FAIL: {failed} outside thresholds; do not use these numbers before fixing the fit."

    def to_dict(self) -> dict:
        return {"passed": self.passed, "verdict": self.verdict(), "checks": [c.to_dict() for c in self.checks]}


def _json_number(value: float):
    value = float(value)
    return value if np.isfinite(value) else None


def diagnose(tree, var_names: list[str]) -> Diagnostics:
    """R-hat, bulk/tail ESS over ``var_names``; divergences, tree depth and E-BFMI over the run."""
    import arviz_stats as azs

    posterior = tree["posterior"].to_dataset()[var_names]
    rhat = azs.rhat(posterior)
    ess_bulk = azs.ess(posterior, method="bulk")
    ess_tail = azs.ess(posterior, method="tail")
    rows = []
    for name in var_names:
        flat = {
            key: np.atleast_1d(ds[name].values).ravel()
            for key, ds in (("r_hat", rhat), ("ess_bulk", ess_bulk), ("ess_tail", ess_tail))
        }
        labels = _element_labels(posterior[name])
        for i, label in enumerate(labels):
            rows.append({"variable": label, **{k: float(v[i]) for k, v in flat.items()}})
    table = pd.DataFrame(rows).set_index("variable")

    stats = tree["sample_stats"].to_dataset()
    n_draws = int(stats.sizes["chain"] * stats.sizes["draw"])
    divergences = int(stats["diverging"].sum())
    maxdepth = int(stats["maxdepth_reached"].sum())
    bfmi = np.atleast_1d(azs.bfmi(stats["energy"]).values)

    checks = (
        _worst_check("R-hat", table["r_hat"], RHAT_MAX, larger_is_worse=True),
        _worst_check("bulk ESS", table["ess_bulk"], ESS_MIN, larger_is_worse=False),
        _worst_check("tail ESS", table["ess_tail"], ESS_MIN, larger_is_worse=False),
        Check("divergences", divergences, "= 0", divergences == 0, f"of {n_draws} draws"),
        Check("maxdepth_reached", maxdepth, "= 0", maxdepth == 0, f"of {n_draws} draws"),
        _worst_check("E-BFMI", pd.Series(bfmi, dtype=float), BFMI_MIN, larger_is_worse=False, detail="lowest chain"),
    )
    return Diagnostics(checks, table)


def _worst_check(name: str, values: pd.Series, limit: float, *, larger_is_worse: bool, detail: str = "") -> Check:
    """The worst value against its threshold. A statistic that is NaN everywhere (one draw,
    or a chain too short to split) is "not computable" and fails: nothing says the fit is
    fine. NaN for some variables only (e.g. a chain stuck at one value) is the worst value
    of all, so it fails too instead of being skipped by max/min."""
    threshold = f"{'<=' if larger_is_worse else '>='} {limit}"
    defined = np.isfinite(values.to_numpy(dtype=float))
    if not defined.any():
        return Check(name, float("nan"), threshold, False, f"{name} not computable (too few chains or draws)")
    if not defined.all():
        return Check(name, float("nan"), threshold, False, f"worst: {values.index[~defined][0]} (undefined)")
    worst = values.idxmax() if larger_is_worse else values.idxmin()
    value = float(values[worst])
    passed = value <= limit if larger_is_worse else value >= limit
    return Check(name, value, threshold, bool(passed), detail or f"worst: {worst}")


def _element_labels(da) -> list[str]:
    extra = [d for d in da.dims if d not in ("chain", "draw")]
    if not extra:
        return [da.name]
    index = pd.MultiIndex.from_product([da[d].values for d in extra]) if len(extra) > 1 else da[extra[0]].values
    return [f"{da.name}[{','.join(map(str, i)) if isinstance(i, tuple) else i}]" for i in index]
