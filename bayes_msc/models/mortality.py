"""The mortality model: arm-based binomial likelihood with study baselines.

For arm k of study j with n_jk patients and deaths_jk deaths::

    deaths_jk ~ Binomial(n_jk, p_jk)
    logit p_jk = baseline_j + treated_jk * study_log_or_j
    study_log_or_j = log_or + tau * z_j,    z_j ~ Normal(0, 1)     (non-centred)

``baseline_j`` (the study's control log-odds) has an independent prior per study, so each
trial's randomised comparison stays intact: the pooled effect is learnt from within-study
contrasts only. All arms of one study share that study's effect, so multi-arm trials are
not double-counted against their control. The non-centred form avoids the funnel that makes
few-study hierarchical models diverge. Partly reported counts enter through
:func:`bayes_msc.models.likelihood.partial_report_logp`.

With a dose-response form (:mod:`bayes_msc.models.dose_response`), a cell arm's effect is
its study's deviation ``tau * z_j`` plus the curve ``f(dose)`` at its dose, so within-study
dose contrasts inform the curve without a control arm.

Non-randomised studies (an evidence set other than "randomised"; see :func:`design_inputs`)
enter through one clearly separated term, chosen by the spec's ``model.nonrandomised``:

``bias`` (three-level model; Prevost, Abrams & Jones, Stat Med 2000; Welton et al., JRSS A
2009; ``jarbes`` in R)
    ``study_log_or_j = log_or + tau z_j + [j non-randomised] (design_bias_d(j) + kappa w_j)``:
    each non-randomised design d has its own bias, drawn from the ``design_bias`` prior, and its
    studies an extra between-study SD ``kappa`` (``design_heterogeneity`` prior). The pooled
    ``log_or`` stays the randomised effect.
``power_prior``
    the non-randomised studies' likelihood raised to ``w`` (``model.power_prior_weight``),
    written as a ``pm.Potential`` adding ``(w - 1)`` times their log-likelihood to the unchanged
    binomial terms. ``w`` is model data, so a new weight re-uses the compiled model.

The spec's ``model.likelihood`` chooses how arms inform the effect (:mod:`.sparse`): the
arm coding above, the symmetric coding (each arm moves by half the effect) or the
conditional likelihood given each study's total deaths (no baselines).
"""

from __future__ import annotations

import numpy as np

from ..evidence.mortality import MortalityEvidence
from ..evidence.schema import NONRANDOMISED_CONTROLLED
from ..priors import PriorSet
from . import populations  # target populations: the two POPULATION HOOK lines below
from .inputs import ModelInputs, model_data, new_model, prior_data, prior_values
from .dose_response import build_dose_effect, effect_log_prior, with_doses
from .likelihood import binomial_logpmf_logit, log_binomial_coefficient, pack_partial_reports, partial_report_logp
from . import regression, sparse


