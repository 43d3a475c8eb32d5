"""Normal-likelihood outcomes: oxygenation (arm and contrast terms with a natural course) and
the generic normal-normal meta-analysis of per-study estimates.

Both share the model of :mod:`bayes_msc.models.continuous` (``theta_j = mu + tau * z_j``);
oxygenation adds the hierarchical natural course ``nc_j`` when arm-level changes enter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..engine.streams import CONTINUOUS_CHECK, stream
from ..models.choices import MEASURES
from ..models.settings import NormalNormalSettings
from .base import EffectMeasure, Measured, Outcome, ParameterRoles, evidence_model_settings

NATURAL_COURSE = ("nc_mean", "nc_sd")
CONTINUOUS_ROLES = ParameterRoles(
    pooled="mu", predictive="mu_new", study="study_effect",
    nuisance=(*NATURAL_COURSE, "natural_course_z", "natural_course"), sampled=("study_effect_z",),
)


def continuous_record(name: str, measure: EffectMeasure, prior_scale: str, **more) -> Measured:
    """What an outcome of the continuous model measures: its parameters' roles, a clinically
    meaningful difference and the direction of benefit from the spec, a mean-difference trial."""
    return Measured(
        name=name, measure=measure, roles=CONTINUOUS_ROLES, prior_scale=prior_scale,
        decision_keys=("clinically_meaningful_difference", "benefit_direction", "ci_prob"),
        meaningful_key="clinically_meaningful_difference", trial_endpoint="change",
        summary_nuisance=NATURAL_COURSE, **more,
    )


class ContinuousOutcome(Outcome):
    """Shared by oxygenation and normal-normal: the continuous model and its simulator."""

    def diagnostic_vars(self) -> tuple[str, ...]:
        from .base import DOSE_VARS

        r = self.roles
        return (r.pooled, r.heterogeneity, *r.sampled, r.study, *r.nuisance, *DOSE_VARS)

    def sbc_parameters(self, evidence) -> tuple[str, ...]:
        natural = NATURAL_COURSE if getattr(evidence, "natural_course", False) else ()
        return ("mu", "tau", *natural)

    def extra_decisions(self, posterior, spec) -> tuple:
        from ..decisions import Extra, interval

        if "nc_mean" not in posterior:
            return ()
        return (Extra("natural_course_mean", "natural course (mean change, no cells)",
                      interval(posterior["nc_mean"], spec.decision.ci_prob), ".1f"),)

    def derive(self, posterior, spec, inputs=None):
        """The study-level draws the model integrated out (exact conditional draws:
        :func:`bayes_msc.models.continuous.recover_study_draws`), then the new-trial effect."""
        from ..models.continuous import recover_study_draws

        return super().derive(recover_study_draws(posterior, inputs, spec.sampler.seed), spec)

    def make_inputs(self, evidence, priors, model):
        from ..models.continuous import continuous_inputs

        return continuous_inputs(evidence, priors, model)

    def build_model(self, inputs, priors):
        from ..models.continuous import build_continuous_model

        return build_continuous_model(inputs, priors)

    def pointwise(self, posterior, inputs, priors):
        from ..models.continuous import pointwise_log_density

        return pointwise_log_density(posterior, inputs, priors)

    # -- simulation ---------------------------------------------------------------------
    def draw_truth(self, spec, evidence, rng, priors=None) -> dict[str, Any]:
        priors = priors or spec.priors
        n = len(evidence.studies)
        truth = {"tau": float(priors.heterogeneity.scipy().rvs(random_state=rng)), "z": rng.standard_normal(n),
                 "mu": float(priors.effect.scipy().rvs(random_state=rng))}
        if getattr(evidence, "natural_course", False):
            truth["nc_mean"] = float(priors.baseline.scipy().rvs(random_state=rng))
            truth["nc_sd"] = float(priors.baseline_heterogeneity.scipy().rvs(random_state=rng))
            truth["u"] = rng.standard_normal(n)
        flags = _borrowed_sd_terms(evidence)
        if flags is not None:  # a study's SD that the model borrows: drawn from the same prior
            from scipy import stats

            from ..models.continuous import borrowed_log_sd_prior

            prior = borrowed_log_sd_prior(evidence.reported_sds)
            studies = list(dict.fromkeys(evidence.terms["study_id"].to_numpy()[flags]))
            t = stats.t(float(prior["borrowed_log_sd_nu"])).rvs(size=len(studies), random_state=rng)
            log_sd = float(prior["borrowed_log_sd_loc"]) + float(prior["borrowed_log_sd_scale"]) * t
            truth["borrowed_sd"] = dict(zip(studies, np.exp(log_sd)))
        return truth

    def simulate(self, evidence, truth, rng):
        """Each term's estimate drawn as Normal(model mean, its SE)."""
        from dataclasses import replace

        terms = evidence.terms.copy()
        study = terms["study_index"].to_numpy()
        theta = truth["mu"] + truth["tau"] * np.asarray(truth["z"])
        mean = terms["treated"].to_numpy() * theta[study]
        if "nc_mean" in truth:
            nc = truth["nc_mean"] + truth["nc_sd"] * np.asarray(truth["u"])
            mean = mean + (terms["kind"] == "arm").to_numpy() * nc[study]
        se = terms["se"].to_numpy(float).copy()
        flags = _borrowed_sd_terms(evidence)
        if flags is not None and "borrowed_sd" in truth:  # the borrowed SD's truth, not the plug-in SE
            sd = terms["study_id"].map(truth["borrowed_sd"]).to_numpy(float)
            se[flags] = sd[flags] / np.sqrt(terms["n"].to_numpy(float)[flags])
        terms["estimate"] = mean + se * rng.standard_normal(len(terms))
        return replace(evidence, terms=terms)

    # -- model checking -----------------------------------------------------------------
    def posterior_predictive(self, result, seed: int | None = None) -> pd.DataFrame:
        """Replicates of every likelihood term: ``Normal(model mean, SE)`` per posterior draw,
        the model mean from :func:`bayes_msc.models.continuous.term_means` (natural course plus,
        for a cell arm or a contrast, the study's effect) and the SE the term entered with.
        Masked terms are left out. Rows keep ``study_id``, ``arm`` and ``comparator``."""
        from ..evidence.oxygenation import MASKED_SE
        from ..models.continuous import term_means

        terms = result.evidence.terms.reset_index(drop=True)
        inputs = self.make_inputs(result.evidence, result.spec.priors, result.spec.model)
        means = term_means(result.posterior, inputs).reshape(-1, len(terms))
        se = terms["se"].to_numpy(float)
        rng = stream(result.spec.sampler.seed if seed is None else seed, CONTINUOUS_CHECK)
        replicated = rng.normal(means, se)
        rows = []
        for i, t in enumerate(terms.itertuples()):
            if se[i] >= MASKED_SE:
                continue
            rep = replicated[:, i]
            q = np.quantile(rep, [0.025, 0.25, 0.5, 0.75, 0.975])
            p_two = min(1.0, 2 * min(float((rep <= t.estimate).mean()), float((rep >= t.estimate).mean())))
            rows.append({
                "study_id": t.study_id, "arm": t.arm, "comparator": t.comparator,
                "observed": t.estimate, "se": t.se, "bound": bool(t.se_is_bound),
                "model_mean": float(np.median(means[:, i])),
                "pred_q025": q[0], "pred_q25": q[1], "pred_median": q[2], "pred_q75": q[3], "pred_q975": q[4],
                "ppp": p_two, "inside95": bool(q[0] <= t.estimate <= q[4]),
            })
        return pd.DataFrame(rows)


