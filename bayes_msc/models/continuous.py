"""Normal-likelihood models: oxygenation (PaO2/FiO2 change) and the classic normal-normal.

Each term t has an estimate y_t with a known standard error s_t (derived from what the trial
reported, :mod:`bayes_msc.evidence.oxygenation`)::

    contrast term:  y_t ~ Normal(theta_j, s_t)
    arm term:       y_t ~ Normal(nc_j + treated_t * theta_j, s_t)
    theta_j = mu + tau * z_j,            z_j ~ Normal(0, 1)
    nc_j    = nc_mean + nc_sd * u_j,     u_j ~ Normal(0, 1)       (natural course)

``theta_j`` is study j's treatment effect (mean difference, cells minus control) and ``nc_j``
its natural course: the change in the outcome without cells. Because ``nc_j`` is
hierarchical, control arms of randomised trials inform the natural course of a single-arm
study, whose change then says something — as much as the spread of natural courses allows —
about the effect. With contrast terms only (the normal-normal model) there is no ``nc``.

The study-level ``z_j`` and ``u_j`` are not sampled: everything about them is Gaussian, so
the sampler sees the likelihood with them integrated out — per study, the terms' estimates
are jointly normal with covariance ``diag(s_t^2) + tau^2 t t' + nc_sd^2 a a'`` (``t``: the
treated indicators, ``a``: the arm indicators; :func:`study_marginal_log_density`) — and
:func:`recover_study_draws` then draws ``z_j, u_j`` for every posterior draw from their exact
conditional normal. The draws are from the same joint posterior as a sampler that moved
``z_j, u_j`` itself, but without its funnels: with two trials and a borrowed SD (below), the
sampled version diverged in a third of SBC replicates even at target_accept 0.99, as the
borrowed SD shrank and pinned a study's effects (SBC, issue 14).

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

from ..engine.streams import CONTINUOUS_STUDY_EFFECTS, stream
from ..evidence.oxygenation import sd_missing_mask
from ..priors import PriorSet
from .dose_response import build_dose_effect, effect_log_prior, with_doses
from .inputs import ModelInputs, model_data, new_model, prior_data, prior_values
from . import regression


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
    regression.add_covariate_inputs(values, coords, structure, evidence, model)  # meta-regression (model.covariates)
    return with_doses(ModelInputs("continuous", values, coords, structure), terms, evidence.studies, model)


def _missing_sd_inputs(evidence) -> dict | None:
    """Layout and data for terms whose SD is borrowed; None when every term has its own SE."""
    terms = evidence.terms
    flags = sd_missing_mask(terms)
    if not flags.any():
        return None
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
        from ..io.errors import InputError

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


class StudySums:
    """Per-study sums of the terms' precisions and residuals, the 2 x 2 matrix
    ``M = I + C^(1/2) U' D^-1 U C^(1/2)`` (``U = [t, a]``, ``C = diag(tau^2, nc_sd^2)``,
    ``D = diag(s_t^2)``), and the conditional normal of ``(z_j, u_j)`` given the data — what
    the marginal density and the conditional draws both need.

    Written with operators only, so ``xp`` may be numpy (arrays with leading draw axes;
    ``tau``, ``nc_sd`` then end in an axis of length 1) or pytensor (the model). ``study``
    is the (J, T) indicator of each term's study. The determinant-lemma form keeps
    ``tau -> 0`` and ``nc_sd -> 0`` finite (no ``1 / tau``).
    """

    def __init__(self, xp, residual, variance, treated, is_arm, study, tau, nc_sd):
        self.xp, self.study = xp, study
        self.residual, self.treated, self.is_arm, self.tau, self.nc_sd = residual, treated, is_arm, tau, nc_sd
        self.precision = precision = 1.0 / variance

        def total(x):  # sum over each study's terms
            return xp.dot(x, study.T)

        self.n_terms = study.sum(axis=1)
        self.log_variance = total(xp.log(variance))
        self.m11 = 1.0 + tau * tau * total(treated * precision)
        self.m22 = 1.0 + nc_sd * nc_sd * total(is_arm * precision)
        self.m12 = tau * nc_sd * total(treated * is_arm * precision)
        self.v1 = tau * total(treated * precision * residual)
        self.v2 = nc_sd * total(is_arm * precision * residual)
        self.det = self.m11 * self.m22 - self.m12 * self.m12

    def conditional_covariance(self):
        """``M^-1`` as (a, b, c) = ([0, 0], [0, 1], [1, 1]) entries."""
        return self.m22 / self.det, -self.m12 / self.det, self.m11 / self.det

    def conditional_mean(self):
        """``E[(z_j, u_j) | data] = M^-1 v`` with ``v = C^(1/2) U' D^-1 r``."""
        a, b, c = self.conditional_covariance()
        return a * self.v1 + b * self.v2, b * self.v1 + c * self.v2

    def quadratic_form(self):
        """``r' (D + U C U')^-1 r``, as the sum of squares it minimises: the terms' residuals
        after the conditional mean's deviations, in SEs, plus ``|E[(z, u)]|^2``. Every part is
        non-negative, so nothing cancels (``r'D^-1 r - v'M^-1 v`` lost digits at SEs of 1e-6)."""
        xp = self.xp
        mean_z, mean_u = self.conditional_mean()
        fitted = (self.treated * xp.dot(self.tau * mean_z, self.study)
                  + self.is_arm * xp.dot(self.nc_sd * mean_u, self.study))
        misfit = self.residual - fitted
        return xp.dot(self.precision * misfit * misfit, self.study.T) + mean_z * mean_z + mean_u * mean_u


