"""All-cause mortality: arm deaths, binomial likelihood, effect stated as an odds ratio (default),
a risk ratio or a risk difference.

Model: :mod:`bayes_msc.models.mortality`; evidence: :mod:`bayes_msc.evidence.mortality`.
Partial reports (a bound on deaths, a total across arms of unknown size) are simulated with
the coarsening the register implies, so SBC and design see what the analysis sees.

The model's effect is the log odds ratio whatever the spec states it as. ``model.effect_measure``
"rr" or "rd" states it as the risk ratio or risk difference (cells vs control) at the control risk
``decision.baseline_risk`` (:class:`RiskMeasure`): P(benefit) and P(clinically meaningful benefit)
are then on that scale, against ``decision.clinically_meaningful_rr`` or ``_rd``, which has no
default, and the odds ratio stays in the output as a secondary line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from ..engine.streams import MORTALITY_CHECK, stream
from ..models.settings import MortalitySettings
from .base import EffectMeasure, Measured, Outcome, ParameterRoles, evidence_model_settings


# The [decision] key of the clinically meaningful threshold on each risk scale.
MEANINGFUL_KEYS = {"or": "clinically_meaningful_or", "rr": "clinically_meaningful_rr", "rd": "clinically_meaningful_rd"}


@dataclass(frozen=True)
class RiskMeasure(EffectMeasure):
    """A binary outcome's effect stated as a risk ratio (``kind`` "rr") or a risk difference
    ("rd", cells minus control) at the control risk ``baseline_risk``: functions of the model's
    log odds ratio (:func:`bayes_msc.decisions.risk_ratio`, :func:`~bayes_msc.decisions.risk_difference`).

    Both are increasing in the log OR, so an event "RR < r" is the event "log OR < t(r)" with
    t(r) = logit(r p0) - logit(p0) (:meth:`to_model`): P(RR < 1) = P(RD < 0) = P(OR < 1), and a
    threshold has one exact odds-ratio equivalent. ``baseline_risk`` None: the measure only named
    (a spec being read), nothing computed.
    """

    kind: str = "rr"
    baseline_risk: float | None = None

    @property
    def null(self) -> float:
        return 1.0 if self.kind == "rr" else 0.0

    def _risk(self) -> float:
        if self.baseline_risk is None:
            raise ValueError(f"the {self.name} is stated at a baseline risk, and none was given")
        return self.baseline_risk

    def stated(self, draws):
        from ..decisions import risk_difference, risk_ratio

        return (risk_ratio if self.kind == "rr" else risk_difference)(draws, self._risk())

    def to_model(self, value: float) -> float:
        """The log odds ratio whose risk ratio (difference) at the baseline risk is ``value``;
        a value no risk can take at that baseline is refused."""
        from ..decisions import log_or_at_risk_difference, log_or_at_risk_ratio
        from ..io.errors import InputError

        p0 = self._risk()
        if self.kind == "rr":
            if not 0 < value * p0 < 1:
                raise InputError(f"a risk ratio at control risk {p0:g} must be in (0, {1 / p0:.4g}), got {value:g}")
            return log_or_at_risk_ratio(value, p0)
        if not 0 < p0 + value < 1:
            raise InputError(f"a risk difference at control risk {p0:g} must be in ({-p0:g}, {1 - p0:.4g}), "
                             f"got {value:g}")
        return log_or_at_risk_difference(value, p0)

    def label(self) -> str:
        """"risk ratio at control risk 0.427": a risk scale says at which risk."""
        at = "" if self.baseline_risk is None else f" at control risk {self.baseline_risk:g}"
        return f"{self.name}{at}"


def risk_measure(kind: str, baseline_risk: float | None) -> RiskMeasure:
    """The risk ratio ("rr") or risk difference ("rd") at ``baseline_risk``."""
    if kind == "rr":
        return RiskMeasure("risk ratio", "RR", digits=".2f", model_scale="log odds ratio", kind="rr",
                           baseline_risk=baseline_risk)
    return RiskMeasure("risk difference", "RD", digits=".3f", model_scale="log odds ratio", kind="rd",
                       baseline_risk=baseline_risk)


class MortalityOutcome(Outcome):
    record = Measured(
        name="mortality",
        measure=EffectMeasure("odds ratio", "OR", digits=".2f", log_scale=True, model_scale="log odds ratio"),
        roles=ParameterRoles(
            pooled="log_or", predictive="log_or_new", study="study_log_or",
            nuisance=("baseline_logit",), sampled=("study_effect_z",), baseline="baseline_logit",
        ),
        prior_scale="log_odds_ratio",
        decision_keys=("clinically_meaningful_or", "baseline_risk", "baseline_risk_source", "ci_prob"),
        meaningful_key="clinically_meaningful_or",  # an odds ratio: already signed
        benefit="decrease",  # fewer deaths: OR < 1
        benefit_words="cells reduce mortality (OR < 1)",
        stated_curve_var="odds_ratio",
        trial_endpoint="deaths",
        extra_parameters=("design_bias", "design_kappa"),
    )
    evidence_keys = ("evidence_set", "product_classes", "exclude_studies", "timepoint_window_days")
    has_doses = True
    simulates_doses = True
    model_settings = MortalitySettings
    adjusts_design_bias = True

    simulates_covariates = True

    def __init__(self, likelihood: str | None = None, baselines: str | None = None, dose_response: str = "none",
                 effect_measure: str = "or", baseline_risk: float | None = None,
                 covariates: tuple[str, ...] = ()) -> None:
        from ..models.sparse import DEFAULT_BASELINES, DEFAULT_LIKELIHOOD

        # How arms inform the odds ratio (bayes_msc.models.sparse): the simulator draws data in
        # the fitted model's own coding, so SBC tests that model and not another.
        self.likelihood = likelihood or DEFAULT_LIKELIHOOD
        self.baselines = baselines or DEFAULT_BASELINES
        self.dose_response = dose_response  # which parameters SBC ranks
        # The scale the effect is stated on (model.effect_measure) and, for a risk scale, the
        # control risk it is stated at (decision.baseline_risk).
        self.effect_measure = effect_measure
        self.baseline_risk = baseline_risk
        if effect_measure != "or":
            base = type(self).record  # the class's record: a subclass keeps its own name and words
            key = MEANINGFUL_KEYS[effect_measure]
            self.record = replace(
                base, measure=risk_measure(effect_measure, baseline_risk), meaningful_key=key,
                decision_keys=(*base.decision_keys, key),
                benefit_words=f"cells reduce the risk ({'RR < 1' if effect_measure == 'rr' else 'RD < 0'})")
        self.covariates = tuple(covariates)  # a meta-regression's covariates: SBC ranks their terms too

    def specialise(self, model, decision=None) -> "MortalityOutcome":
        from ..models.sparse import likelihood_of

        likelihood, baselines = likelihood_of(model)
        dose_response = getattr(model, "dose_response", "none") if model is not None else "none"
        effect_measure = getattr(model, "effect_measure", "or") if model is not None else "or"
        baseline_risk = decision.baseline_risk if decision is not None and effect_measure != "or" else None
        covariates = tuple(getattr(model, "covariates", ()) or ()) if model is not None else ()
        state = (likelihood, baselines, dose_response, effect_measure, baseline_risk, covariates)
        if state == (self.likelihood, self.baselines, self.dose_response, self.effect_measure, self.baseline_risk,
                     self.covariates):
            return self
        return type(self)(*state)

    def unread_setting(self, key: str) -> str:
        names = {"rr": "a risk-ratio", "rd": "a risk-difference"}
        for kind, name in names.items():
            if key == MEANINGFUL_KEYS[kind] and self.effect_measure != kind:
                stated = "an odds ratio" if self.effect_measure == "or" else f"a {self.measure.name}"
                return (f"{name} threshold, but the effect is stated as {stated}: "
                        f"set model.effect_measure = \"{kind}\" (or --effect-measure {kind}), or leave it out")
        return ""

    def check_decision(self, spec, where: str = "spec") -> None:
        """Refuse a threshold on another scale than the one the effect is stated on, and a risk
        scale without its own threshold: a threshold is never converted between scales (an OR of
        0.8 is a risk ratio of 0.87 at control risk 0.43 and 0.81 at 0.05)."""
        from ..io.errors import InputError, Location

        decision = spec.decision
        names = {"rr": "a risk ratio", "rd": "a risk difference"}
        for kind in ("rr", "rd"):
            value = getattr(decision, MEANINGFUL_KEYS[kind])
            if kind != self.effect_measure and not math.isnan(value):
                raise InputError(
                    f"{MEANINGFUL_KEYS[kind]} is {names[kind]} threshold, but the effect is stated as "
                    f"{'a ' + self.measure.name if self.effect_measure != 'or' else 'an odds ratio'}: set "
                    f"model.effect_measure = \"{kind}\" (--effect-measure {kind}) or leave it out",
                    Location(spec.path or where, field=f"decision.{MEANINGFUL_KEYS[kind]}"))
        if self.effect_measure != "or":
            key = MEANINGFUL_KEYS[self.effect_measure]
            if math.isnan(getattr(decision, key)):
                example = "0.85" if self.effect_measure == "rr" else "-0.05"
                raise InputError(
                    f"the effect is stated as {names[self.effect_measure]} at control risk "
                    f"{decision.baseline_risk:g}, and the clinically meaningful threshold is not converted from the "
                    f"odds ratio's: state it on that scale, e.g. {key} = {example} in [decision] or "
                    f"--clinically-meaningful {example}", Location(spec.path or where, field=f"decision.{key}"))
            self.measure.to_model(getattr(decision, key))  # a value the risk scale can take at that baseline

    def extra_decisions(self, posterior, spec) -> tuple:
        from ..decisions import Extra, absolute_risk_reduction, interval, number_needed_to_treat

        risk = spec.decision.baseline_risk
        ci = spec.decision.ci_prob
        arr = interval(absolute_risk_reduction(posterior[self.roles.pooled], risk), ci)
        extra = (
            Extra("baseline_risk", "control-arm risk at which ARR and NNT are stated", risk, ".1%"),
            Extra("absolute_risk_reduction", f"absolute risk reduction at baseline risk {risk:.1%}", arr, ".3f"),
            Extra("nnt", "number needed to treat", number_needed_to_treat(arr)),
        )
        if self.effect_measure == "or":
            return extra
        # the odds ratio, the model's own effect, stays in the output as a secondary line
        odds_ratio = (
            Extra("effect_measure", "the scale the effect is stated and decided on",
                  {"measure": self.effect_measure, "name": self.measure.name, "baseline_risk": risk,
                   "baseline_risk_source": spec.decision.baseline_risk_source,
                   "how": f"{self.measure.name} = functional of the model's log odds ratio at control risk {risk:g} "
                          "(decision.baseline_risk)"}),
            Extra("odds_ratio", "pooled odds ratio (the model's effect)",
                  interval(np.exp(posterior[self.roles.pooled]), ci), ".2f"),
            Extra("odds_ratio_new_trial", "odds ratio in a new trial",
                  interval(np.exp(posterior[self.roles.predictive]), ci), ".2f"),
        )
        return odds_ratio + extra

    def dose_curve(self, effect, spec):
        """Log OR, odds ratio and the risk of death with cells at the spec's baseline risk."""
        import xarray as xr
        from scipy.special import expit, logit

        curve = super().dose_curve(effect, spec)
        curve["odds_ratio"] = np.exp(effect)
        curve["treated_risk"] = xr.apply_ufunc(expit, logit(spec.decision.baseline_risk) + effect)
        return curve

    # -- evidence and model -------------------------------------------------------------
    def build_evidence(self, source, spec):
        from ..evidence.mortality import build_mortality_evidence
        from ..models.regression import with_study_covariates

        return with_study_covariates(  # a meta-regression's covariates, and the studies they exclude
            lambda selection: build_mortality_evidence(source, selection, **evidence_model_settings(spec.model)),
            source, spec)

    def make_inputs(self, evidence, priors, model):
        from ..models.mortality import mortality_inputs

        return mortality_inputs(evidence, priors, model)

    def build_model(self, inputs, priors):
        from ..models.mortality import build_mortality_model

        return build_mortality_model(inputs, priors)

    def pointwise(self, posterior, inputs, priors):
        from ..models.mortality import pointwise_log_density

        return pointwise_log_density(posterior, inputs, priors)

    def sbc_parameters(self, evidence) -> tuple[str, ...]:
        """The pooled model's log_or and tau; a dose-response form's curve parameters (and
        the effect at the reference dose, which Emax derives) and tau; with covariates, each
        term of ``covariate_effect`` as ``covariate_effect[TERM]``."""
        names = {"none": ("log_or", "tau"), "loglinear": ("log_or", "dose_slope", "tau"),
                 "emax": ("log_or", "emax", "ed50", "tau")}[self.dose_response]
        if not self.covariates:
            return names
        from ..models.regression import covariate_design

        return (*names, *(covariate_term_name(t) for t in covariate_design(evidence, self.covariates).terms))

    # -- simulation ---------------------------------------------------------------------
    def draw_truth(self, spec, evidence, rng, priors=None) -> dict[str, Any]:
        """tau, z and the baselines from the priors, and either log_or or (a dose-response
        form) the curve's parameters, the body weights and each arm's dose and f(dose), drawn
        from the dose data the model is given (:func:`bayes_msc.models.dose_response.draw_dose_truth`)."""
        priors = priors or spec.priors
        n = len(evidence.studies)
        truth = {
            "tau": float(priors.heterogeneity.scipy().rvs(random_state=rng)),
            "z": rng.standard_normal(n),
        }
        if spec.model.dose_response == "none":
            truth["log_or"] = float(priors.effect.scipy().rvs(random_state=rng))
        else:
            from ..models.dose_response import dose_values, draw_dose_truth

            arms = evidence.arms  # the units mortality_inputs gives with_doses
            values, coords, structure = dose_values(arms["dose"], arms["treated"], arms["study_index"],
                                                    evidence.studies, spec.model)
            dose = draw_dose_truth(values, structure, coords, priors, "log_or", rng)
            truth.update({k: v for k, v in dose.items() if k not in ("unit_dose", "unit_curve")},
                         arm_dose=dose["unit_dose"], arm_curve=dose["unit_curve"])
        if self.baselines == "exchangeable":  # a_j ~ N(m, s): borrowing across control arms
            mean = float(priors.baseline.scipy().rvs(random_state=rng))
            sd = float(priors.baseline_heterogeneity.scipy().rvs(random_state=rng))
            truth["baseline_logit"] = mean + sd * rng.standard_normal(n)
        else:
            truth["baseline_logit"] = priors.baseline.scipy().rvs(size=n, random_state=rng)
        if spec.model.covariates:  # drawn last: a spec without covariates draws what it always drew
            truth.update(draw_covariate_truth(evidence, spec.model.covariates, priors, truth["baseline_logit"], rng))
        return truth

    def simulate(self, evidence, truth, rng):
        """Binomial deaths per arm, each study's effect shifted by ``truth["covariate_shift"]``
        (x_j' beta, a meta-regression's term) when the truth has one; a partial report becomes a report of whichever interval —
        below, inside or above the reported one — the simulated count falls in (for a total
        across arms of unknown size, after drawing an allocation the design allows)."""
        from scipy.special import expit

        from ..evidence.mortality import ArmCount, Configuration, PartialReport, compositions
        from ..models.sparse import arm_centre_weights, coded_arm_logit

        arms = evidence.arms
        study = arms["study_index"].to_numpy()
        treated = arms["treated"].to_numpy()
        deviation = truth["tau"] * np.asarray(truth["z"]) + np.asarray(truth.get("covariate_shift", 0.0))
        if "arm_curve" in truth:  # a dose-response form: the study's deviation plus f(the arm's dose)
            effect = np.asarray(truth["arm_curve"]) + deviation[study]
        else:
            effect = (truth["log_or"] + deviation)[study]
        centre = 0.0
        if self.likelihood in ("symmetric", "conditional"):  # the baselines coded as the fitted model codes them
            centre = (arm_centre_weights(study, treated, len(evidence.studies)) @ (treated * effect))[study]
        p = expit(coded_arm_logit(np.asarray(truth["baseline_logit"])[study], treated, effect, centre))
        exact = evidence.exact.copy()
        exact["deaths"] = rng.binomial(exact["n"].to_numpy(), p[exact["arm_index"].to_numpy()])
        partial = []
        for report in evidence.partial:
            allocations = _allocations(report)
            allocation = allocations[rng.integers(len(allocations))]
            total = sum(int(rng.binomial(n, p[a])) for a, n in allocation)
            low, high = _reported_range(report)
            cap = sum(n for _, n in allocation)
            interval = (low, high) if low <= total <= high else (0, low - 1) if total < low else (high + 1, cap)
            configs = []
            for alloc in allocations:
                sizes = [n for _, n in alloc]
                for t in range(interval[0], interval[1] + 1):
                    for deaths in compositions(t, sizes):
                        configs.append(Configuration(-math.log(len(allocations)),
                                                     tuple(ArmCount(a, d, n) for (a, n), d in zip(alloc, deaths))))
            partial.append(PartialReport(report.study_id, report.kind, report.arms,
                                         f"simulated {interval[0]}-{interval[1]}", tuple(configs)))
        return replace(evidence, exact=exact, partial=tuple(partial))

    def simulation_padding(self, evidence) -> int:
        """Configurations of the largest interval any simulated partial report can take."""
        return max((_max_configurations(r) for r in evidence.partial), default=0)

    def pad_inputs(self, inputs, padding: int):
        """Pad the partial-report arrays of model inputs to ``padding`` configurations (the
        arm-count arrays, or the conditional likelihood's terms)."""
        from ..models.sparse import pad_conditional

        inputs = pad_conditional(inputs, padding)
        v = dict(inputs.values)
        if "partial_arm" not in v:
            return inputs
        extra = padding - v["partial_arm"].shape[1]
        if extra <= 0:
            return inputs
        for name in ("partial_deaths", "partial_n", "partial_log_choose"):
            v[name] = np.pad(v[name], ((0, 0), (0, extra), (0, 0)))
        # Padded configurations read the arms of the first one (as pack_partial_reports pads),
        # so the layout, and with it the compiled model, is the same for every replicate.
        v["partial_arm"] = np.concatenate([v["partial_arm"], np.repeat(v["partial_arm"][:, :1], extra, axis=1)], axis=1)
        v["partial_log_weight"] = np.pad(v["partial_log_weight"], ((0, 0), (0, extra)), constant_values=-np.inf)
        return replace(inputs, values=v)

    # -- model checking -----------------------------------------------------------------
    def posterior_predictive(self, result, seed: int | None = None) -> pd.DataFrame:
        """Posterior predictive deaths for each observed report (an arm, a bounded arm, a total).

        Replicated deaths are drawn as ``Binomial(n, p_arm)`` with ``logit p_arm`` from
        :func:`bayes_msc.models.mortality.arm_logit_draws` for every posterior draw; a total
        across arms of unknown sizes first draws an allocation with the design's weights.
        """
        from scipy.special import expit

        from ..models.mortality import arm_logit_draws

        evidence = result.evidence
        inputs = self.make_inputs(evidence, result.spec.priors, result.spec.model)
        if self.likelihood == "conditional":
            from ..io.errors import InputError

            raise InputError("the posterior predictive check draws deaths per arm, and the conditional likelihood "
                             "has no arm risks: use model.likelihood = symmetric or arm")
        p = expit(arm_logit_draws(result.posterior, inputs)).reshape(-1, len(evidence.arms))
        rng = stream(result.spec.sampler.seed if seed is None else seed, MORTALITY_CHECK)
        arms = evidence.arms.reset_index(drop=True)
        labels = evidence.inclusion.set_index("study_id")["label"]

        def arm_label(i: int) -> str:
            return f"{labels.get(arms.loc[i, 'study_id'], arms.loc[i, 'study_id'])}: {arms.loc[i, 'label']}"

        rows = []
        for r in evidence.exact.itertuples():
            if r.n == 0:  # masked
                continue
            rep = rng.binomial(int(r.n), p[:, int(r.arm_index)])
            rows.append(predictive_row(arm_label(int(r.arm_index)), "exact", int(r.n), int(r.deaths), int(r.deaths), rep)
                        | {"order": int(r.arm_index)})
        for report in evidence.partial:
            configs = report.configurations
            totals = [sum(c.deaths for c in config.counts) for config in configs]
            allocations = {}
            for config in configs:
                key = tuple((c.arm_index, c.n) for c in config.counts)
                allocations.setdefault(key, config.log_weight)
            keys = list(allocations)
            weights = np.exp(np.array([allocations[k] for k in keys]))
            if not np.isfinite(weights).all() or weights.sum() == 0 or all(n == 0 for k in keys for _, n in k):
                continue  # masked report
            choice = rng.choice(len(keys), size=p.shape[0], p=weights / weights.sum())
            rep = np.zeros(p.shape[0], dtype=int)
            for j, key in enumerate(keys):
                hit = choice == j
                for arm_index, n in key:
                    rep[hit] += rng.binomial(n, p[hit, arm_index])
            n_total = sum(n for _, n in keys[0])
            label = (arm_label(keys[0][0][0]) if len(report.arms) == 1
                     else f"{labels.get(report.study_id, report.study_id)}: total of {' + '.join(report.arms)}")
            rows.append(predictive_row(label, report.kind, n_total, min(totals), max(totals), rep)
                        | {"order": min(a for a, _ in keys[0])})
        return pd.DataFrame(rows).sort_values("order", kind="stable").reset_index(drop=True)


