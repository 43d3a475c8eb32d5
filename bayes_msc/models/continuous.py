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

A term reported without any spread (Martínez-Muñoz 2024: a change with no SD, IQR, CI or P
value) has ``s_t = sigma_j / sqrt(n_t)`` with its study's SD a parameter (see :func:`_borrowed_se`)::

    log SD_i ~ Normal(m, s) for the k reported SDs and for the missing sigma_j; p(m, s) ∝ 1/s

integrated over (m, s) in closed form: log sigma_j has the posterior predictive Student-t with
k - 1 degrees of freedom, location mean(log SD_i) and scale sd(log SD_i) sqrt(1 + 1/k) (Gelman
et al., Bayesian Data Analysis, 3rd ed., §3.2). So the missing SD is borrowed, with its
uncertainty, from the SDs the other trials report (the Cochrane Handbook 6.5.2.8 imputes one
fixed SD instead); sampling (m, s) explicitly gave funnels with so few reported SDs.
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
    missing = _missing_sd_inputs(evidence)
    if missing is not None:  # only then: models without such terms keep their structure
        values.update(missing)
        coords["missing_term"] = tuple(coords["term"][i] for i in missing["missing_term"])
        coords["missing_sd_study"] = tuple(dict.fromkeys(evidence.terms["study_id"].iloc[missing["missing_term"]]))
        structure["missing_sd"] = True
    return with_doses(ModelInputs("continuous", values, coords, structure), terms, evidence.studies, model)


def _missing_sd_inputs(evidence) -> dict | None:
    """Layout and data for terms whose SD is borrowed; None when every term has its own SE."""
    terms = evidence.terms
    if "sd_missing" not in terms or not terms["sd_missing"].fillna(False).astype(bool).any():
        return None
    flags = terms["sd_missing"].fillna(False).astype(bool).to_numpy()
    reported = np.asarray(getattr(evidence, "reported_sds", ()), dtype="float64")
    # one SD per study (its arms were measured alike), shared by that study's terms
    studies = list(dict.fromkeys(terms.loc[flags, "study_id"]))
    return {
        "missing_term": np.flatnonzero(flags).astype("int64"),
        "missing_term_study": np.array([studies.index(s) for s in terms.loc[flags, "study_id"]], dtype="int64"),
        "missing_n": terms.loc[flags, "n"].to_numpy("float64"),
        # 0 once masked (OxygenationEvidence.masked): the term's own (huge) SE then stands
        "missing_active": (terms["sd_borrow_active"].to_numpy("float64")[flags] if "sd_borrow_active" in terms
                           else np.ones(int(flags.sum()))),
        **borrowed_log_sd_prior(reported),
    }


def borrowed_log_sd_prior(reported_sds) -> dict[str, np.ndarray]:
    """Student-t predictive of a new study's log SD from the k reported SDs (see module doc)."""
    log_sd = np.log(np.asarray(reported_sds, dtype="float64"))
    k = len(log_sd)
    if k < 2:
        from ..errors import InputError

        raise InputError("a change reported without any spread needs at least two reported SDs to borrow from")
    return {
        "borrowed_log_sd_nu": np.asarray(k - 1.0),
        "borrowed_log_sd_loc": np.asarray(log_sd.mean()),
        "borrowed_log_sd_scale": np.asarray(log_sd.std(ddof=1) * np.sqrt(1.0 + 1.0 / k)),
    }


def _borrowed_se(data, term_se):
    """Each term's SE, with the borrowed SDs in the slots of terms reported without spread."""
    import pymc as pm
    import pytensor.tensor as pt

    # standardised t, then located and scaled (the sampler sees a fixed-scale variable)
    t = pm.StudentT("borrowed_log_sd_t", nu=data["borrowed_log_sd_nu"], mu=0.0, sigma=1.0, dims="missing_sd_study")
    log_sd = pm.Deterministic("borrowed_log_sd", data["borrowed_log_sd_loc"] + data["borrowed_log_sd_scale"] * t,
                              dims="missing_sd_study")
    borrowed = pm.Deterministic("borrowed_sd", pt.exp(log_sd), dims="missing_sd_study")
    active = data["missing_active"]
    own = term_se[data["missing_term"]]
    se = active * borrowed[data["missing_term_study"]] / pt.sqrt(data["missing_n"]) + (1.0 - active) * own
    return pt.set_subtensor(term_se[data["missing_term"]], se)


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
        se = _borrowed_se(data, data["term_se"]) if inputs.structure.get("missing_sd") else data["term_se"]
        pm.Normal("estimate", mu=mean, sigma=se, observed=data["term_estimate"], dims="term")
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
    se = np.broadcast_to(v["term_se"], term_means(posterior, inputs).shape).copy()
    if inputs.structure.get("missing_sd"):
        borrowed = posterior["borrowed_sd"].transpose("chain", "draw", "missing_sd_study").values
        borrowed = borrowed[..., v["missing_term_study"]] / np.sqrt(v["missing_n"])
        active = v["missing_active"]
        se[..., v["missing_term"]] = active * borrowed + (1.0 - active) * v["term_se"][v["missing_term"]]
    loglik = xr.DataArray(
        stats.norm.logpdf(v["term_estimate"], term_means(posterior, inputs), se),
        dims=(*dims, "term"),
        coords={**coords, "term": list(inputs.coords["term"])},
    )
    roles = {"tau": priors.heterogeneity}
    if inputs.structure["natural_course"]:
        roles.update(nc_mean=priors.baseline, nc_sd=priors.baseline_heterogeneity)
    logprior = {name: xr.apply_ufunc(prior.scipy().logpdf, posterior[name]) for name, prior in roles.items()}
    logprior.update(effect_log_prior(posterior, inputs, priors, "mu"))
    if inputs.structure.get("missing_sd"):
        logprior["borrowed_log_sd_t"] = xr.apply_ufunc(stats.t(v["borrowed_log_sd_nu"]).logpdf,
                                                       posterior["borrowed_log_sd_t"])
    for name in ("study_effect_z", "natural_course_z"):
        if name in posterior:
            logprior[name] = xr.apply_ufunc(stats.norm.logpdf, posterior[name])
    return xr.Dataset({"estimate": loglik}), xr.Dataset(logprior)