def mortality_inputs(evidence: MortalityEvidence, priors: PriorSet, model=None) -> ModelInputs:
    """Turn mortality evidence and priors into model data (pure; no PyMC).

    ``model`` (the spec's model settings) selects a dose-response form; default: none.
    """
    arms = evidence.arms
    exact = evidence.exact
    values = {
        "arm_study": arms["study_index"].to_numpy("int64"),
        "arm_treated": arms["treated"].to_numpy("float64"),
        "exact_arm": exact["arm_index"].to_numpy("int64"),
        "exact_n": exact["n"].to_numpy("float64"),
        "exact_deaths": exact["deaths"].to_numpy("float64"),
        "exact_log_choose": log_binomial_coefficient(exact["n"], exact["deaths"]),
        **prior_values(priors),
    }
    if evidence.partial:
        packed = pack_partial_reports(evidence.partial)
        values.update(
            partial_arm=packed.arm_index,
            partial_deaths=packed.deaths,
            partial_n=packed.n,
            partial_log_choose=packed.log_choose,
            partial_log_weight=packed.log_weight,
        )
    coords = {
        "study": evidence.studies,
        "arm": tuple(f"{s}/{a}" for s, a in zip(arms["study_id"], arms["arm_id"])),
        "exact_report": tuple(f"{s}/{a}" for s, a in zip(exact["study_id"], exact["arm_id"])),
        "partial_report": tuple(f"{r.study_id}/{'+'.join(r.arms)}" for r in evidence.partial),
    }
    # Hyperparameter values are data; only the prior families fix the graph.
    structure = {"priors": list(priors.structure_key()), "dose_response": "none"}
    design = design_inputs(evidence, priors, model)
    if design is not None:
        design_values, design_coords, structure["nonrandomised"] = design
        values.update(design_values)
        coords.update(design_coords)
    likelihood, baselines = sparse.likelihood_of(model)
    structure.update(likelihood=likelihood, baselines=baselines)
    values, coords = _likelihood_values(likelihood, evidence, values, coords, priors.baseline)
    regression.add_covariate_inputs(values, coords, structure, evidence, model)  # meta-regression (model.covariates)
    values, coords, structure = populations.with_population(evidence, model, values, coords, structure)  # POPULATION HOOK (models/populations.py)
    return with_doses(ModelInputs("mortality", values, coords, structure), arms, evidence.studies, model)


# -- non-randomised studies (a separate term; see the module docstring) -------------------


def nonrandomised_studies(evidence: MortalityEvidence) -> np.ndarray:
    """1.0 for each included study with non-randomised concurrent or historical/matched controls."""
    return np.array(
        [float(evidence.allocation_of(j) in NONRANDOMISED_CONTROLLED) for j in range(evidence.n_studies)]
    )


def design_inputs(evidence: MortalityEvidence, priors: PriorSet, model) -> tuple[dict, dict, str] | None:
    """Model data for the non-randomised term, or None when every included study is randomised
    (the model is then exactly the randomised one, same structure and compiled model).

    Returns ``(values, coords, method)``. Under ``bias`` the layout ``study_design`` (which
    design's bias each study takes) is compiled in; under ``power_prior`` the weight and the
    per-report indicators are float data.
    """
    flags = nonrandomised_studies(evidence)
    if not flags.any():
        return None
    method = getattr(model, "nonrandomised", "bias")
    if method == "bias":
        if priors.design_bias is None or priors.design_heterogeneity is None:
            from ..io.errors import InputError

            raise InputError("non-randomised studies entered but the spec has no design_bias / design_heterogeneity "
                             "prior (use an evidence set other than 'randomised')")
        designs = tuple(sorted({evidence.allocation_of(j) for j in range(evidence.n_studies) if flags[j]}))
        layout = np.array([designs.index(evidence.allocation_of(j)) if flags[j] else 0
                           for j in range(evidence.n_studies)], dtype="int64")
        return {"study_nonrandomised": flags, "study_design": layout}, {"design": designs}, method
    study_index = {s: j for j, s in enumerate(evidence.studies)}
    values = {
        "power_weight": np.asarray(float(model.power_prior_weight)),
        "exact_nonrandomised": np.array([flags[study_index[s]] for s in evidence.exact["study_id"]], dtype="float64"),
    }
    if evidence.partial:
        values["partial_nonrandomised"] = np.array([flags[study_index[r.study_id]] for r in evidence.partial])
    return values, {}, method


def _design_deviation(data, priors: PriorSet):
    """Each study's design bias plus its extra deviation (0 for randomised studies)."""
    import pymc as pm

    bias = priors.design_bias.build("design_bias", prior_data(data, "design_bias", priors.design_bias), dims="design")
    kappa = priors.design_heterogeneity.build(
        "design_kappa", prior_data(data, "design_heterogeneity", priors.design_heterogeneity)
    )
    extra_z = pm.Normal("design_study_z", 0.0, 1.0, dims="study")
    return data["study_nonrandomised"] * (bias[data["study_design"]] + kappa * extra_z)