def study_marginal_log_density(xp, residual, variance, treated, is_arm, study, tau, nc_sd):
    """Each study's log density of its estimates with ``z_j`` and ``u_j`` integrated out.

    ``residual``: each term's estimate minus its mean at the study-level values' centre
    (``treated * mu + arm * nc_mean``, or the dose curve in place of ``mu``). By the matrix
    determinant lemma and Woodbury's identity, per study::

        log N(r; 0, D + U C U') = -(n log 2 pi + sum log s_t^2 + log det M + r'(D + U C U')^-1 r) / 2

    Checked against scipy's multivariate normal and the candidate's formula in the tests.
    """
    sums = StudySums(xp, residual, variance, treated, is_arm, study, tau, nc_sd)
    return -0.5 * (sums.n_terms * np.log(2 * np.pi) + sums.log_variance + xp.log(sums.det) + sums.quadratic_form())


def _study_indicator(term_study, n_studies: int) -> np.ndarray:
    return (np.arange(n_studies)[:, None] == np.asarray(term_study)[None, :]).astype("float64")


def build_continuous_model(inputs: ModelInputs, priors: PriorSet):
    import pymc as pm
    import pytensor.tensor as pt

    with new_model(inputs) as model:
        data = model_data(inputs)
        tau = priors.heterogeneity.build("tau", prior_data(data, "heterogeneity", priors.heterogeneity))
        if inputs.structure["dose_response"] == "none":
            effect_at_term = priors.effect.build("mu", prior_data(data, "effect", priors.effect))
        else:  # the dose-response curve at the term's dose; the study's deviation is integrated out
            effect_at_term = pm.Deterministic(
                "term_dose_effect", build_dose_effect(data, inputs.structure, priors, "mu", "term"), dims="term")
        centre = effect_at_term * data["term_treated"]
        centre = regression.shifted_terms(centre, data, inputs.structure, priors)  # meta-regression
        nc_sd = pt.constant(0.0)
        if inputs.structure["natural_course"]:
            nc_mean = priors.baseline.build("nc_mean", prior_data(data, "baseline", priors.baseline))
            nc_sd = priors.baseline_heterogeneity.build(
                "nc_sd", prior_data(data, "baseline_heterogeneity", priors.baseline_heterogeneity)
            )
            centre = centre + data["term_is_arm"] * nc_mean
        se = _borrowed_se(data, data["term_se"]) if inputs.structure.get("missing_sd") else data["term_se"]
        study = pt.constant(_study_indicator(inputs.values["term_study"], len(inputs.coords["study"])))
        pm.Potential("estimate_marginal", study_marginal_log_density(
            pt, data["term_estimate"] - centre, se * se, data["term_treated"], data["term_is_arm"], study, tau, nc_sd
        ).sum())
    return model


