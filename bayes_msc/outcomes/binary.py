"""A user's own binary outcome: events out of n per arm, effect stated as an odds ratio.

The mortality family's model, evidence and simulator (:class:`MortalityOutcome`) with two
differences of meaning: events may be good or bad, so the direction of benefit is never
assumed (the spec, ``--benefit-direction`` or the data file's ``benefit_direction`` column
states it: with ``decrease`` benefit is OR < 1), and every word shown is generic ("events",
"treated"). Data: a one-table CSV (:func:`bayes_msc.evidence.onetable.load_binary_trials`) or a
register; there is no embedded data set.
"""

from __future__ import annotations

from dataclasses import fields, replace

from .base import Measured
from .mortality import MortalityOutcome


def binary_record(mortality: Measured) -> Measured:
    """The binary outcome's record from the mortality family's (for whichever measure it states):
    same effect, roles, priors and design endpoint; its own name, a direction of benefit that
    the spec, an option or the data must state, and words that name no death."""
    return replace(
        mortality,
        name="binary",
        decision_keys=tuple(dict.fromkeys((*mortality.decision_keys, "benefit_direction"))),
        benefit=None,  # events may be good or bad: the spec, an option or the data says which
        benefit_words="the odds ratio favours the treatment",
        must_state=tuple(dict.fromkeys((*mortality.must_state, "benefit_direction"))),
    )


class BinaryOutcome(MortalityOutcome):
    """Events per arm of two-arm trials, pooled as an odds ratio by the mortality model."""

    record = binary_record(MortalityOutcome.record)
    treatment_words = "the treatment"
    evidence_keys = ("exclude_studies",)
    data_description = "a CSV file of study,events_treated,n_treated,events_control,n_control or a register"

    def benefit_words(self, spec) -> str:
        if self.benefit_direction(spec) == "decrease":
            return "the treatment lowers the odds of an event (OR < 1)"
        return "the treatment raises the odds of an event (OR > 1)"

    def meaningful_threshold(self, spec) -> float:
        """The stated odds ratio: below 1 when benefit is a decrease, above 1 when an increase
        (checked before any sampling, by :meth:`build_evidence`)."""
        return spec.decision.clinically_meaningful_or

    def extra_decisions(self, posterior, spec) -> tuple:
        """The absolute risk difference (treated minus control) at the spec's control-arm risk,
        and the number needed to treat for one event fewer (``decrease``) or more (``increase``)."""
        from ..decisions import Extra, absolute_risk_reduction, interval, number_needed_to_treat

        risk = spec.decision.baseline_risk
        fewer = absolute_risk_reduction(posterior[self.roles.pooled], risk)  # control minus treated
        difference = interval(-fewer, spec.decision.ci_prob)
        gain = interval(fewer if self.benefit_direction(spec) == "decrease" else -fewer, spec.decision.ci_prob)
        return (
            Extra("baseline_risk", "control-arm event risk at which the differences are stated (decision.baseline_risk)",
                  risk, ".1%"),
            Extra("risk_difference", f"risk difference, treated minus control, at control risk {risk:.1%}",
                  difference, ".3f"),
            Extra("nnt", "number needed to treat for one event "
                  + ("fewer" if self.benefit_direction(spec) == "decrease" else "more"), number_needed_to_treat(gain)),
        )

    def load_data(self, data):
        """A one-table CSV file (:func:`~bayes_msc.evidence.onetable.load_binary_trials`, default
        column names), or a register (directory or loaded). No embedded data: ``None`` is refused."""
        from pathlib import Path

        from ..evidence.register import Register, load_register
        from ..io.errors import InputError

        if isinstance(data, Register):
            return data
        if data is None:
            raise InputError("the binary analysis has no embedded data: give your trials with --data trials.csv "
                             "(library: data='trials.csv'), a CSV of study,events_treated,n_treated,events_control,"
                             "n_control (see docs/tutorials/your-own-trials.md)")
        if Path(data).is_dir():
            return load_register(data)
        from ..evidence.onetable import load_binary_trials

        return load_binary_trials(data)

    def read_table(self, path, columns=None, event_name=None):
        from ..evidence.onetable import load_binary_trials

        return load_binary_trials(path, columns=columns, event_name=event_name)

    def data_statement(self, source) -> dict[str, str]:
        """The data file's ``benefit_direction`` column, when it has one."""
        statement = dict(getattr(source, "statement", {}) or {})
        if statement:
            statement["_source"] = f"the data file {getattr(source, 'path', '')}".rstrip()
        return statement

    def build_evidence(self, source, spec):
        """The mortality family's evidence, refused before any sampling when the decision
        threshold is on the harm side of 1 or a dose-response form has no doses to read."""
        from ..evidence.mortality import build_mortality_evidence
        from ..evidence.onetable import BinaryEvidence, BinaryTrials
        from ..io.errors import InputError, Location
        from .family import evidence_model_settings

        threshold, direction = spec.decision.clinically_meaningful_or, self.benefit_direction(spec)
        on_odds_ratio = getattr(spec.model, "effect_measure", "or") == "or"  # RR/RD thresholds: check_decision
        if on_odds_ratio and ((direction == "decrease") != (threshold < 1) or threshold == 1):
            side, example = ("below", "0.8") if direction == "decrease" else ("above", "1.25")
            raise InputError(
                f"the clinically meaningful odds ratio {threshold:g} is not on the benefit's side: with benefit "
                f"direction {direction} it must be {side} 1; state one, e.g. --clinically-meaningful {example}",
                Location(spec.path or "spec", field="decision.clinically_meaningful_or"))
        if spec.model.dose_response != "none" and source.doses.empty:
            raise InputError("a dose-response form needs each trial's dose: add a 'dose' column (million cells/kg)",
                             Location(str(getattr(source, "path", "") or source.root), field="dose"))
        evidence = build_mortality_evidence(source, spec.evidence, **evidence_model_settings(spec.model))
        if isinstance(source, BinaryTrials):
            evidence = replace(evidence, inclusion=_without_timepoint_flag(evidence.inclusion, spec))
        values = {f.name: getattr(evidence, f.name) for f in fields(evidence)}
        return BinaryEvidence(**values, event_name=getattr(source, "event_name", "event"),
                   count_words=("treated", "control", _plural(getattr(source, "event_name", "event"))))

    def specialise(self, model, decision=None) -> "BinaryOutcome":
        return _same_kind(self, super().specialise(model, decision))