def covariate_term_name(term: str) -> str:
    """The name SBC ranks one meta-regression term under (a scalar of ``covariate_effect``)."""
    return f"covariate_effect[{term}]"


def draw_covariate_truth(evidence, covariates, priors, baseline_logit, rng) -> dict[str, Any]:
    """A meta-regression's truth: ``covariate_effect`` (one per term) from the ``covariate``
    prior and each study's shift ``x_j' beta`` in the fitted model's coding
    (:func:`bayes_msc.models.regression.covariate_design`: numeric covariates centred and
    scaled over the included studies, categorical ones as indicators against the reference
    level); control_risk's term reads the drawn baseline (``baseline_logit``, fitted coding),
    centred and scaled as the model does."""
    from ..models.regression import CONTROL_RISK, covariate_design

    design = covariate_design(evidence, covariates)
    beta = np.atleast_1d(priors.covariate.scipy().rvs(size=len(design.terms), random_state=rng)).astype(float)
    shift = design.matrix @ beta
    if design.control_risk_term is not None:
        info = next(c for c in design.covariates if c.name == CONTROL_RISK)
        shift = shift + beta[design.control_risk_term] * (np.asarray(baseline_logit) - info.centre) / info.scale
    return {"covariate_effect": beta, "covariate_shift": shift,
            **{covariate_term_name(t): float(b) for t, b in zip(design.terms, beta)}}


