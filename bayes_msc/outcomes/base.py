"""What an outcome is: the one object the pipeline asks, in the spirit of bambi's ``Family``.

An :class:`Outcome` holds everything that differs between outcomes — how its evidence is
built, its model and pointwise log-likelihood, the names and roles of its parameters, the
scale and words of its effect, its decision quantities, its simulator (SBC, design) and its
posterior predictive check, and which report layout shows it. The CLI, the library, SBC,
sensitivity, dosing, the report and the terminal display ask the outcome; none of them
branches on the outcome's name. A new outcome is one module with a subclass, registered
with :func:`bayes_msc.outcomes.register_outcome`.

Heavy modules (PyMC, the evidence builders) are imported inside methods so that looking an
outcome up (e.g. to read a spec) stays cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

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


def evidence_model_settings(model) -> dict:
    """The model settings an evidence builder reads: whether the fit models dose-response, and
    whether an arm whose dose is an assumption may enter one."""
    return {"dose_response": model.dose_response != "none", "use_assumed_doses": model.use_assumed_doses}


class Outcome:
    """Base class: a :class:`Measured` record (what is measured) composed with the model family's
    hooks (evidence, inputs, model, simulator, posterior predictive check); subclasses set ``record``
    and the family's class attributes, and implement the hooks.

    Instances are stateless: one module-level instance per outcome lives in the registry.
    """

    record: Measured  # what is measured (a class attribute, or set per scale in __init__)
    evidence_keys: ClassVar[tuple[str, ...]]  # spec [evidence] settings this outcome reads
    has_doses: ClassVar[bool] = False  # can fit a dose-response form
    simulates_doses: ClassVar[bool] = False  # draw_truth/simulate cover its dose-response forms (SBC)
    data_description: ClassVar[str] = "an evidence register directory"
    # Model settings only this outcome reads (bayes_msc.spec.OUTCOME_MODEL_KEYS): e.g. the
    # normal-normal model's "measure", which sets its scale.
    model_keys: ClassVar[tuple[str, ...]] = ()
    # Non-randomised studies enter through a design-bias model (or a power prior).
    adjusts_design_bias: ClassVar[bool] = False
    measures: ClassVar[tuple[str, ...]] = ()

    # -- what is measured: read from the record -----------------------------------------
    name = property(lambda self: self.record.name)
    measure = property(lambda self: self.record.measure)
    roles = property(lambda self: self.record.roles)
    prior_scale = property(lambda self: self.record.prior_scale)
    decision_keys = property(lambda self: self.record.decision_keys)
    meaningful_key = property(lambda self: self.record.meaningful_key)
    stated_curve_var = property(lambda self: self.record.stated_curve_var)
    trial_endpoint = property(lambda self: self.record.trial_endpoint)
    extra_parameters = property(lambda self: self.record.extra_parameters)
    must_state = property(lambda self: self.record.must_state)

    def benefit_direction(self, spec) -> str:
        return self.record.benefit_direction(spec)

    def meaningful_threshold(self, spec) -> float:
        return self.record.meaningful_threshold(spec)

    def benefit_words(self, spec) -> str:
        return self.record.benefit_words

    def specialise(self, model) -> "Outcome":
        """This outcome on the scale ``model`` (the spec's model settings) states; most
        outcomes have one scale and return themselves."""
        return self

    # -- parameters ---------------------------------------------------------------------
    def summary_vars(self) -> tuple[str, ...]:
        return self.record.summary_vars()

    def summary_nuisance(self) -> tuple[str, ...]:
        return self.record.summary_nuisance

    def parameter_roles(self) -> dict[str, str]:
        return self.record.parameter_roles()

    def diagnostic_vars(self) -> tuple[str, ...]:
        r = self.roles
        return (r.pooled, r.heterogeneity, *r.nuisance, *r.sampled, r.study, *DOSE_VARS, *self.extra_parameters)

    def sbc_parameters(self, evidence) -> tuple[str, ...]:
        """Top-level parameters whose ranks SBC tests."""
        return (self.roles.pooled, self.roles.heterogeneity)

    # -- decisions ----------------------------------------------------------------------
    def benefit_event(self, draws, threshold: float | None, spec):
        """Model-scale ``draws`` beyond the stated ``threshold`` (default: the null) in the
        direction of benefit, as a boolean DataArray."""
        from ..decisions import benefit_event

        threshold = self.measure.null if threshold is None else threshold
        return benefit_event(draws, self.measure.to_model(threshold), self.benefit_direction(spec))

    def derive(self, posterior, spec, inputs=None):
        """Add the new-trial effect ``pooled + tau * eps`` (seeded by the run's seed).

        ``inputs``: the model inputs sampled, for outcomes that add draws of what their model
        integrated out (:class:`bayes_msc.outcomes.continuous.ContinuousOutcome`)."""
        from ..decisions import predictive_effect

        r = self.roles
        new = predictive_effect(posterior[r.pooled], posterior[r.heterogeneity], spec.sampler.seed)
        return posterior.assign({r.predictive: new})

    def decide(self, posterior, spec):
        """The decision quantities, in the vocabulary of :class:`bayes_msc.decisions.Decisions`."""
        from ..decisions import Decisions, interval, probability

        r, m = self.roles, self.measure
        ci = spec.decision.ci_prob
        pooled, new = posterior[r.pooled], posterior[r.predictive]
        meaningful = self.meaningful_threshold(spec)
        return Decisions(
            measure=m.name,
            unit=m.unit,
            model_scale=m.model_scale,
            pooled_effect=interval(m.stated(pooled), ci),
            predictive_effect=interval(m.stated(new), ci),
            tau=interval(posterior[r.heterogeneity], ci),
            prob_benefit=probability(self.benefit_event(pooled, None, spec)),
            prob_meaningful=probability(self.benefit_event(pooled, meaningful, spec)),
            predictive_prob_benefit=probability(self.benefit_event(new, None, spec)),
            benefit_threshold=m.null,
            meaningful_threshold=meaningful,
            benefit_direction=self.benefit_direction(spec),
            extra=self.extra_decisions(posterior, spec),
        )

    def extra_decisions(self, posterior, spec) -> tuple:
        """Outcome-specific decision quantities (:class:`bayes_msc.decisions.Extra`)."""
        return ()

    def dose_curve(self, effect, spec):
        """The dose-response curve as a Dataset over (chain, draw, dose): ``effect`` on the
        model scale, plus what the outcome states it as (an odds ratio, a risk)."""
        import xarray as xr

        return xr.Dataset({"effect": effect})

    # -- evidence and model (subclasses) ------------------------------------------------
    def load_data(self, data: Any):
        """What ``data`` means for this outcome; default: an evidence register."""
        from ..evidence.register import Register, load_register

        return data if isinstance(data, Register) else load_register(data)

    def prior_warnings(self, priors) -> list[str]:
        """Priors whose scale does not fit what this outcome measures (warned about, not refused)."""
        return []

    def data_statement(self, source) -> dict[str, str]:
        """What loaded data say about themselves (``measure``, ``unit``, ``benefit_direction``);
        empty when they say nothing."""
        return {}

    def build_evidence(self, source, spec):
        raise NotImplementedError

    def make_inputs(self, evidence, priors, model):
        raise NotImplementedError

    def build_model(self, inputs, priors):
        raise NotImplementedError

    def pointwise(self, posterior, inputs, priors):
        """(log_likelihood, log_prior) Datasets computed in numpy/scipy (no PyMC recompile)."""
        raise NotImplementedError

    # -- simulation (SBC, recovery tests, design) ---------------------------------------
    def draw_truth(self, spec, evidence, rng, priors=None) -> dict[str, Any]:
        raise NotImplementedError

    def simulate(self, evidence, truth: dict[str, Any], rng):
        """Evidence of the same shape with data drawn from the model at ``truth``."""
        raise NotImplementedError

    def simulation_padding(self, evidence) -> int:
        """How far simulated inputs must be padded so every replicate has one shape."""
        return 0

    def pad_inputs(self, inputs, padding: int):
        return inputs

    # -- model checking -----------------------------------------------------------------
    def posterior_predictive(self, result, seed: int | None = None):
        """One row per observed report: observed value or range, replicated quantiles, a
        two-sided posterior predictive p-value, whether the observation is inside 95%."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Outcome {self.name}>"
