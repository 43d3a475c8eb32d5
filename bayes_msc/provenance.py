"""Which class of evidence carries the conclusion: designs and provenance of the numbers.

Two questions a reviewer asks of a pooled mortality estimate, both answered with masked refits
(the masked studies' counts become n = deaths = 0, so array shapes and the compiled model stay
the same and each refit costs a fraction of a second):

* :func:`design_shift` — how far the non-randomised studies move P(OR < 1), and in which
  direction: the bias-adjusted fit against the same model with every non-randomised study
  masked (which is the randomised-only analysis: a masked study's bias and effect follow their
  priors and say nothing about the pooled randomised effect).
* :func:`provenance_table` — the headline numbers when the evidence is restricted to numbers
  read directly in a trial's own report (primary), then adding secondary, inferred and assumed
  numbers, and finally the non-randomised designs. A study's provenance is the worst flag among
  the numbers it enters with: its mortality rows and its arm sizes (Zhu 2021's counts are
  primary, its arm sizes inferred).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .evidence.schema import NONRANDOMISED_CONTROLLED, QUALITY
from .evidence.selection import worst_quality


def nonrandomised_ids(evidence) -> set[str]:
    """Included studies with non-randomised (concurrent or historical/matched) controls."""
    return {s for j, s in enumerate(evidence.studies) if evidence.allocation_of(j) in NONRANDOMISED_CONTROLLED}


def headline_numbers(result) -> dict[str, float]:
    """P(OR < 1), P(OR < threshold) with MCSEs, and the pooled OR (median, 95% ETI)."""
    d = result.decisions
    return {
        "prob_or_below_1": d.prob_or_below_1.prob, "prob_or_below_1_mcse": d.prob_or_below_1.mcse,
        "prob_or_below_threshold": d.prob_or_below_threshold.prob,
        "prob_or_below_threshold_mcse": d.prob_or_below_threshold.mcse,
        "or_median": d.pooled_or.median, "or_lower": d.pooled_or.lower, "or_upper": d.pooled_or.upper,
    }


@dataclass(frozen=True)
class DesignShift:
    """P(OR < 1) with and without the non-randomised studies, under the same model."""

    n_nonrandomised: int
    method: str  # "bias" or "power_prior"
    with_nonrandomised: dict[str, float]
    randomised_only: dict[str, float]

    @property
    def change(self) -> float:
        return self.with_nonrandomised["prob_or_below_1"] - self.randomised_only["prob_or_below_1"]

    def sentence(self) -> str:
        how = "bias-adjusted" if self.method == "bias" else "down-weighted (power prior)"
        mcse = np.hypot(self.with_nonrandomised["prob_or_below_1_mcse"], self.randomised_only["prob_or_below_1_mcse"])
        if abs(self.change) < 2 * mcse:
            direction = "no change beyond Monte Carlo error"
        else:
            direction = "towards benefit" if self.change > 0 else "away from benefit"
        return (
            f"The {self.n_nonrandomised} non-randomised studies ({how}) move P(OR < 1) from "
            f"{self.randomised_only['prob_or_below_1']:.3f} (randomised only) to "
            f"{self.with_nonrandomised['prob_or_below_1']:.3f}: {self.change:+.3f}, {direction} "
            f"(pooled OR {self.randomised_only['or_median']:.2f} -> {self.with_nonrandomised['or_median']:.2f})."
        )

    def to_dict(self) -> dict:
        return {"n_nonrandomised": self.n_nonrandomised, "method": self.method, "change_prob_or_below_1": self.change,
                "with_nonrandomised": self.with_nonrandomised, "randomised_only": self.randomised_only,
                "sentence": self.sentence()}


def design_shift(spec, evidence, result) -> DesignShift | None:
    """Refit with the non-randomised studies masked; None when none entered (or not mortality)."""
    from .api import fit_spec

    if spec.outcome != "mortality" or not getattr(evidence, "allocations", ()):
        return None
    masked = nonrandomised_ids(evidence)
    if not masked:
        return None
    randomised = fit_spec(spec, evidence=evidence.masked(masked), compare_designs=False)
    return DesignShift(len(masked), spec.model.nonrandomised, headline_numbers(result), headline_numbers(randomised))


# -- decision by provenance ---------------------------------------------------------------------


def study_provenance(register, evidence) -> dict[str, str]:
    """Each included study's worst quality flag over the numbers it enters with (death counts
    used and its arms' sizes)."""
    arms = register.arms.set_index(["study_id", "arm_id"])
    inclusion = evidence.inclusion.set_index("study_id")
    out = {}
    for study in evidence.studies:
        used = evidence.arms.loc[evidence.arms["study_id"] == study, "arm_id"]
        arm_flags = [arms.loc[(study, a), "quality"] for a in used if not pd.isna(arms.loc[(study, a), "n"])]
        out[study] = worst_quality([inclusion.loc[study, "quality"], *arm_flags])
    return out


