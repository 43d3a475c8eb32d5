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

from ..io.errors import CONSTRUCTED, InputError
from .choices import DEFAULT_BASELINES, DEFAULT_LIKELIHOOD, MEASURES, NONRANDOMISED_METHODS


def _fail(key: str, problem: str):
    raise InputError(problem, replace(CONSTRUCTED, field=f"model.{key}"))


@dataclass(frozen=True)
class FamilySettings:
    """The base of a family's own model settings (none)."""

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
    (:mod:`bayes_msc.models.sparse`): "arm", "symmetric" or "conditional"; and the baselines' prior."""

    nonrandomised: str = "bias"
    power_prior_weight: float = 0.5
    likelihood: str = DEFAULT_LIKELIHOOD
    baselines: str = DEFAULT_BASELINES

    def __post_init__(self):
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
