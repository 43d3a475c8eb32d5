"""Which class of evidence carries the conclusion: designs and provenance of the numbers.

Two questions a reviewer asks of a pooled mortality estimate, both answered with masked refits
(the masked studies' counts become n = deaths = 0, so array shapes and the compiled model stay
the same and each refit costs a fraction of a second):

* :func:`bayes_msc.analyses.nonrandomised_bias.design_shift` — how far the non-randomised studies move
  P(OR < 1) (computed by every fit that pools them; below the pipeline, so it lives there).
* :func:`provenance_table` — the headline numbers when the evidence is restricted to numbers
  read directly in a trial's own report (primary), then adding secondary, inferred and assumed
  numbers, and finally the non-randomised designs. A study's provenance is the worst flag among
  the numbers it enters with: its mortality rows and its arm sizes (Zhu 2021's counts are
  primary, its arm sizes inferred).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..evidence.schema import QUALITY
from ..evidence.selection import worst_quality


# -- decision by provenance ---------------------------------------------------------------------


def _used_arms(evidence, study: str) -> list[str]:
    """The register arms a study enters with: its arm rows (counts), or the arms and
    comparators of its likelihood terms (continuous outcomes)."""
    if hasattr(evidence, "arms"):
        return list(evidence.arms.loc[evidence.arms["study_id"] == study, "arm_id"])
    terms = evidence.terms[evidence.terms["study_id"] == study]
    return [a for column in ("arm", "comparator") for a in terms[column] if isinstance(a, str) and a]


def study_provenance(register, evidence) -> dict[str, str]:
    """Each included study's worst quality flag over the numbers it enters with (the outcome
    numbers used and its arms' sizes)."""
    arms = register.arms.set_index(["study_id", "arm_id"])
    inclusion = evidence.inclusion.set_index("study_id")
    out = {}
    for study in evidence.studies:
        used = [a for a in _used_arms(evidence, study) if (study, a) in arms.index]
        arm_flags = [arms.loc[(study, a), "quality"] for a in used if not pd.isna(arms.loc[(study, a), "n"])]
        out[study] = worst_quality([inclusion.loc[study, "quality"], *arm_flags])
    return out


def not_randomised_ids(evidence) -> set[str]:
    """Included studies whose allocation is not randomised (non-randomised controls, or a
    single arm read against other studies' control arms), from the inclusion table."""
    inclusion = evidence.inclusion.set_index("study_id")
    if "allocation" not in inclusion:
        return set()
    return {s for s in evidence.studies if str(inclusion.loc[s, "allocation"]) != "randomised"}


@dataclass(frozen=True)
class ProvenanceTable:
    table: pd.DataFrame  # one row per restriction: level, studies, headline numbers, diagnostics
    statement: str
    words: dict  # how the outcome states its numbers: effect, benefit, meaningful, digits

    def to_dict(self) -> dict:
        return {"table": self.table.to_dict(orient="records"), "statement": self.statement, "words": self.words}


def _words(spec) -> dict:
    """Column words in the outcome's own vocabulary ("pooled OR", "P(OR < 1)"; "pooled
    difference", "P(difference > 0)")."""
    outcome = spec.outcome_type
    m = outcome.measure
    better = "<" if outcome.benefit_direction(spec) == "decrease" else ">"
    return {"effect": f"pooled {m.short}" + (f" ({m.unit})" if m.unit else ""),
            "benefit": f"P({m.short} {better} {m.null:g})",
            "meaningful": f"P({m.short} {better} {outcome.meaningful_threshold(spec):g})", "digits": m.digits}


def provenance_levels(provenance: dict[str, str], nonrandomised: set[str]) -> list[tuple[str, set[str]]]:
    """(label, studies kept) for each restriction, from primary numbers only to everything."""
    levels = []
    randomised = {s for s in provenance if s not in nonrandomised}
    for i, flag in enumerate(QUALITY):
        allowed = set(QUALITY[: i + 1])
        label = "primary numbers only" if i == 0 else f"+ {flag}"
        levels.append((label, {s for s in randomised if provenance[s] in allowed}))
    levels.append(("+ non-randomised designs", set(provenance)))  # and single-arm studies, where they enter
    return levels