def _power_prior_term(data, arm_logit) -> None:
    """Down-weight the non-randomised reports: add (w - 1) x their log-likelihood."""
    import pymc as pm

    logp = data["exact_nonrandomised"] * binomial_logpmf_logit(
        data["exact_deaths"], data["exact_n"], data["exact_log_choose"], arm_logit[data["exact_arm"]]
    )
    total = logp.sum()
    if "partial_nonrandomised" in data:
        partial = partial_report_logp(
            0.0, arm_logit[data["partial_arm"]], data["partial_deaths"], data["partial_n"],
            data["partial_log_choose"], data["partial_log_weight"],
        )
        total = total + (data["partial_nonrandomised"] * partial).sum()
    pm.Potential("nonrandomised_power_prior", (data["power_weight"] - 1.0) * total)


def _likelihood_values(likelihood: str, evidence: MortalityEvidence, values: dict, coords: dict, baseline_prior=None):
    """The data the chosen likelihood reads (see :mod:`.sparse`): the symmetric coding adds
    each study's centre weights; the conditional likelihood replaces the arm counts by
    per-study conditional terms (and needs no baselines)."""
    if likelihood == "symmetric":
        return {**values, "arm_centre": sparse.arm_centre_weights(
            values["arm_study"], values["arm_treated"], len(evidence.studies))}, coords
    if likelihood == "conditional":
        # priors and the design-bias layout stay (the bias term acts on study effects)
        kept = {k: v for k, v in values.items() if k.startswith(("prior_", "study_nonrandomised", "study_design"))}
        cond_values, cond_coords = sparse.conditional_values(evidence, baseline_prior=baseline_prior)
        kept_coords = {k: v for k, v in coords.items() if k in ("study", "arm")}
        return {**kept, **cond_values}, {**kept_coords, **cond_coords}
    return values, coords


def build_mortality_model(inputs: ModelInputs, priors: PriorSet):
    """Build the PyMC model from ``inputs`` (data enter as described in :mod:`.inputs`)."""
    import pymc as pm

    with new_model(inputs) as model:
        data = model_data(inputs)
        conditional = inputs.structure.get("likelihood") == "conditional"
        if inputs.structure.get("baselines") == "exchangeable":  # borrowing across control arms
            baseline = _exchangeable_baselines(data, priors)
        elif not conditional:  # the conditional likelihood has no baselines
            baseline = priors.baseline.build(
                "baseline_logit", prior_data(data, "baseline", priors.baseline), dims="study"
            )
        tau = priors.heterogeneity.build(
            "tau", prior_data(data, "heterogeneity", priors.heterogeneity)
        )
        z = pm.Normal("study_effect_z", 0.0, 1.0, dims="study")
        nonrandomised = inputs.structure.get("nonrandomised", "none")
        deviation = regression.shifted(tau * z, data, inputs.structure, priors, None if conditional else baseline)
        deviation = populations.with_study_deviation(deviation, data, inputs, priors)  # POPULATION HOOK (models/populations.py)
        if nonrandomised == "bias":
            deviation = deviation + _design_deviation(data, priors)
        if inputs.structure["dose_response"] == "none":
            log_or = priors.effect.build("log_or", prior_data(data, "effect", priors.effect))
            study_log_or = pm.Deterministic("study_log_or", log_or + deviation, dims="study")
            if conditional:
                _conditional_terms(data, inputs, study_log_or)
                return model
            arm_effect = study_log_or[data["arm_study"]]
        else:  # each arm: the study's deviation plus the dose-response curve at its dose
            curve_at_arm = build_dose_effect(data, inputs.structure, priors, "log_or", "arm")
            arm_effect = pm.Deterministic("arm_log_or", deviation[data["arm_study"]] + curve_at_arm, dims="arm")
        arm_logit = baseline[data["arm_study"]] + data["arm_treated"] * arm_effect
        if "arm_centre" in data:  # symmetric coding: both arms move by half the effect
            # a sum of products, not the matrix product arm_centre @ x: numba compiles BLAS's
            # dot and its gradient in about 2 s of a 13 s cold compile (same values up to rounding;
            # the default analysis gave bit-identical draws either way)
            centre = (data["arm_centre"] * (data["arm_treated"] * arm_effect)).sum(axis=1)
            arm_logit = arm_logit - 0.5 * centre[data["arm_study"]]
        # Binomial(n, logit) written out: pm.Binomial recomputes the constant log C(n, d) and
        # checks its parameters on every gradient, which costs compile time and nothing else.
        pm.CustomDist(
            "deaths",
            arm_logit[data["exact_arm"]],
            data["exact_n"],
            data["exact_log_choose"],
            logp=lambda deaths, logit_p, n, log_choose: binomial_logpmf_logit(deaths, n, log_choose, logit_p),
            observed=data["exact_deaths"],
            dims="exact_report",
        )
        if "partial_arm" in data:
            pm.CustomDist(
                "deaths_partial",
                arm_logit[data["partial_arm"]],
                data["partial_deaths"],
                data["partial_n"],
                data["partial_log_choose"],
                data["partial_log_weight"],
                logp=partial_report_logp,
                signature="(c,k),(c,k),(c,k),(c,k),(c)->()",
                observed=np.zeros(len(inputs.coords["partial_report"])),
                dims="partial_report",
            )
        if nonrandomised == "power_prior":
            _power_prior_term(data, arm_logit)
    return model


