"""Leave-one-study-out PSIS-LOO from a fitted tree: the study is the unit left out.

A study's arms (or terms) share its random effect and its baseline, so leaving out one arm
would not be a prediction of new data; the log-likelihood is summed per study first.
"""

from __future__ import annotations

import warnings

import xarray as xr


def study_log_likelihood(tree) -> xr.DataArray:
    """Log-likelihood per study (chain, draw, study): the sum over each study's reports."""
    loglik = tree["log_likelihood"].to_dataset()
    parts = []
    for name, var in loglik.data_vars.items():
        (dim,) = [d for d in var.dims if d not in ("chain", "draw")]
        studies = [str(label).split("/")[0] for label in var[dim].values]
        parts.append(var.assign_coords(study=(dim, studies)).groupby("study").sum(dim))
    # a study absent from one part (e.g. no partial report) contributes 0 there
    return xr.concat(parts, "part", join="outer", fill_value=0.0).sum("part").transpose("chain", "draw", "study")


def loo_by_study(tree):
    """PSIS-LOO (arviz-stats ``ELPDData``) leaving out one study at a time, with pointwise
    Pareto k, and the study ids in the order of its pointwise values. High-k warnings are
    silenced: callers report k per study."""
    import arviz_stats as azs

    per_study = tree.copy()
    loglik = study_log_likelihood(tree)
    per_study["log_likelihood"] = xr.Dataset({"study_loglik": loglik})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        loo = azs.loo(per_study, pointwise=True, var_name="study_loglik")
    return loo, [str(s) for s in loglik["study"].values]