def provenance_table(spec, data=None) -> ProvenanceTable:
    """Headline numbers as the evidence widens by provenance, then by design.

    Fitted on the "all" evidence (the spec's own set if it already admits non-randomised
    studies) so that every row shares one compiled model; each restriction masks the studies
    it leaves out. The randomised rows are therefore randomised-only analyses within Monte
    Carlo error (masked non-randomised studies inform nothing).
    """
    from ..api import fit_spec, load_data
    from .sensitivity import failed_checks

    if "evidence_set" not in spec.outcome_type.evidence_keys:
        from ..io.errors import InputError

        raise InputError(f"the provenance table reads an evidence register; the {spec.outcome} analysis has none")
    register = load_data(spec, data)
    if spec.evidence.evidence_set == "randomised":
        spec = spec.with_evidence(evidence_set="all")
    evidence = spec.outcome_type.build_evidence(register, spec)
    provenance = study_provenance(register, evidence)
    nonrandomised = not_randomised_ids(evidence)
    rows = []
    for label, kept in provenance_levels(provenance, nonrandomised):
        if not kept:
            rows.append({"evidence": label, "studies": 0, "study_ids": "", "diagnostics_passed": None})
            continue
        masked = set(evidence.studies) - kept
        result = fit_spec(spec, evidence=evidence.masked(masked) if masked else evidence, compare_designs=False)
        rows.append({"evidence": label, "studies": len(kept), "study_ids": ", ".join(s for s in evidence.studies if s in kept),
                     **result.decisions.headline(), "diagnostics_passed": bool(result.diagnostics.passed),
                     "diagnostics_failed": failed_checks(result.diagnostics)})
    table = pd.DataFrame(rows)
    return ProvenanceTable(table, _provenance_statement(table, spec), _words(spec))


def _provenance_statement(table: pd.DataFrame, spec) -> str:
    fitted = table.dropna(subset=["prob_benefit"]) if "prob_benefit" in table else table.iloc[0:0]
    if fitted.empty:
        return "No restriction left any study to fit."
    lo, hi = fitted["prob_benefit"].min(), fitted["prob_benefit"].max()
    first = fitted.iloc[0]
    how = (("bias-adjusted" if spec.model.nonrandomised == "bias" else "power prior")
           if spec.outcome_type.adjusts_design_bias else "single-arm changes read against other studies' control arms")
    return (
        f"{_words(spec)['benefit']} ranges from {lo:.3f} to {hi:.3f} across the restrictions; on "
        f"{first['evidence']} ({int(first['studies'])} studies) it is {first['prob_benefit']:.3f}. "
        f"Randomised rows mask the other studies; the last row adds them ({how})."
    )


def render_provenance(provenance: ProvenanceTable) -> str:
    """The provenance table for the terminal."""
    from .sensitivity import diagnostics_word

    w = provenance.words
    lines = ["Decision by provenance: headline numbers as the evidence widens (medians, 95% equal-tailed intervals)",
             f"  {'evidence':<26} {'studies':>7}  {w['effect'] + ' (95% ETI)':<28} {w['benefit']:<22} {w['meaningful']:<22} "
             "diagnostics"]
    for row in provenance.table.itertuples():
        if not row.studies:
            lines.append(f"  {row.evidence:<26} {0:>7}  (no study: nothing to fit)")
            continue
        d = w["digits"]
        band = f"{row.effect_median:{d}} ({row.effect_lower:{d}} to {row.effect_upper:{d}})"
        lines.append(
            f"  {row.evidence:<26} {int(row.studies):>7}  {band:<28} {row.prob_benefit:.3f} ({row.prob_benefit_mcse:.3f})"
            f"        {row.prob_meaningful:.3f} ({row.prob_meaningful_mcse:.3f})        "
            f"{diagnostics_word(row)}"
        )
    from .sensitivity import MONTE_CARLO_VARIANTS

    return "\n".join(lines + ["", provenance.statement, MONTE_CARLO_VARIANTS])