def _exchangeable_baselines(data, priors: PriorSet):
    """baseline_logit_j = baseline_mean + baseline_sd * baseline_z_j (non-centred; see :mod:`.sparse`)."""
    import pymc as pm

    mean = priors.baseline.build("baseline_mean", prior_data(data, "baseline", priors.baseline))
    sd = priors.baseline_heterogeneity.build(
        "baseline_sd", prior_data(data, "baseline_heterogeneity", priors.baseline_heterogeneity))
    z = pm.Normal("baseline_z", 0.0, 1.0, dims="study")
    return pm.Deterministic("baseline_logit", mean + sd * z, dims="study")


def _conditional_terms(data, inputs: ModelInputs, study_log_or) -> None:
    """Each study's deaths given its total deaths (see :mod:`.sparse`)."""
    import pymc as pm

    for prefix, name, dim in (("cond", "deaths", "exact_report"), ("cond_partial", "deaths_partial", "partial_report")):
        if f"{prefix}_study" not in data:
            continue
        if f"{prefix}_by_total" in data:  # a bound: configurations weighted by their total's probability
            pm.CustomDist(
                name,
                study_log_or[data[f"{prefix}_study"]],
                *(data[f"{prefix}_{k}"] for k in ("const", "treated_deaths", "u", "norm", "n1", "n0", "total",
                                                   "by_total", "alpha", "alpha_log_w")),
                logp=sparse.conditional_bounded_logp,
                signature="(),(c),(c),(c,u),(c,u),(c),(c),(c),(),(k),(k)->()",
                observed=np.zeros(len(inputs.coords[dim])),
                dims=dim,
            )
            continue
        pm.CustomDist(
            name,
            study_log_or[data[f"{prefix}_study"]],
            data[f"{prefix}_const"],
            data[f"{prefix}_treated_deaths"],
            data[f"{prefix}_u"],
            data[f"{prefix}_norm"],
            logp=sparse.conditional_logp,
            signature="(),(c),(c),(c,u),(c,u)->()",
            observed=np.zeros(len(inputs.coords[dim])),
            dims=dim,
        )


