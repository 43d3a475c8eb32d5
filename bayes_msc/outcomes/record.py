"""What an outcome measures, as data (the first of an outcome's three parts).

A :class:`Measured` record names the outcome, states its effect (:class:`EffectMeasure`), says
which posterior variable plays which role (:class:`ParameterRoles`), which prior presets and
decision settings apply and which way is benefit. It is frozen and runs nothing: the model family
(:mod:`bayes_msc.outcomes.family`) models it, and ``bayes_msc.report.presentations`` shows it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Dose-response parameters, present when the spec's form has them.
DOSE_VARS = ("emax", "ed50", "dose_slope", "body_weight")


@dataclass(frozen=True)
class EffectMeasure:
    """How an outcome's effect is stated.

    ``log_scale``: the model's parameter is the log of the stated effect (a log odds ratio
    for an odds ratio), so the stated null is 1 and thresholds are compared after a log.
    """

    name: str  # "odds ratio", "mean difference", "effect"
    short: str  # "OR", "difference", "effect": table headings
    unit: str = ""  # "mmHg"; "" for ratios and unitless effects
    digits: str = ".2f"  # number format of the stated effect
    log_scale: bool = False
    model_scale: str = ""  # what the model's parameters are on: "log odds ratio", "mmHg"

    @property
    def null(self) -> float:
        """The stated value of "no effect": 1 for a ratio, 0 for a difference."""
        return 1.0 if self.log_scale else 0.0

    def stated(self, draws):
        """Model-scale draws on the stated scale (``exp`` for ratios)."""
        return np.exp(draws) if self.log_scale else draws

    def to_model(self, value: float) -> float:
        """A stated threshold on the model's scale."""
        return math.log(value) if self.log_scale else float(value)

    def label(self) -> str:
        """"odds ratio", "mean difference (mmHg)"."""
        return f"{self.name} ({self.unit})" if self.unit else self.name


@dataclass(frozen=True)
class ParameterRoles:
    """Which posterior variable plays which role (one vocabulary across outcomes)."""

    pooled: str  # the pooled effect, model scale
    predictive: str  # the effect in a new trial (derived: pooled + tau * eps)
    study: str  # per-study effects
    heterogeneity: str = "tau"  # between-trial SD, model scale
    nuisance: tuple[str, ...] = ()  # baselines, natural course
    baseline: str | None = None  # each study's control-arm parameter (study dim), when it has one
    sampled: tuple[str, ...] = ()  # other sampled variables worth diagnosing (z scores)


@dataclass(frozen=True)
class Measured:
    """What an outcome measures, as data: its name, the effect's measure and scale, which posterior
    variable plays which role, the decision settings it reads and which way is benefit.

    Frozen: one record per outcome (per scale, for an outcome whose spec states its scale). How
    it is modelled is :class:`Outcome`'s (its hooks); how a report shows it is registered in
    ``bayes_msc.report.presentations``.
    """

    name: str
    measure: EffectMeasure
    roles: ParameterRoles
    prior_scale: str  # which presets of bayes_msc.priors apply
    decision_keys: tuple[str, ...]  # spec [decision] settings this outcome reads
    meaningful_key: str  # the [decision] key of the clinically meaningful threshold
    # Which direction of the model-scale effect is benefit when what is measured fixes it ("decrease":
    # fewer deaths); the threshold is then stated as a value of the effect, already signed. None: the
    # spec's decision.benefit_direction says, and the threshold is a distance from the null.
    benefit: str | None = None
    benefit_words: str = "the difference favours cells"  # what P(benefit) is the probability of
    stated_curve_var: str = "effect"  # dose curve on the stated scale (see Outcome.dose_curve)
    # What a new two-arm trial of this outcome measures (bayes_msc.design): "deaths" (counts
    # per arm), "change" (a continuous mean difference), or None (no trial design).
    trial_endpoint: str | None = None
    extra_parameters: tuple[str, ...] = ()  # other sampled variables to diagnose and summarise
    summary_nuisance: tuple[str, ...] = ()  # nuisance parameters the summary shows
    # Settings this outcome cannot guess (spec keys, e.g. "measure", "benefit_direction"): a fit
    # refuses to start unless the spec, an override or the data (Outcome.data_statement) states them.
    must_state: tuple[str, ...] = ()

    def benefit_direction(self, spec) -> str:
        """"decrease" or "increase": which direction of the model-scale effect is benefit."""
        return self.benefit or spec.decision.benefit_direction

    def meaningful_threshold(self, spec) -> float:
        """The clinically meaningful threshold on the stated scale, signed."""
        value = getattr(spec.decision, self.meaningful_key)
        if self.benefit is not None:
            return value
        return value if self.benefit_direction(spec) == "increase" else -value

    def summary_vars(self) -> tuple[str, ...]:
        r = self.roles
        return (r.pooled, r.heterogeneity, r.study, r.predictive, *self.summary_nuisance, *DOSE_VARS[:3],
                *self.extra_parameters)

    def parameter_roles(self) -> dict[str, str]:
        """Role -> posterior variable, as ``summary.json`` and ``posterior.nc`` record it."""
        r = self.roles
        return {"pooled_effect": r.pooled, "predictive_effect": r.predictive, "study_effects": r.study,
                "tau": r.heterogeneity, "measure": self.measure.name, "model_scale": self.measure.model_scale}
