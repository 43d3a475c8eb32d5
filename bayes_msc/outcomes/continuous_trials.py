"""A user's own continuous outcome: two-arm trials' summaries, pooled as a mean difference.

Data: a one-table CSV of per-arm means and SDs, or medians and quartiles
(:func:`bayes_msc.evidence.onetable.load_continuous_trials`). Each trial enters as one contrast,
treated minus control, with the SE of a difference of independent means
(:func:`bayes_msc.evidence.onetable.continuous_trials_evidence` says why contrasts); the model is
the continuous (normal-normal) model the oxygenation and normal-normal analyses use. The unit of
the difference and the direction of benefit are the user's to state; so are the priors, which
are on that unit's scale.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..io.errors import CONSTRUCTED, InputError
from ..models.settings import NormalNormalSettings
from .base import EffectMeasure
from .continuous import ContinuousOutcome, continuous_record

MEAN_DIFFERENCE = "mean_difference"


@dataclass(frozen=True)
class ContinuousTrialSettings(NormalNormalSettings):
    """The continuous one-table analysis' own [model] settings: the measure is a mean difference,
    in ``unit``."""

    measure: str = MEAN_DIFFERENCE

    def __post_init__(self):
        super().__post_init__()
        if self.measure != MEAN_DIFFERENCE:
            raise InputError(f"the continuous analysis pools mean differences; got {self.measure!r} (the "
                             "normal_normal analysis takes other measures of per-study estimates)",
                             replace(CONSTRUCTED, field="model.measure"))


class ContinuousTrialsOutcome(ContinuousOutcome):
    """Mean differences of two-arm trials, in the unit the spec or ``--unit`` states."""

    treatment_words = "the treatment"
    evidence_keys = ("exclude_studies", "median_iqr_method")
    data_description = ("a CSV file of study, n_treated, n_control and each arm's mean and SD (or median, q1 and "
                        "q3)")
    model_settings = ContinuousTrialSettings
    measures = (MEAN_DIFFERENCE,)

    def __init__(self, unit: str = "") -> None:
        self.unit = unit
        self.record = continuous_record(
            "continuous",
            EffectMeasure("mean difference", "difference", unit=unit, digits=".2f",
                          model_scale=unit or "the outcome's units"),
            # A mean difference's priors are in its unit: none can be offered. Until a unit is
            # stated the spec file's priors are read on the generic scale; stating the unit
            # (which a fit requires) marks them unstated, so a fit states both priors.
            prior_scale=MEAN_DIFFERENCE if unit else "generic",
            must_state=("benefit_direction",),
        )

    def specialise(self, model, decision=None) -> "ContinuousTrialsOutcome":
        unit = getattr(model, "unit", "") if model is not None else ""
        return self if unit == self.unit else ContinuousTrialsOutcome(unit)

    def load_data(self, data):
        """A one-table CSV file (default column names), or loaded :class:`ContinuousTrials`;
        no embedded data."""
        from ..evidence.onetable import ContinuousTrials, load_continuous_trials
        from ..io.errors import InputError

        if isinstance(data, ContinuousTrials):
            return data
        if data is None:
            raise InputError("the continuous analysis has no embedded data: give your trials with --data trials.csv "
                             "(library: data='trials.csv'), a CSV of study, n_treated, n_control and each arm's "
                             "mean_* and sd_* (see docs/tutorials/your-own-trials.md)")
        return load_continuous_trials(data)

    def read_table(self, path, columns=None, event_name=None):
        from ..evidence.onetable import load_continuous_trials
        from ..io.errors import InputError, Location

        if event_name is not None:
            raise InputError("the continuous analysis has no events: --event-name is for the binary analysis",
                             Location("--event-name"))
        return load_continuous_trials(path, columns=columns)

    def data_statement(self, source) -> dict[str, str]:
        statement = dict(getattr(source, "statement", {}) or {})
        if statement:
            statement["_source"] = f"the data file {getattr(source, 'path', '')}".rstrip()
        return statement

    def build_evidence(self, source, spec):
        """One contrast per trial; refused before any sampling when the unit is not stated."""
        from ..evidence.onetable import continuous_trials_evidence
        from ..io.errors import InputError, Location

        if not spec.model.unit:
            raise InputError("the continuous analysis cannot guess the unit of the mean difference: state it with "
                             "--unit (library: unit=...), e.g. --unit mmHg, or model.unit in the spec",
                             Location(spec.path or "spec", field="model.unit"))
        return continuous_trials_evidence(source, spec.evidence.exclude_studies, spec.evidence.median_iqr_method)


CONTINUOUS_TRIALS = ContinuousTrialsOutcome()