def arm_logit_draws(posterior, inputs: ModelInputs) -> np.ndarray:
    """Each arm's log-odds of death per draw, shape (chain, draw, arm) — the model's linear predictor."""
    if inputs.structure.get("likelihood") == "conditional":
        raise ValueError("the conditional likelihood has no baselines, so no arm log-odds")
    study = inputs.values["arm_study"]
    treated = inputs.values["arm_treated"]
    baseline = posterior["baseline_logit"].transpose("chain", "draw", "study").values
    if inputs.structure["dose_response"] == "none":
        effect = posterior["study_log_or"].transpose("chain", "draw", "study").values[..., study]
    else:
        effect = posterior["arm_log_or"].transpose("chain", "draw", "arm").values
    centre = 0.0
    if "arm_centre" in inputs.values:  # symmetric coding
        centre = ((treated * effect) @ inputs.values["arm_centre"].T)[..., study]
    return sparse.coded_arm_logit(baseline[..., study], treated, effect, centre)


def pointwise_log_density(posterior, inputs: ModelInputs, priors: PriorSet):
    """Log-likelihood per report and log-prior per parameter, evaluated with scipy.

    The same quantities ``pm.compute_log_likelihood`` / ``compute_log_prior`` give from the
    PyMC model (``tests/test_log_density.py`` checks they agree at the edges of the grid).
    This twin of the model's likelihood is kept because the model's own path costs more than
    sampling. Measured side by side in one process on 2 cores, for `fit mortality` (symmetric
    coding, 2000 draws):

    * PyMC's path: 0.60-0.90 s per call with a warm compile cache, and 17.9 s on a cold one;
    * sampling, warm: 0.37-0.43 s;
    * this function: 0.024 s.

    Every masked refit of ``influence`` and ``sensitivity`` would pay the PyMC path again.

    The conditional likelihood's term (:func:`_conditional_pointwise`) stays here for a second
    reason: :func:`bound_weighting_check` needs the same term under both weightings of a
    bound, and the model holds one. There PyMC's path takes 0.92-1.1 s per call, sampling
    takes 3.2 s, and this function takes 0.39 s.
    """
    import xarray as xr
    from scipy import stats

    from .likelihood import PartialArrays, binomial_logpmf_logit_numpy, partial_report_logp_numpy

    dims = ("chain", "draw")
    coords = {d: posterior[d] for d in dims}
    v = inputs.values
    if inputs.structure.get("likelihood") == "conditional":
        return _conditional_pointwise(posterior, inputs, priors, coords)
    logit = arm_logit_draws(posterior, inputs)
    loglik = {
        "deaths": xr.DataArray(
            binomial_logpmf_logit_numpy(v["exact_deaths"], v["exact_n"], v["exact_log_choose"], logit[..., v["exact_arm"]]),
            dims=(*dims, "exact_report"),
            coords={**coords, "exact_report": list(inputs.coords["exact_report"])},
        )
    }
    if "partial_arm" in v:
        arrays = PartialArrays(v["partial_arm"], v["partial_deaths"], v["partial_n"], v["partial_log_choose"],
                               v["partial_log_weight"])
        loglik["deaths_partial"] = xr.DataArray(
            partial_report_logp_numpy(arrays, logit),
            dims=(*dims, "partial_report"),
            coords={**coords, "partial_report": list(inputs.coords["partial_report"])},
        )
    roles = {"baseline_logit": priors.baseline, "tau": priors.heterogeneity}
    if inputs.structure.get("baselines") == "exchangeable":
        roles = {"baseline_mean": priors.baseline, "baseline_sd": priors.baseline_heterogeneity,
                 "tau": priors.heterogeneity}
    logprior = {name: xr.apply_ufunc(prior.scipy().logpdf, posterior[name]) for name, prior in roles.items()}
    logprior["study_effect_z"] = xr.apply_ufunc(stats.norm.logpdf, posterior["study_effect_z"])
    logprior.update(_design_log_prior(posterior, priors))
    if "baseline_z" in posterior:
        logprior["baseline_z"] = xr.apply_ufunc(stats.norm.logpdf, posterior["baseline_z"])
    logprior.update(effect_log_prior(posterior, inputs, priors, "log_or"))
    logprior.update(regression.covariate_log_prior(posterior, priors))
    return xr.Dataset(loglik), xr.Dataset(logprior)


