"""Normal-likelihood models: oxygenation (PaO2/FiO2 change) and the classic normal-normal.

Each term t has an estimate y_t with a known standard error s_t (derived from what the trial
reported, :mod:`bayes_msc.evidence.oxygenation`)::

    contrast term:  y_t ~ Normal(theta_j, s_t)
    arm term:       y_t ~ Normal(nc_j + treated_t * theta_j, s_t)
    theta_j = mu + tau * z_j,            z_j ~ Normal(0, 1)       (non-centred)
    nc_j    = nc_mean + nc_sd * u_j,     u_j ~ Normal(0, 1)       (natural course)

``theta_j`` is study j's treatment effect (mean difference, cells minus control) and ``nc_j``
its natural course: the change in the outcome without cells. Because ``nc_j`` is
hierarchical, control arms of randomised trials inform the natural course of a single-arm
study, whose change then says something — as much as the spread of natural courses allows —
about the effect. With contrast terms only (the normal-normal model) there is no ``nc``.
"""

from __future__ import annotations

import numpy as np

from ..priors import PriorSet
from .dose_response import build_dose_effect, effect_log_prior, with_doses
from .inputs import ModelInputs, model_data, new_model, prior_data, prior_values


def continuous_inputs(evidence, priors: PriorSet, model=None) -> ModelInputs:
    """Model data from oxygenation or estimates evidence (pure; no PyMC).

    ``model`` (the spec's model settings) selects a dose-response form; default: none.
    """
    terms = evidence.terms
    values = {
        "term_study": terms["study_index"].to_numpy("int64"),
        "term_treated": terms["treated"].to_numpy("float64"),
        "term_is_arm": (terms["kind"] == "arm").to_numpy("float64"),
        "term_estimate": terms["estimate"].to_numpy("float64"),
        "term_se": terms["se"].to_numpy("float64"),
        **prior_values(priors),
    }
    coords = {
        "study": evidence.studies,
        "term": tuple(
            f"{s}/{a or 'contrast'}" + (f"-{c}" if c else "")
            for s, a, c in zip(terms["study_id"], terms["arm"], terms["comparator"])
        ),
    }
    structure = {
        "priors": list(priors.structure_key()),
        "natural_course": bool(evidence.natural_course),
        "dose_response": "none",
    }
    return with_doses(ModelInputs("continuous", values, coords, structure), terms, evidence.studies, model)


def build_continuous_model(inputs: ModelInputs, priors: PriorSet):
    import pymc as pm

    with new_model(inputs) as model:
        data = model_data(inputs)
        tau = priors.heterogeneity.build("tau", prior_data(data, "heterogeneity", priors.heterogeneity))
        z = pm.Normal("study_effect_z", 0.0, 1.0, dims="study")
        if inputs.structure["dose_response"] == "none":
            mu = priors.effect.build("mu", prior_data(data, "effect", priors.effect))
            theta = pm.Deterministic("study_effect", mu + tau * z, dims="study")
            term_effect = theta[data["term_study"]]
        else:  # the study's deviation plus the dose-response curve at the term's dose
            curve_at_term = build_dose_effect(data, inputs.structure, priors, "mu", "term")
            term_effect = pm.Deterministic("term_effect", (tau * z)[data["term_study"]] + curve_at_term, dims="term")
        mean = term_effect * data["term_treated"]
        if inputs.structure["natural_course"]:
            nc_mean = priors.baseline.build("nc_mean", prior_data(data, "baseline", priors.baseline))
            nc_sd = priors.baseline_heterogeneity.build(
                "nc_sd", prior_data(data, "baseline_heterogeneity", priors.baseline_heterogeneity)
            )
            u = pm.Normal("natural_course_z", 0.0, 1.0, dims="study")
            nc = pm.Deterministic("natural_course", nc_mean + nc_sd * u, dims="study")
            mean = mean + data["term_is_arm"] * nc[data["term_study"]]
        pm.Normal("estimate", mu=mean, sigma=data["term_se"], observed=data["term_estimate"], dims="term")
    return model


def term_means(posterior, inputs: ModelInputs) -> np.ndarray:
    """Each term's model mean per draw, shape (chain, draw, term)."""
    v = inputs.values
    if inputs.structure["dose_response"] == "none":
        effect = posterior["study_effect"].transpose("chain", "draw", "study").values[..., v["term_study"]]
    else:
        effect = posterior["term_effect"].transpose("chain", "draw", "term").values
    mean = effect * v["term_treated"]
    if inputs.structure["natural_course"]:
        nc = posterior["natural_course"].transpose("chain", "draw", "study").values
        mean = mean + v["term_is_arm"] * nc[..., v["term_study"]]
    return mean


def pointwise_log_density(posterior, inputs: ModelInputs, priors: PriorSet):
    """Log-likelihood per term and log-prior per parameter, with scipy (as for mortality)."""
    import xarray as xr
    from scipy import stats

    v = inputs.values
    dims = ("chain", "draw")
    coords = {d: posterior[d] for d in dims}
    loglik = xr.DataArray(
        stats.norm.logpdf(v["term_estimate"], term_means(posterior, inputs), v["term_se"]),
        dims=(*dims, "term"),
        coords={**coords, "term": list(inputs.coords["term"])},
    )
    roles = {"tau": priors.heterogeneity}
    if inputs.structure["natural_course"]:
        roles.update(nc_mean=priors.baseline, nc_sd=priors.baseline_heterogeneity)
    logprior = {name: xr.apply_ufunc(prior.scipy().logpdf, posterior[name]) for name, prior in roles.items()}
    logprior.update(effect_log_prior(posterior, inputs, priors, "mu"))
    for name in ("study_effect_z", "natural_course_z"):
        if name in posterior:
            logprior[name] = xr.apply_ufunc(stats.norm.logpdf, posterior[name])
    return xr.Dataset({"estimate": loglik}), xr.Dataset(logprior)