def _borrowed_sd_terms(evidence):
    """Boolean mask of the terms whose SD the model borrows (and that still borrow: a masked
    term keeps its huge SE), or None when there is none."""
    from ..evidence.oxygenation import sd_missing_mask

    terms = evidence.terms
    flags = sd_missing_mask(terms)
    if "sd_borrow_active" in terms:
        flags &= terms["sd_borrow_active"].fillna(True).astype(bool).to_numpy()
    return flags if flags.any() else None


class OxygenationOutcome(ContinuousOutcome):
    """Change from baseline in PaO2/FiO2 (mmHg), arm-level or contrast-level reports."""

    record = continuous_record(
        "oxygenation", EffectMeasure("mean difference", "difference", unit="mmHg", digits=".1f", model_scale="mmHg"),
        prior_scale="mmhg",
    )
    evidence_keys = (
        "evidence_set", "product_classes", "exclude_studies", "oxygenation_day",
        "oxygenation_day_window", "median_iqr_method", "prefer",
    )
    has_doses = True

    def build_evidence(self, source, spec):
        from ..evidence.oxygenation import build_oxygenation_evidence
        from ..models.regression import with_study_covariates

        return with_study_covariates(  # a meta-regression's covariates, and the studies they exclude
            lambda selection: build_oxygenation_evidence(source, selection, **evidence_model_settings(spec.model)),
            source, spec)