def _conditional_pointwise(posterior, inputs: ModelInputs, priors: PriorSet, coords):
    """:func:`pointwise_log_density` for the conditional likelihood (no baselines)."""
    import xarray as xr
    from scipy import stats

    theta = posterior["study_log_or"].transpose("chain", "draw", "study").values
    loglik = {}
    for prefix, name, dim in (("cond", "deaths", "exact_report"), ("cond_partial", "deaths_partial", "partial_report")):
        if f"{prefix}_study" in inputs.values:
            arrays = sparse.conditional_arrays(inputs.values, prefix)
            loglik[name] = xr.DataArray(sparse.conditional_bounded_logp_numpy(inputs.values, prefix,
                                                                               theta[..., arrays.study]),
                                        dims=("chain", "draw", dim),
                                        coords={**coords, dim: list(inputs.coords[dim])})
    logprior = {"tau": xr.apply_ufunc(priors.heterogeneity.scipy().logpdf, posterior["tau"]),
                "study_effect_z": xr.apply_ufunc(stats.norm.logpdf, posterior["study_effect_z"]),
                **_design_log_prior(posterior, priors)}
    logprior.update(effect_log_prior(posterior, inputs, priors, "log_or"))
    logprior.update(regression.covariate_log_prior(posterior, priors))
    return xr.Dataset(loglik), xr.Dataset(logprior)


def _design_log_prior(posterior, priors: PriorSet) -> dict:
    """Log-prior of the three-level design-bias term's parameters, when the fit has them."""
    import xarray as xr
    from scipy import stats

    if "design_bias" not in posterior:
        return {}
    return {
        "design_bias": xr.apply_ufunc(priors.design_bias.scipy().logpdf, posterior["design_bias"]),
        "design_kappa": xr.apply_ufunc(priors.design_heterogeneity.scipy().logpdf, posterior["design_kappa"]),
        "design_study_z": xr.apply_ufunc(stats.norm.logpdf, posterior["design_study_z"]),
    }


def bound_weighting_check(result) -> dict | None:
    """Conditional likelihood: how far weighting a bound's configurations by the probability
    of their total (:mod:`.sparse`) moves P(benefit) against counting each configuration once.
    The fitted draws are importance-reweighted to the unweighted sum (no refit). None when no
    study's configurations differ in their total."""
    import math

    from ..decisions import reweighted_mcse

    inputs = result.outcome.make_inputs(result.evidence, result.spec.priors, result.spec.model)
    v = inputs.values
    if "cond_partial_by_total" not in v or not v["cond_partial_by_total"].any():
        return None
    theta = result.posterior["study_log_or"].transpose("chain", "draw", "study").values
    theta = theta.reshape(-1, theta.shape[-1])[:, v["cond_partial_study"]]
    log_w = (sparse.conditional_bounded_logp_numpy(v, "cond_partial", theta, weighted=False)
             - sparse.conditional_bounded_logp_numpy(v, "cond_partial", theta)).sum(-1)
    d = result.decisions
    event = result.posterior["log_or"].values.ravel() < math.log(d.benefit_threshold)
    w = np.exp(log_w - log_w.max())
    unweighted = float((w * event).sum() / w.sum())
    studies = [inputs.coords["partial_report"][i].split("/")[0]
               for i in np.flatnonzero(v["cond_partial_by_total"])]
    return {"studies": studies, "prob_benefit": d.prob_benefit.prob, "prob_benefit_mcse": d.prob_benefit.mcse,
            "prob_benefit_unweighted": unweighted,
            "prob_benefit_unweighted_mcse": reweighted_mcse(log_w, event),
            "direction": "towards harm" if unweighted < d.prob_benefit.prob else "towards benefit"}
