"""Which dose? The effect-versus-dose curve, probabilities at each dose, the best dose, and a
comparison of dose-response forms lives in :mod:`bayes_msc.analyses.comparison`.

Everything here is computed from a fitted dose-response posterior (``model.dose_response``
"loglinear" or "emax"); doses are million cells/kg on the spec's metric (per infusion or
cumulative). Benefit is a lower odds of death (mortality) or a larger PaO2/FiO2 change
(oxygenation). The best dose is searched only inside the range of doses the trials gave:
outside it the curve is the prior's extrapolation, not evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ..decisions import interval, probability
from ..models.dose_response import posterior_curve

FINE_GRID_POINTS = 200


@dataclass(frozen=True)
class DoseResponse:
    """Dose-response answers of one fit.

    Attributes
    ----------
    curve
        Dataset over (chain, draw, dose) on the fine grid: ``effect`` (log OR or mmHg) and,
        for mortality, ``odds_ratio`` and ``treated_risk`` at the spec's baseline risk.
    table
        One row per dose of the spec's ``dose_grid``: effect median and 50%/95% intervals,
        P(benefit) and P(clinically meaningful benefit) with MCSEs.
    best_dose
        Per-draw dose of greatest benefit within the studied range: median and 95% interval,
        the dose with the highest P(benefit), and how often the best dose is at an edge.
    """

    form: str
    metric: str
    scale: str  # the model scale of ``effect``: "log odds ratio", "mmHg", ...
    curve: xr.Dataset
    table: pd.DataFrame
    best_dose: dict
    studied_range: tuple[float, float]
    stated: str = "effect"  # the curve variable on the stated scale ("odds_ratio" for mortality)

    def to_dict(self) -> dict:
        return {
            "form": self.form,
            "dose_metric": self.metric,
            "dose_unit": "million cells/kg" + (" (cumulative)" if self.metric == "cumulative" else " per infusion"),
            "studied_range": list(self.studied_range),
            "table": self.table.to_dict(orient="records"),
            "best_dose": {k: v for k, v in self.best_dose.items() if k != "draws"},
        }

    def bands(self, ci_probs=(0.5, 0.95)) -> pd.DataFrame:
        """Median and equal-tailed bands of the curve per grid dose (for plots and reports)."""
        draws = self.curve[self.stated].stack(sample=("chain", "draw"))
        out = {"dose": self.curve["dose"].values, "median": draws.median("sample").values}
        for prob in ci_probs:
            lo, hi = (1 - prob) / 2, (1 + prob) / 2
            out[f"lower_{round(prob * 100)}"] = draws.quantile(lo, "sample").values
            out[f"upper_{round(prob * 100)}"] = draws.quantile(hi, "sample").values
        return pd.DataFrame(out)


def studied_dose_range(posterior, inputs) -> tuple[float, float]:
    """Smallest and largest cell-arm dose in the data (posterior medians for fixed doses)."""
    treated = inputs.values.get("arm_treated", inputs.values.get("term_treated")) > 0
    doses = posterior["unit_dose"].median(("chain", "draw")).values[treated]
    return float(doses.min()), float(doses.max())


def dose_response(posterior, inputs, spec) -> DoseResponse:
    """Curve, dose table and best dose from a dose-response posterior."""
    outcome = spec.outcome_type
    form = spec.model.dose_response
    low, high = studied_dose_range(posterior, inputs)
    fine = np.unique(np.concatenate([np.geomspace(low, high, FINE_GRID_POINTS), [d for d in spec.model.dose_grid]]))
    effect = posterior_curve(posterior, form, outcome.roles.pooled, fine, spec.model.reference_dose)
    curve = outcome.dose_curve(effect, spec)
    stated = curve[outcome.stated_curve_var]
    benefit = outcome.benefit_event(effect, None, spec)
    meaningful = outcome.benefit_event(effect, outcome.meaningful_threshold(spec), spec)
    lower_is_better = outcome.benefit_direction(spec) == "decrease"
    rows = []
    for dose in spec.model.dose_grid:
        at = {"dose": dose}
        iv = interval(stated.sel(dose=dose), 0.95)
        iv50 = interval(stated.sel(dose=dose), 0.5)
        pb, pm_ = probability(benefit.sel(dose=dose)), probability(meaningful.sel(dose=dose))
        at.update(
            median=iv.median, lower_50=iv50.lower, upper_50=iv50.upper, lower_95=iv.lower, upper_95=iv.upper,
            prob_benefit=pb.prob, prob_benefit_mcse=pb.mcse, prob_meaningful=pm_.prob, prob_meaningful_mcse=pm_.mcse,
            extrapolated=not (low * (1 - 1e-9) <= dose <= high * (1 + 1e-9)),
        )
        if "treated_risk" in curve:
            at["treated_risk_median"] = float(curve["treated_risk"].sel(dose=dose).median())
        rows.append(at)
    # The best dose is looked for only where there are data: the studied range.
    studied = fine[(fine >= low) & (fine <= high)]
    inside = effect.sel(dose=studied)
    best_index = (inside.argmin("dose") if lower_is_better else inside.argmax("dose")).values
    best_draws = xr.DataArray(studied[best_index], dims=("chain", "draw"))
    p_benefit = benefit.sel(dose=studied).mean(("chain", "draw")).values
    p_meaningful = meaningful.sel(dose=studied).mean(("chain", "draw")).values
    best = {
        "median": float(best_draws.median()),
        "lower_95": float(best_draws.quantile(0.025)),
        "upper_95": float(best_draws.quantile(0.975)),
        "prob_at_lowest_dose": float((best_index == 0).mean()),
        "prob_at_highest_dose": float((best_index == len(studied) - 1).mean()),
        "dose_max_prob_benefit": float(studied[np.argmax(p_benefit)]),
        "max_prob_benefit": float(p_benefit.max()),
        "prob_benefit_range": float(p_benefit.max() - p_benefit.min()),
        "dose_max_prob_meaningful": float(studied[np.argmax(p_meaningful)]),
        "max_prob_meaningful": float(p_meaningful.max()),
        "draws": best_draws,
    }
    best["note"] = _best_dose_note(best, low, high)
    return DoseResponse(
        form=form,
        metric=spec.model.dose_metric,
        scale=outcome.measure.model_scale,
        curve=curve,
        table=pd.DataFrame(rows),
        best_dose=best,
        studied_range=(low, high),
        stated=outcome.stated_curve_var,
    )


def _best_dose_note(best: dict, low: float, high: float) -> str:
    if high <= low * 1.01:
        return (
            f"every study in this analysis gave the same dose ({low:.2g}x10^6/kg): the data say nothing "
            "about how the effect changes with dose; away from that dose the curve is the prior's"
        )
    notes = []
    if best["prob_benefit_range"] < 0.01:
        notes.append(
            f"P(benefit) is the same at every dose ({best['max_prob_benefit']:.3f}): under this form the "
            "sign of the effect does not depend on dose, so the dose question is one of size; "
            f"P(clinically meaningful benefit) is highest ({best['max_prob_meaningful']:.3f}) at "
            f"{best['dose_max_prob_meaningful']:.2g}x10^6/kg"
        )
    edge = max(best["prob_at_lowest_dose"], best["prob_at_highest_dose"])
    if edge > 0.5:
        where = "highest" if best["prob_at_highest_dose"] >= best["prob_at_lowest_dose"] else "lowest"
        notes.append(
            f"in {edge:.0%} of draws the best dose is the {where} dose studied ({high if where == 'highest' else low:.2g}"
            "x10^6/kg): the data show no optimum inside the studied range, only a direction"
        )
    else:
        notes.append("the best dose lies inside the studied range in most draws")
    return "; ".join(notes)
