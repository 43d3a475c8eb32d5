"""Which dose? The effect-versus-dose curve, probabilities at each dose, the best dose, and a
comparison of dose-response forms by leave-one-study-out PSIS-LOO.

Everything here is computed from a fitted dose-response posterior (``model.dose_response``
"loglinear" or "emax"); doses are million cells/kg on the spec's metric (per infusion or
cumulative). Benefit is a lower odds of death (mortality) or a larger PaO2/FiO2 change
(oxygenation). The best dose is searched only inside the range of doses the trials gave:
outside it the curve is the prior's extrapolation, not evidence.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from .decisions import interval, probability
from .models.dose_response import posterior_curve

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
    scale: str  # "log_odds_ratio" or the continuous unit
    curve: xr.Dataset
    table: pd.DataFrame
    best_dose: dict
    studied_range: tuple[float, float]

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
        name = "odds_ratio" if "odds_ratio" in self.curve else "effect"
        draws = self.curve[name].stack(sample=("chain", "draw"))
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
    form = spec.model.dose_response
    mortality = spec.outcome == "mortality"
    effect_name = "log_or" if mortality else "mu"
    low, high = studied_dose_range(posterior, inputs)
    fine = np.unique(np.concatenate([np.geomspace(low, high, FINE_GRID_POINTS), [d for d in spec.model.dose_grid]]))
    effect = posterior_curve(posterior, form, effect_name, fine, spec.model.reference_dose)
    curve = xr.Dataset({"effect": effect})
    decision = spec.decision
    if mortality:
        from scipy.special import expit, logit

        curve["odds_ratio"] = np.exp(effect)
        curve["treated_risk"] = xr.apply_ufunc(expit, logit(decision.baseline_risk) + effect)
        benefit = effect < 0
        meaningful = effect < np.log(decision.clinically_meaningful_or)
        lower_is_better = True
    else:
        increase = decision.benefit_direction == "increase"
        signed = decision.clinically_meaningful_difference * (1 if increase else -1)
        benefit = effect > 0 if increase else effect < 0
        meaningful = effect > signed if increase else effect < signed
        lower_is_better = not increase
    rows = []
    for dose in spec.model.dose_grid:
        at = {"dose": dose}
        iv = interval((curve["odds_ratio"] if mortality else effect).sel(dose=dose), 0.95)
        iv50 = interval((curve["odds_ratio"] if mortality else effect).sel(dose=dose), 0.5)
        pb, pm_ = probability(benefit.sel(dose=dose)), probability(meaningful.sel(dose=dose))
        at.update(
            median=iv.median, lower_50=iv50.lower, upper_50=iv50.upper, lower_95=iv.lower, upper_95=iv.upper,
            prob_benefit=pb.prob, prob_benefit_mcse=pb.mcse, prob_meaningful=pm_.prob, prob_meaningful_mcse=pm_.mcse,
            extrapolated=not (low * (1 - 1e-9) <= dose <= high * (1 + 1e-9)),
        )
        if mortality:
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
        scale="log_odds_ratio" if mortality else (decision_unit(spec) or "effect"),
        curve=curve,
        table=pd.DataFrame(rows),
        best_dose=best,
        studied_range=(low, high),
    )


def decision_unit(spec) -> str:
    return "mmHg" if spec.outcome == "oxygenation" else ""


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


# -- comparing forms ----------------------------------------------------------------------


def study_log_likelihood(tree) -> xr.DataArray:
    """Log-likelihood per study (chain, draw, study): the sum over each study's reports.

    A study is the honest unit for leave-one-out here: its arms share a random effect and a
    baseline, so leaving out one arm would not be a prediction of new data.
    """
    loglik = tree["log_likelihood"].to_dataset()
    parts = []
    for name, var in loglik.data_vars.items():
        (dim,) = [d for d in var.dims if d not in ("chain", "draw")]
        studies = [str(label).split("/")[0] for label in var[dim].values]
        parts.append(var.assign_coords(study=(dim, studies)).groupby("study").sum(dim))
    # a study absent from one part (e.g. no partial report) contributes 0 there
    return xr.concat(parts, "part", join="outer", fill_value=0.0).sum("part").transpose("chain", "draw", "study")


@dataclass(frozen=True)
class FormComparison:
    """PSIS-LOO (leave one study out) across dose-response forms fitted to the same studies."""

    table: pd.DataFrame  # azs.compare output: elpd, se, elpd_diff, dse, weight per form
    pareto_k: pd.DataFrame  # study x form
    common_studies: tuple[str, ...]
    left_out: dict[str, str]  # study -> why it is not in the comparison
    statement: str
    results: dict  # form -> FitResult

    def to_dict(self) -> dict:
        return {
            "loo": self.table.reset_index(names="form").to_dict(orient="records"),
            "pareto_k": self.pareto_k.to_dict(),
            "common_studies": list(self.common_studies),
            "left_out": self.left_out,
            "statement": self.statement,
            "dose_response": {
                form: r.dose_response.to_dict() for form, r in self.results.items() if r.dose_response is not None
            },
            "diagnostics": {form: r.diagnostics.verdict() for form, r in self.results.items()},
        }


def compare_forms(spec, data=None, forms=("none", "loglinear", "emax"), **fit_options) -> FormComparison:
    """Fit each form on the studies all forms can use, and compare them by PSIS-LOO."""
    import arviz_stats as azs

    from .api import analysis_for, fit_spec, load_data, resolve_spec

    source = load_data(spec, data)
    specs = {form: resolve_spec(spec, dose_response=form, **fit_options) for form in forms}
    parts = analysis_for(spec.outcome)
    entered = {form: set(parts.build_evidence(source, s).studies) for form, s in specs.items()}
    common = set.intersection(*entered.values())
    left_out = {
        study: "enters only " + ", ".join(f for f in forms if study in entered[f])
        for study in sorted(set.union(*entered.values()) - common)
    }
    results, loos, trees = {}, {}, {}
    for form, form_spec in specs.items():
        form_spec = form_spec.with_evidence(exclude_studies=tuple(form_spec.evidence.exclude_studies) + tuple(left_out))
        result = fit_spec(form_spec, source)
        results[form] = result
        tree = result.tree.copy()
        per_study = study_log_likelihood(result.tree)
        tree["log_likelihood"] = xr.Dataset({"study_loglik": per_study})
        trees[form] = tree
        with warnings.catch_warnings():  # high Pareto k is reported below, per study
            warnings.simplefilter("ignore", UserWarning)
            loos[form] = azs.loo(tree, pointwise=True, var_name="study_loglik")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = azs.compare(loos, round_to="none")
    studies = [str(s) for s in per_study["study"].values]
    pareto_k = pd.DataFrame({form: np.asarray(loo.pareto_k).ravel() for form, loo in loos.items()}, index=studies)
    best = table.index[0]
    close = [f for f in table.index[1:] if abs(table.loc[f, "elpd_diff"]) < 2 * max(table.loc[f, "dse"], 1e-12)]
    high_k = int((pareto_k > 0.7).to_numpy().sum())
    statement = (
        f"Best by LOO: {best}. "
        + (f"The data cannot tell {best} apart from {', '.join(close)} (elpd difference < 2 standard errors). " if close else "")
        + (f"{high_k} Pareto k values exceed 0.7: with so few studies, LOO estimates are unreliable for those studies." if high_k else "All Pareto k <= 0.7.")
    )
    return FormComparison(table, pareto_k, tuple(sorted(common)), left_out, statement, results)