def predictive_row(label: str, kind: str, n: int, low: int, high: int, rep: np.ndarray) -> dict:
    """Replicated counts against an observed count or range (a value inside the range matches)."""
    q = np.quantile(rep, [0.025, 0.25, 0.5, 0.75, 0.975])
    p_low = float((rep <= high).mean())
    p_high = float((rep >= low).mean())
    return {
        "label": label, "kind": kind, "n": n, "obs_low": low, "obs_high": high,
        "pred_q025": q[0], "pred_q25": q[1], "pred_median": q[2], "pred_q75": q[3], "pred_q975": q[4],
        "ppp": min(1.0, 2 * min(p_low, p_high)),
        "inside95": bool(high >= q[0] and low <= q[4]),
    }


def _allocations(report) -> list[tuple[tuple[int, int], ...]]:
    """The distinct (arm_index, n) allocations a report's configurations use."""
    return list(dict.fromkeys(tuple((c.arm_index, c.n) for c in config.counts) for config in report.configurations))


def _reported_range(report) -> tuple[int, int]:
    totals = [sum(c.deaths for c in config.counts) for config in report.configurations]
    return min(totals), max(totals)


def _max_configurations(report) -> int:
    from ..evidence.mortality import compositions

    allocations = _allocations(report)
    low, high = _reported_range(report)
    cap = max(sum(n for _, n in a) for a in allocations)
    intervals = [(0, low - 1), (low, high), (high + 1, cap)]
    return max(sum(len(compositions(t, [n for _, n in a])) for a in allocations for t in range(lo, hi + 1))
               for lo, hi in intervals)


MORTALITY = MortalityOutcome()
