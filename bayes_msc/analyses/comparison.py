"""Which dose-response form do the data support? Leave-one-study-out PSIS-LOO across forms.

Each form (none, loglinear, emax) is fitted to the studies that every form can use, and
compared by PSIS-LOO with the study as the unit left out (:mod:`bayes_msc.analyses.loo`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..models.choices import DOSE_RESPONSE_FORMS
from .loo import loo_by_study


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


def compare_forms(spec, data=None, forms=DOSE_RESPONSE_FORMS, **fit_options) -> FormComparison:
    """Fit each form on the studies all forms can use, and compare them by PSIS-LOO."""
    import arviz_stats as azs

    from ..api import fit_spec, load_data, resolve_spec

    source = load_data(spec, data)
    specs = {form: resolve_spec(spec, dose_response=form, **fit_options) for form in forms}
    entered = {form: set(spec.outcome_type.build_evidence(source, s).studies) for form, s in specs.items()}
    common = set.intersection(*entered.values())
    left_out = {
        study: "enters only " + ", ".join(f for f in forms if study in entered[f])
        for study in sorted(set.union(*entered.values()) - common)
    }
    results, loos = {}, {}
    for form, form_spec in specs.items():
        form_spec = form_spec.with_evidence(exclude_studies=tuple(form_spec.evidence.exclude_studies) + tuple(left_out))
        result = fit_spec(form_spec, source)
        results[form] = result
        loos[form], studies = loo_by_study(result.tree)  # high Pareto k is reported below, per study
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = azs.compare(loos, round_to="none")
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
