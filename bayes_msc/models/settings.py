"""The model settings each model family owns: its part of a spec's ``[model]`` table.

A spec's :class:`~bayes_msc.spec.ModelSettings` holds the settings every family reads (the
dose-response form and how doses are put on one axis) and one of these tables, the part only its
outcome's family reads (:attr:`bayes_msc.outcomes.family.ModelFamily.model_settings`). Each table
states its defaults and checks its own values; the rules that also need the shared settings are
:meth:`FamilySettings.problem`. In the spec file (and its hash) the two parts are one flat
``[model]`` table, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import ClassVar

from ..io.errors import CONSTRUCTED, InputError
from .choices import (
    DEFAULT_BASELINES,
    DEFAULT_EFFECT_MEASURE,
    DEFAULT_LIKELIHOOD,
    EFFECT_MEASURES,
    MEASURES,
    NONRANDOMISED_METHODS,
)


def _fail(key: str, problem: str):
    raise InputError(problem, replace(CONSTRUCTED, field=f"model.{key}"))


@dataclass(frozen=True)
class FamilySettings:
    """The base of a family's own model settings (none).

    ``stated_only``: settings added after specs were first hashed. The spec's ``[model]`` table
    (and with it the content hash) carries one only when it differs from its default, so every
    spec that leaves it out keeps the hash it had."""

    stated_only: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def left_out(cls, key: str, value) -> bool:
        """Whether the spec's table leaves ``key`` (at ``value``) out: a ``stated_only`` setting at its default."""
        return key in cls.stated_only and value == getattr(cls(), key)

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def problem(self, shared) -> tuple[str, str]:
        """(setting, why) this table does not fit the shared settings ``shared`` (a
        :class:`~bayes_msc.spec.ModelSettings`); ("", "") when it fits."""
        return "", ""

    @classmethod
    def foreign_problem(cls, changes: dict, outcome: str) -> tuple[str, str]:
        """(setting, why) an outcome of another family may not take ``changes`` of this table's
        settings; ("", "") when they are left out of that outcome's spec."""
        return "", ""


@dataclass(frozen=True)
class MortalitySettings(FamilySettings):
    """Mortality. Non-randomised studies (evidence sets other than "randomised"): "bias" adds a
    design-specific bias and extra heterogeneity (priors design_bias, design_heterogeneity);
    "power_prior" raises their likelihood to power_prior_weight in [0, 1] (model data: a new
    weight does not recompile). How each study's arms inform the odds ratio
    (:mod:`bayes_msc.models.sparse`): "arm", "symmetric" or "conditional"; and the baselines' prior.

    ``effect_measure``: the scale the effect is stated and decided on, "or" (odds ratio), "rr"
    (risk ratio) or "rd" (risk difference, cells minus control). The model is the same for all
    three: its effect is the log odds ratio, and the risk ratio and risk difference are functions
    of it at the control risk ``decision.baseline_risk`` (:func:`bayes_msc.decisions.risk_ratio`
    says why not a log-binomial model). A [model] setting beside ``likelihood`` because it says
    what the family's effect is stated as (as normal_normal's ``measure`` does), and it is the
    family's, so every binary outcome of the family reads it; named ``effect_measure`` because
    ``measure`` is normal_normal's, and there says what the *data* are. Left out of the spec's
    table at "or" (``stated_only``), so existing specs keep their hash."""

    stated_only: ClassVar[tuple[str, ...]] = ("effect_measure",)

    nonrandomised: str = "bias"
    power_prior_weight: float = 0.5
    likelihood: str = DEFAULT_LIKELIHOOD
    baselines: str = DEFAULT_BASELINES
    effect_measure: str = DEFAULT_EFFECT_MEASURE

    def __post_init__(self):
        if self.effect_measure not in EFFECT_MEASURES:
            _fail("effect_measure", f"must be one of {', '.join(EFFECT_MEASURES)} (odds ratio, risk ratio, risk "
                                    f"difference), got {self.effect_measure!r}")
        if self.nonrandomised not in NONRANDOMISED_METHODS:
            _fail("nonrandomised", f"must be one of {', '.join(NONRANDOMISED_METHODS)}, got {self.nonrandomised!r}")
        if not (isinstance(self.power_prior_weight, int | float) and 0 <= self.power_prior_weight <= 1):
            _fail("power_prior_weight", f"must be in [0, 1], got {self.power_prior_weight}")

    def problem(self, shared) -> tuple[str, str]:
        from .sparse import likelihood_problem

        return likelihood_problem(self.likelihood, self.baselines, shared.dose_response)

    @classmethod
    def foreign_problem(cls, changes: dict, outcome: str) -> tuple[str, str]:
        default = cls()
        if any(changes.get(key, getattr(default, key)) != getattr(default, key) for key in ("likelihood", "baselines")):
            return "likelihood", f"the likelihood choice is for the mortality analysis; {outcome} has one likelihood"
        if changes.get("effect_measure", default.effect_measure) != default.effect_measure:
            return "effect_measure", (f"the effect measure (odds ratio, risk ratio, risk difference) is for binary "
                                      f"outcomes; {outcome} has one measure")
        return "", ""


@dataclass(frozen=True)
class NormalNormalSettings(FamilySettings):
    """The normal-normal model: what the estimates are ("log_ratio", "smd", or "mean_difference"
    in ``unit``); the measure decides which priors fit."""

    measure: str = "log_ratio"
    unit: str = ""

    def __post_init__(self):
        if self.measure not in MEASURES:
            _fail("measure", f"must be one of {', '.join(MEASURES)}, got {self.measure!r}")


__all__ = ["FamilySettings", "MortalitySettings", "NormalNormalSettings"]