def recover_study_draws(posterior, inputs: ModelInputs, seed: int):
    """Add ``study_effect_z`` (and ``natural_course_z``), ``study_effect`` or ``term_effect``,
    and ``natural_course`` to a posterior sampled with them integrated out.

    For every draw, ``(z_j, u_j)`` given the hyperparameters and the data is normal with
    precision ``M`` and mean ``M^-1 v`` (:class:`StudySums`): drawn exactly, seeded, so a
    seeded fit stays reproducible.
    """
    import xarray as xr

    v = inputs.values
    dims = ("chain", "draw")
    natural = inputs.structure["natural_course"]
    dose = inputs.structure["dose_response"] != "none"
    tau = posterior["tau"].transpose(*dims).values[..., None]
    nc_sd = posterior["nc_sd"].transpose(*dims).values[..., None] if natural else np.zeros_like(tau)
    nc_mean = posterior["nc_mean"].transpose(*dims).values[..., None] if natural else 0.0
    effect = (posterior["term_dose_effect"].transpose(*dims, "term").values if dose
              else posterior["mu"].transpose(*dims).values[..., None])
    shift = regression.shift_draws(posterior)  # meta-regression: each study's covariate term (0.0 without)
    shift_at_term = shift[..., v["term_study"]] if np.ndim(shift) else 0.0
    residual = v["term_estimate"] - v["term_treated"] * (effect + shift_at_term) - v["term_is_arm"] * nc_mean
    se = term_se_draws(posterior, inputs)
    study = _study_indicator(v["term_study"], len(inputs.coords["study"]))
    s = StudySums(np, residual, se * se, v["term_treated"], v["term_is_arm"], study, tau, nc_sd)
    # mean + L e, L the Cholesky factor of M^-1
    a, b, c = s.conditional_covariance()
    mean_z, mean_u = s.conditional_mean()
    l11 = np.sqrt(a)
    l21 = b / l11
    l22 = np.sqrt(np.maximum(c - l21 * l21, 0.0))
    rng = stream(seed, CONTINUOUS_STUDY_EFFECTS)
    e = rng.standard_normal((2, *mean_z.shape))
    z = mean_z + l11 * e[0]
    coords = {"study": list(inputs.coords["study"])}
    out = {"study_effect_z": xr.DataArray(z, dims=(*dims, "study"), coords=coords)}
    deviation = tau * z + shift
    if dose:
        out["term_effect"] = xr.DataArray(effect + deviation[..., v["term_study"]], dims=(*dims, "term"),
                                          coords={"term": list(inputs.coords["term"])})
    else:
        out["study_effect"] = xr.DataArray(effect + deviation, dims=(*dims, "study"), coords=coords)
    if natural:
        u = mean_u + l21 * e[0] + l22 * e[1]
        out["natural_course_z"] = xr.DataArray(u, dims=(*dims, "study"), coords=coords)
        out["natural_course"] = xr.DataArray(nc_mean + nc_sd * u, dims=(*dims, "study"), coords=coords)
    return posterior.assign({k: x.assign_coords({d: posterior[d] for d in dims}) for k, x in out.items()})


def term_se_draws(posterior, inputs: ModelInputs) -> np.ndarray:
    """Each term's SE per draw, shape (chain, draw, term): the borrowed SDs where a term has none."""
    v = inputs.values
    n_draws = (posterior.sizes["chain"], posterior.sizes["draw"])
    se = np.broadcast_to(v["term_se"], (*n_draws, len(v["term_se"]))).copy()
    if inputs.structure.get("missing_sd"):
        borrowed = posterior["borrowed_sd"].transpose("chain", "draw", "missing_sd_study").values
        borrowed = borrowed[..., v["missing_term_study"]] / np.sqrt(v["missing_n"])
        active = v["missing_active"]
        se[..., v["missing_term"]] = active * borrowed + (1.0 - active) * v["term_se"][v["missing_term"]]
    return se


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
    """Log-likelihood per term and log-prior per parameter, with scipy (as for mortality).

    The model samples the study effects marginalised out: its likelihood is one
    ``estimate_marginal`` potential per study, and no observed variable. So
    ``pm.compute_log_likelihood`` returns an empty group for this model. The per-term density
    that leave-one-out and power-scaling need is conditional on the study effects drawn
    afterwards (:func:`recover_study_draws`), and it is written here. For `fit oxygenation`,
    measured on 2 cores, this function takes 0.01 s and sampling takes 1.2-1.4 s.
    """
    import xarray as xr
    from scipy import stats

    v = inputs.values
    dims = ("chain", "draw")
    coords = {d: posterior[d] for d in dims}
    se = term_se_draws(posterior, inputs)
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
    logprior.update(regression.covariate_log_prior(posterior, priors))
    if inputs.structure.get("missing_sd"):
        logprior["borrowed_log_sd_t"] = xr.apply_ufunc(stats.t(v["borrowed_log_sd_nu"]).logpdf,
                                                       posterior["borrowed_log_sd_t"])
    for name in ("study_effect_z", "natural_course_z"):
        if name in posterior:
            logprior[name] = xr.apply_ufunc(stats.norm.logpdf, posterior[name])
    return xr.Dataset({"estimate": loglik}), xr.Dataset(logprior)
