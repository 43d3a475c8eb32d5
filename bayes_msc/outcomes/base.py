"""What an outcome is: the one object the pipeline asks, composed of three parts.

* what is measured: a frozen :class:`~bayes_msc.outcomes.record.Measured` record (name, measure,
  parameter roles, prior scale, decision keys, direction and words of benefit);
* how it is modelled: the :class:`~bayes_msc.outcomes.family.ModelFamily` hooks (evidence, inputs,
  model, pointwise log density, simulator, posterior predictive check) and the settings they read;
* how a report shows it: registered by outcome name in ``bayes_msc.report.presentations``, beside
  the report (outcomes import nothing of it).

:class:`Outcome` joins the first two: it reads the record and adds the quantities derived from it
(summary variables, decisions). The CLI, the library, SBC, sensitivity, dosing, the report and the
terminal display ask the outcome; none of them branches on the outcome's name. A new outcome is one
module with a subclass, registered with :func:`bayes_msc.outcomes.register_outcome`.
"""

from __future__ import annotations

from .family import ModelFamily, evidence_model_settings
from .record import DOSE_VARS, EffectMeasure, Measured, ParameterRoles

__all__ = ["DOSE_VARS", "EffectMeasure", "Measured", "ModelFamily", "Outcome", "ParameterRoles",
           "evidence_model_settings"]


class Outcome(ModelFamily):
    """Base class: a :class:`Measured` record (what is measured) composed with the model family's
    hooks (evidence, inputs, model, simulator, posterior predictive check); subclasses set ``record``
    and the family's class attributes, and implement the hooks.

    Instances are stateless: one module-level instance per outcome lives in the registry.
    """

    record: Measured  # what is measured (a class attribute, or set per scale in __init__)
    treatment_words = "cells"  # what the treated arm received, as results name it ("favours cells")

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

    def unread_setting(self, key: str) -> str:
        """Why this outcome, as its spec states it, does not read the [decision] setting ``key``
        (a spec that sets it is refused with these words); "" for the plain refusal."""
        return ""

    def check_decision(self, spec, where: str = "spec") -> None:
        """Refuse decision settings that do not fit the scale the effect is stated on (before any
        fit; :func:`bayes_msc.api.resolve_spec` and :func:`~bayes_msc.api.fit_spec` ask)."""

    def extra_decisions(self, posterior, spec) -> tuple:
        """Outcome-specific decision quantities (:class:`bayes_msc.decisions.Extra`)."""
        return ()

    def dose_curve(self, effect, spec):
        """The dose-response curve as a Dataset over (chain, draw, dose): ``effect`` on the
        model scale, plus what the outcome states it as (an odds ratio, a risk)."""
        import xarray as xr

        return xr.Dataset({"effect": effect})

    def __repr__(self) -> str:
        return f"<Outcome {self.name}>"