class EstimatesOutcome(ContinuousOutcome):
    """Per-study estimates with known standard errors, pooled by the normal-normal model.

    The base of outcomes whose data are one estimate per study on a fixed scale: a subclass
    sets ``name``, ``measure`` and ``prior_scale`` (docs/developers/adding-an-outcome.md). Data: a
    ``study, estimate, se`` CSV file, or a register, whose per-study estimates are PaO2/FiO2
    mean differences in mmHg (:func:`bayes_msc.evidence.estimates.register_contrasts`).
    """

    evidence_keys = ("exclude_studies",)
    data_description = "a CSV file of study,estimate,se or an evidence register directory"

    def load_data(self, data):
        """A ``study, estimate, se`` CSV file, or a register (directory or loaded)."""
        from ..evidence.estimates import EstimateTable, load_estimates
        from ..evidence.register import Register, load_register

        if isinstance(data, (EstimateTable, Register)):
            return data
        if data is not None and Path(data).is_file():
            return load_estimates(data)
        return load_register(data)

    def build_evidence(self, source, spec):
        from ..evidence.estimates import EstimateTable, estimates_evidence, register_contrasts
        from ..models.regression import with_study_covariates

        if isinstance(source, EstimateTable):
            return with_study_covariates(  # a meta-regression's covariates: the file's own columns
                lambda selection: estimates_evidence(source, selection.exclude_studies, spec.model.covariates),
                source, spec)
        if (self.measure.name, self.measure.unit) != REGISTER_MEASURE:
            from ..io.errors import InputError

            raise InputError(
                "the register's per-study estimates are PaO2/FiO2 mean differences in mmHg, but this "
                f"{self.name} analysis is on the {self.measure.label()} scale: use --measure mean_difference "
                "--unit mmHg with priors in mmHg, the oxygenation analysis, or --data FILE.csv of estimates "
                "on the analysis' scale"
            )
        return with_study_covariates(
            lambda selection: register_contrasts(source, selection, **evidence_model_settings(spec.model)),
            source, spec)


REGISTER_MEASURE = ("mean difference", "mmHg")  # what register_contrasts produces

# What a normal-normal analysis' estimates can be (``model.measure``), and the prior presets
# that fit each (bayes_msc.priors): log ratios (Turner 2015 / half-normal, Röver 2020),
# standardised mean differences (Rhodes 2015), or mean differences in a unit the spec states
# (no presets: the priors must be stated on that scale).
# Where a prior stops being plausible on each scale: (|effect| at the prior's 95% ends, the
# between-study SD at its 95th percentile). A log ratio of 10 is an odds ratio of 22,000; an
# SMD of 10 ten standard deviations. A mean difference's unit is the user's: no limit.
PRIOR_SCALE_LIMITS = {"log_ratio": (10.0, 5.0), "smd": (10.0, 5.0)}
NORMAL_NORMAL_MEASURES = {
    "log_ratio": ("generic", "log ratio", "log ratio", ".2f"),
    "smd": ("smd", "standardised mean difference", "SMD", ".2f"),
    "mean_difference": ("mean_difference", "mean difference", "difference", ".1f"),
}