def _same_kind(outcome: BinaryOutcome, specialised) -> BinaryOutcome:
    """The mortality family's outcome on the spec's scale (likelihood, baselines, dose-response,
    and any other setting the family reads) as a binary outcome."""
    if isinstance(specialised, BinaryOutcome):
        return specialised
    binary = BinaryOutcome.__new__(BinaryOutcome)
    binary.__dict__.update(specialised.__dict__)
    if "record" in specialised.__dict__:  # a record per scale: the binary version of it
        binary.record = binary_record(specialised.__dict__["record"])
    return binary


def _without_timepoint_flag(inclusion, spec):
    """A one table gives one count per arm, so no timepoint was chosen among others: the
    register's flag for a trial's unstated timepoint says nothing about it and is left out."""
    import pandas as pd

    from ..evidence.mortality import choose_timepoint
    from ..evidence.onetable import TIMEPOINT

    _, flag = choose_timepoint(pd.DataFrame({"day": [pd.NA], "timepoint": [TIMEPOINT]}),
                               tuple(spec.evidence.timepoint_window_days))
    inclusion = inclusion.copy()
    inclusion["reason"] = ["; ".join(part for part in str(reason).split("; ") if part and part != flag)
                           for reason in inclusion["reason"]]
    return inclusion


def _plural(word: str) -> str:
    return word if word.endswith("s") else f"{word}s"


BINARY = BinaryOutcome()