@dataclass(frozen=True)
class ProvenanceTable:
    table: pd.DataFrame  # one row per restriction: level, studies, headline numbers, diagnostics
    statement: str

    def to_dict(self) -> dict:
        return {"table": self.table.to_dict(orient="records"), "statement": self.statement}


def provenance_levels(provenance: dict[str, str], nonrandomised: set[str]) -> list[tuple[str, set[str]]]:
    """(label, studies kept) for each restriction, from primary numbers only to everything."""
    levels = []
    randomised = {s for s in provenance if s not in nonrandomised}
    for i, flag in enumerate(QUALITY):
        allowed = set(QUALITY[: i + 1])
        label = "primary numbers only" if i == 0 else f"+ {flag}"
        levels.append((label, {s for s in randomised if provenance[s] in allowed}))
    levels.append(("+ non-randomised designs", set(provenance)))
    return levels


def provenance_table(spec, data=None) -> ProvenanceTable:
    """Headline numbers as the evidence widens by provenance, then by design.

    Fitted on the "all" evidence (the spec's own set if it already admits non-randomised
    studies) so that every row shares one compiled model; each restriction masks the studies
    it leaves out. The randomised rows are therefore randomised-only analyses within Monte
    Carlo error (masked non-randomised studies inform nothing).
    """
    from .api import analysis_for, fit_spec, load_data

    if spec.outcome != "mortality":
        from .errors import InputError

        raise InputError("the provenance table is for the mortality analysis")
    register = load_data(spec, data)
    if spec.evidence.evidence_set == "randomised":
        spec = spec.with_evidence(evidence_set="all")
    evidence = analysis_for(spec.outcome).build_evidence(register, spec)
    provenance = study_provenance(register, evidence)
    nonrandomised = nonrandomised_ids(evidence)
    rows = []
    for label, kept in provenance_levels(provenance, nonrandomised):
        if not kept:
            rows.append({"evidence": label, "studies": 0, "study_ids": "", "diagnostics_passed": None})
            continue
        masked = set(evidence.studies) - kept
        result = fit_spec(spec, evidence=evidence.masked(masked) if masked else evidence, compare_designs=False)
        rows.append({"evidence": label, "studies": len(kept), "study_ids": ", ".join(s for s in evidence.studies if s in kept),
                     **headline_numbers(result), "diagnostics_passed": bool(result.diagnostics.passed)})
    table = pd.DataFrame(rows)
    return ProvenanceTable(table, _provenance_statement(table, spec))


def _provenance_statement(table: pd.DataFrame, spec) -> str:
    fitted = table.dropna(subset=["prob_or_below_1"]) if "prob_or_below_1" in table else table.iloc[0:0]
    if fitted.empty:
        return "No restriction left any study to fit."
    lo, hi = fitted["prob_or_below_1"].min(), fitted["prob_or_below_1"].max()
    first = fitted.iloc[0]
    return (
        f"P(OR < 1) ranges from {lo:.3f} to {hi:.3f} across the restrictions; on "
        f"{first['evidence']} ({int(first['studies'])} studies) it is {first['prob_or_below_1']:.3f}. "
        f"Randomised rows mask the non-randomised studies; the last row adds them "
        f"({'bias-adjusted' if spec.model.nonrandomised == 'bias' else 'power prior'})."
    )


def render_provenance(provenance: ProvenanceTable) -> str:
    """The provenance table for the terminal."""
    lines = ["Decision by provenance: headline numbers as the evidence widens (medians, 95% equal-tailed intervals)",
             f"  {'evidence':<26} {'studies':>7}  {'pooled OR (95% ETI)':<22} {'P(OR < 1)':<17} {'P(OR < 0.8)':<17} diagnostics"]
    for row in provenance.table.itertuples():
        if not row.studies:
            lines.append(f"  {row.evidence:<26} {0:>7}  (no study: nothing to fit)")
            continue
        band = f"{row.or_median:.2f} ({row.or_lower:.2f} to {row.or_upper:.2f})"
        lines.append(
            f"  {row.evidence:<26} {int(row.studies):>7}  {band:<22} {row.prob_or_below_1:.3f} ({row.prob_or_below_1_mcse:.3f})"
            f"   {row.prob_or_below_threshold:.3f} ({row.prob_or_below_threshold_mcse:.3f})   "
            f"{'pass' if row.diagnostics_passed else 'FAIL'}"
        )
    return "\n".join(lines + ["", provenance.statement])
