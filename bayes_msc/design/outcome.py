"""What an outcome means to trial design, read in one place.

Every other module of :mod:`bayes_msc.design` asks :func:`design_outcome`, which reads the
spec's :class:`~bayes_msc.outcomes.Outcome` (its roles, measure, direction of benefit and
trial endpoint); nothing branches on the outcome's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..io.errors import InputError


@dataclass(frozen=True)
class DesignOutcome:
    """The facts about an outcome that a design needs.

    Attributes
    ----------
    effect_var, new_effect_var, heterogeneity_var, control_var
        Posterior variables of the pooled effect, of the effect in a new trial, of the
        between-trial SD and (deaths) of each study's control log-odds.
    binary
        True: the trial counts deaths per arm (effect = log odds ratio, treated vs control).
        False: the trial measures a continuous change (effect = mean difference).
    direction
        +1 when a larger effect favours cells, -1 when a smaller one does (log OR).
    null_effect
        The effect of no difference (0 on both scales).
    meaningful
        The spec's clinically meaningful effect, on the effect scale (log 0.8, or 20 mmHg).
    effect_label, unit
        Words for tables: "OR" shown as exp(effect), or "difference" in ``unit``; under a spec
        whose binary effect is stated as a risk ratio or risk difference, "RR" or "RD".
    stated_as
        Deaths: how the effect is read (the outcome's measure). The design works on the log OR
        (the MAP prior's and the trial likelihood's scale) whatever it is; a risk ratio or risk
        difference at the spec's baseline risk is an increasing function of it, so a rule or a
        threshold given on that scale is one exact log-OR threshold (:meth:`to_scale`), and what
        is shown is read back on that scale (:meth:`show`).
    """

    name: str
    effect_var: str
    new_effect_var: str
    binary: bool
    direction: int
    meaningful: float
    effect_label: str
    unit: str
    null_effect: float = 0.0
    heterogeneity_var: str = "tau"
    control_var: str | None = None  # deaths: each study's control log-odds (study dim)
    stated_as: Any = None  # deaths: the outcome's EffectMeasure (None or a log scale: the odds ratio)

    @property
    def on_risk_scale(self) -> bool:
        """Deaths stated as a risk ratio or risk difference (at a baseline risk), not an odds ratio."""
        return self.binary and self.stated_as is not None and not self.stated_as.log_scale

    def show(self, effect: float) -> float:
        """The effect as users read it: an odds ratio (or the risk ratio or risk difference the
        spec states it as), or the difference itself."""
        import math

        if self.on_risk_scale:
            return float(self.stated_as.stated(effect))
        return math.exp(effect) if self.binary else effect

    def to_scale(self, shown: float) -> float:
        """Inverse of :meth:`show` (an OR given on the command line -> log OR)."""
        import math

        if self.on_risk_scale:
            return self.stated_as.to_model(shown)
        if self.binary:
            if not shown > 0:
                raise InputError(f"an odds ratio must be > 0, got {shown}")
            return math.log(shown)
        return shown

    def favours(self, effect, threshold):
        """Boolean: the effect favours cells beyond ``threshold`` (both on the effect scale)."""
        return (effect - threshold) * self.direction > 0


def design_outcome(spec) -> DesignOutcome:
    """The design facts of ``spec``'s outcome, read from its :class:`~bayes_msc.outcomes.Outcome`."""
    outcome = spec.outcome_type
    if outcome.trial_endpoint is None:
        raise InputError(f"trial design is not available for the {outcome.name!r} outcome")
    measure, roles = outcome.measure, outcome.roles
    return DesignOutcome(
        name=outcome.name, effect_var=roles.pooled, new_effect_var=roles.predictive,
        binary=outcome.trial_endpoint == "deaths",
        direction=-1 if outcome.benefit_direction(spec) == "decrease" else 1,
        meaningful=measure.to_model(outcome.meaningful_threshold(spec)),
        effect_label=measure.short, unit=measure.unit,
        heterogeneity_var=roles.heterogeneity, control_var=roles.baseline,
        stated_as=measure if outcome.trial_endpoint == "deaths" else None,
    )
