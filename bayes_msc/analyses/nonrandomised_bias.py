"""How far non-randomised studies move the answer: the fit that pools them against the same
model with every non-randomised study masked (which is the randomised-only analysis: a masked
study's bias and effect follow their priors and say nothing about the pooled randomised effect).
Computed by every fit that pools non-randomised evidence; see also :mod:`bayes_msc.analyses.provenance`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..evidence.schema import NONRANDOMISED_CONTROLLED


def nonrandomised_ids(evidence) -> set[str]:
    """Included studies with non-randomised (concurrent or historical/matched) controls."""
    return {s for j, s in enumerate(evidence.studies) if evidence.allocation_of(j) in NONRANDOMISED_CONTROLLED}


@dataclass(frozen=True)
class DesignShift:
    """P(OR < 1) with and without the non-randomised studies, under the same model."""

    n_nonrandomised: int
    method: str  # "bias" or "power_prior"
    with_nonrandomised: dict[str, float]
    randomised_only: dict[str, float]

    @property
    def change(self) -> float:
        return self.with_nonrandomised["prob_benefit"] - self.randomised_only["prob_benefit"]

    def sentence(self) -> str:
        how = "bias-adjusted" if self.method == "bias" else "down-weighted (power prior)"
        mcse = np.hypot(self.with_nonrandomised["prob_benefit_mcse"], self.randomised_only["prob_benefit_mcse"])
        if abs(self.change) < 2 * mcse:
            direction = "no change beyond Monte Carlo error"
        else:
            direction = "towards benefit" if self.change > 0 else "away from benefit"
        return (
            f"The {self.n_nonrandomised} non-randomised studies ({how}) move P(OR < 1) from "
            f"{self.randomised_only['prob_benefit']:.3f} (randomised only) to "
            f"{self.with_nonrandomised['prob_benefit']:.3f}: {self.change:+.3f}, {direction} "
            f"(pooled OR {self.randomised_only['effect_median']:.2f} -> {self.with_nonrandomised['effect_median']:.2f})."
        )

    def to_dict(self) -> dict:
        return {"n_nonrandomised": self.n_nonrandomised, "method": self.method, "change_prob_benefit": self.change,
                "with_nonrandomised": self.with_nonrandomised, "randomised_only": self.randomised_only,
                "sentence": self.sentence()}


def design_shift(spec, evidence, result, refit) -> DesignShift | None:
    """Refit with the non-randomised studies masked (``refit(evidence)``: the pipeline's own
    fit, passed in so this module stays below it); None when none entered, or the outcome has
    no design-bias model."""
    if not spec.outcome_type.adjusts_design_bias or not getattr(evidence, "allocations", ()):
        return None
    masked = nonrandomised_ids(evidence)
    if not masked:
        return None
    randomised = refit(evidence.masked(masked))
    return DesignShift(len(masked), spec.model.nonrandomised, result.decisions.headline(), randomised.decisions.headline())
