"""Selection rules every outcome shares: which studies are listed, which are excluded before
any outcome data is looked at, which cell arms a spec admits, and the worst quality flag of a
set of numbers. One home, so mortality and oxygenation word their inclusion reports alike."""

from __future__ import annotations

import pandas as pd

from .doses import arm_dose, dose_problem
from .register import Register
from .schema import QUALITY  # ordered from best (primary) to worst (assumption)


def evidence_set_studies(register: Register, evidence_set: str) -> pd.DataFrame:
    """The studies an evidence set lists: all, or the seed trials only."""
    studies = register.studies
    if evidence_set == "seed":
        return studies[studies["seed_file"].fillna("").astype(str).str.len() > 0]
    return studies


def inclusion_entry(study: pd.Series) -> dict:
    """A study's row of the inclusion report, excluded until an outcome builder admits it."""
    seed = study.get("seed_file")
    return {
        "study_id": study["study_id"], "label": study["label"],
        "seed": isinstance(seed, str) and bool(seed.strip()),
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