class NormalNormalOutcome(EstimatesOutcome):
    """The classic random-effects meta-analysis, on the scale the spec's ``model.measure``
    states (:data:`NORMAL_NORMAL_MEASURES`)."""

    model_settings = NormalNormalSettings
    measures = MEASURES

    def data_statement(self, source) -> dict[str, str]:
        """A register's per-study estimates are PaO2/FiO2 mean differences in mmHg, higher
        better; an estimates file says what it holds in its optional columns ``measure``,
        ``unit`` and ``benefit_direction``."""
        from ..evidence.register import Register

        if isinstance(source, Register):
            return {"measure": "mean_difference", "unit": "mmHg", "benefit_direction": "increase",
                    "_source": "the register's per-study estimates (PaO2/FiO2 mean differences in mmHg, higher better)"}
        statement = dict(getattr(source, "statement", {}) or {})
        if statement:
            statement["_source"] = f"the estimates file {getattr(source, 'path', '')}".rstrip()
        return statement

    def prior_warnings(self, priors) -> list[str]:
        """Priors whose scale does not fit the measure: a Normal(0, 50) effect prior, sensible in
        mmHg, on a log ratio puts 95% of its mass on ratios from exp(-98) to exp(98)."""
        limits = PRIOR_SCALE_LIMITS.get(self.measure_key)
        if limits is None:  # a mean difference: no scale can be known for its unit
            return []
        effect_limit, tau_limit = limits
        what = self.measure.name
        found = []
        effect = priors.effect.scipy()
        low, high = (float(v) for v in effect.ppf([0.025, 0.975]))
        if max(abs(low), abs(high)) > effect_limit:
            implied = (f"ratios from exp({low:.3g}) to exp({high:.3g})" if self.measure_key == "log_ratio"
                       else f"{what}s from {low:.3g} to {high:.3g}")
            found.append(f"the effect prior {priors.effect.describe()} is on the {what} scale and puts 95% of its mass "
                         f"on {implied}; beyond {effect_limit:g} on this scale no effect is plausible. Were the estimates "
                         f"mean differences (--measure mean_difference --unit ...), or did you mean a smaller scale?")
        upper = float(priors.heterogeneity.scipy().ppf(0.95))
        if upper > tau_limit:
            found.append(f"the heterogeneity prior {priors.heterogeneity.describe()} puts 5% of its mass on a "
                         f"between-study SD above {upper:.3g} on the {what} scale, where above {tau_limit:g} is "
                         "implausible: is it a prior for mean differences?")
        return found

    def __init__(self, measure: str = "log_ratio", unit: str = "") -> None:
        scale, words, short, digits = NORMAL_NORMAL_MEASURES[measure]
        self.measure_key, self.unit = measure, unit
        in_units = measure == "mean_difference"
        self.record = continuous_record(
            "normal_normal",
            EffectMeasure(words, short, unit=unit if in_units else "", digits=digits,
                          model_scale=(unit or "the outcome's units") if in_units else short),
            prior_scale=scale,
            # any estimates can arrive: what they are and which way is better must be said, not guessed
            must_state=("measure", "benefit_direction"),
        )

    def specialise(self, model, decision=None) -> "NormalNormalOutcome":
        if (model.measure, model.unit) == (self.measure_key, self.unit):
            return self
        return NormalNormalOutcome(model.measure, model.unit)


OXYGENATION = OxygenationOutcome()
NORMAL_NORMAL = NormalNormalOutcome()
