"""Selection rules every outcome shares: which studies are listed, which are excluded before
any outcome data is looked at, which designs and cell arms a spec admits, and the worst quality
flag of a set of numbers. One home, so mortality and oxygenation word their inclusion reports
alike.

Evidence sets (``evidence.evidence_set``, ``--evidence``):

``randomised`` (default)
    every study is listed; only randomised trials are pooled. A non-randomised or single-arm
    study that would otherwise enter is left out with a ``design:`` reason, so every output can
    say how many were set aside and why.
``all``
    all controlled evidence: non-randomised studies enter too, and the mortality model adds a
    design-specific bias for them (``model.nonrandomised``: a three-level bias model, or a power
    prior); single-arm studies enter where the model can use them (dose-response, oxygenation).
``seed``
    the studies of the seed documents, every design (as ``all``).
``studies:ID1,ID2,...``
    the named studies only, every design (as ``all``); an unknown id is an input error.
"""

from __future__ import annotations

import pandas as pd

from .doses import arm_dose, dose_problem
from .register import Register
from ..io.errors import InputError, Location
from .schema import NONRANDOMISED_CONTROLLED, QUALITY  # QUALITY: ordered from best (primary) to worst
from .settings import STUDY_LIST_PREFIX

# What each allocation class is called in reasons and summaries.
ALLOCATION_WORDS = {
    "randomised": "randomised",
    "nonrandomised_concurrent": "non-randomised, concurrent controls",
    "historical_or_matched": "non-randomised, historical or matched controls",
    "single_arm": "single arm, no control group",
    "not_applicable": "no allocation (withdrawn)",
}


def named_studies(evidence_set: str) -> tuple[str, ...] | None:
    """The ids of a ``studies:ID1,ID2`` evidence set; None for the named sets."""
    if not evidence_set.startswith(STUDY_LIST_PREFIX):
        return None
    return tuple(s.strip() for s in evidence_set[len(STUDY_LIST_PREFIX):].split(",") if s.strip())


def pools_randomised_only(evidence_set: str) -> bool:
    return evidence_set == "randomised"


def evidence_set_studies(register: Register, evidence_set: str) -> pd.DataFrame:
    """The studies an evidence set lists: all, the seed trials, or a named list."""
    studies = register.studies
    if evidence_set == "seed":
        return studies[studies["seed_file"].fillna("").astype(str).str.len() > 0]
    names = named_studies(evidence_set)
    if names is not None:
        known = set(studies["study_id"])
        for name in names:
            if name not in known:
                raise InputError(
                    f"study {name!r} of the evidence set is not in the register",
                    Location("evidence.evidence_set"),
                )
        return studies[studies["study_id"].isin(names)]
    return studies


def design_exclusion(study: pd.Series, selection) -> str:
    """Why a study that would otherwise enter is left out for its design ("" when admitted).

    Checked last, after the outcome data, so that "not pooled: design" counts only studies
    that had usable numbers.
    """
    allocation = str(study.get("allocation", "randomised"))
    if allocation == "randomised" or not pools_randomised_only(selection.evidence_set):
        return ""
    adjusted = " with a design-bias adjustment" if allocation in NONRANDOMISED_CONTROLLED else ""
    return (
        f"design: {ALLOCATION_WORDS.get(allocation, allocation)}; the randomised evidence set pools "
        f"randomised trials only (--evidence all adds it{adjusted})"
    )


def design_counts(inclusion: pd.DataFrame) -> dict[str, int]:
    """Included studies by allocation class, and studies set aside for their design."""
    included = inclusion[inclusion["status"] == "included"]
    counts = included["allocation"].value_counts().to_dict() if "allocation" in included else {}
    design_out = inclusion[inclusion["reason"].astype(str).str.startswith("design:")]
    counts["not_pooled_design"] = len(design_out)
    return counts


def design_sentence(inclusion: pd.DataFrame, bias_adjusted: bool = True) -> str:
    """E.g. "11 randomised trials; 7 non-randomised studies not pooled: design".

    ``bias_adjusted``: whether the analysis adjusts pooled non-randomised studies for their
    design (the mortality model does; the continuous models pool them as they are).
    """
    if "allocation" not in inclusion:
        return ""
    included = inclusion[inclusion["status"] == "included"]
    randomised = int((included["allocation"] == "randomised").sum())
    nonrandomised = int(included["allocation"].isin(NONRANDOMISED_CONTROLLED).sum())
    single = int((included["allocation"] == "single_arm").sum())
    parts = [f"{randomised} randomised trial{'s' if randomised != 1 else ''}"]
    if nonrandomised:
        how = "with a design-bias adjustment" if bias_adjusted else "without a design-bias adjustment"
        parts.append(f"{nonrandomised} non-randomised controlled stud{'ies' if nonrandomised != 1 else 'y'} pooled {how}")
    if single:
        parts.append(f"{single} single-arm stud{'ies' if single != 1 else 'y'}")
    out = inclusion[inclusion["reason"].astype(str).str.startswith("design:")]
    if len(out):
        parts.append(f"{len(out)} non-randomised stud{'ies' if len(out) != 1 else 'y'} not pooled: design")
    return "; ".join(parts)


def inclusion_entry(study: pd.Series) -> dict:
    """A study's row of the inclusion report, excluded until an outcome builder admits it."""
    seed = study.get("seed_file")
    return {
        "study_id": study["study_id"], "label": study["label"],
        "seed": isinstance(seed, str) and bool(seed.strip()),
        "allocation": str(study.get("allocation", "randomised")),
        "status": "excluded", "contribution": "", "detail": "", "reason": "", "quality": "", "source": "",
    }


def listing_exclusion(study: pd.Series, selection) -> str:
    """Why a study is out whatever its outcome data (the spec excludes it, or it was withdrawn)."""
    if study["study_id"] in selection.exclude_studies:
        return "excluded by the analysis spec (evidence.exclude_studies)"
    if str(study.get("status")) == "withdrawn":
        return "withdrawn registration: no participants, no results"
    return ""


def excluded_class(arm: pd.Series, classes: tuple[str, ...]) -> bool:
    """A cell arm of a product class the spec does not admit (no classes listed: all admitted)."""
    return arm["role"] == "cells" and bool(classes) and arm["product_class"] not in classes


def worst_quality(qualities) -> str:
    present = {str(q) for q in qualities if isinstance(q, str)}
    ranked = [q for q in QUALITY if q in present]
    return ranked[-1] if ranked else ""


def dose_check(register: Register, study_id: str, cell_arms, use_assumed: bool) -> tuple[str, str]:
    """Under a dose-response form every cell arm needs a place on the dose axis.

    Returns ``(problem, flag)``: a reason to exclude the study, or a flag to report with it.
    """
    doses = [arm_dose(register, study_id, a) for a in dict.fromkeys(cell_arms)]
    problem = dose_problem(doses, use_assumed)
    flag = "dose levels are an assumption (flagged in doses.csv)" if any(d.assumed for d in doses) else ""
    return problem, ("" if problem else flag)
