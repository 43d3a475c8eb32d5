"""Oxygenation evidence: each trial's PaO2/FiO2 report turned into normal likelihood terms.

A register row carries whatever the trial published — a mean and SD, a median and IQR, an
estimate with its confidence interval or P value, an S/F ratio — and
:mod:`bayes_msc.evidence.derivations` turns it into an estimate and a standard error, keeping
the formula so ``data show`` and the report can put every derived number next to its source
numbers. Two kinds of term result (DESIGN.md, "Oxygenation"):

* **arm terms**: an arm's mean change from baseline; the model reads it as that study's
  natural course plus, for a cell arm, that study's treatment effect. A single-arm study
  (BC-U001) enters this way and learns its natural course from other studies' control arms.
* **contrast terms**: a reported difference, cell arm minus comparator; the model reads it
  as the study's treatment effect alone.

A trial that reports both (Monsel 2022) enters once — by its arms (default: its control arm
then informs the natural course) or by its contrast (``evidence.prefer = "contrast"``) — never
both, which would count its patients twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..io.errors import InputError
from . import derivations
from .doses import arm_dose
from .register import Register
from .selection import (
    design_exclusion, dose_check, evidence_set_studies, excluded_class, inclusion_entry, listing_exclusion, worst_quality,
)

if TYPE_CHECKING:
    from .settings import EvidenceSelection

# Measures that can enter a PaO2/FiO2 analysis, and why the others cannot.
USABLE_MEASURES = ("pf_ratio", "sf_ratio")
MEASURE_REASONS = {
    "pao2": "PaO2 alone (mmHg) is not PaO2/FiO2 and cannot be converted without FiO2",
    "oxygenation_index": "oxygenation index (mean airway pressure x FiO2 / PaO2) is a different measure; "
    "no conversion to PaO2/FiO2 exists",
}
# A masked study's terms keep their place (so array shapes, and the compiled model, stay
# the same) but carry no information: its standard errors become this large.
MASKED_SE = 1.0e6

TERM_COLUMNS = [
    "study_id", "study_index", "kind", "arm", "comparator", "treated", "estimate", "se",
    "se_is_bound", "day", "timepoint", "derivation", "quality", "source", "dose", "sd_missing", "n",
]


@dataclass(frozen=True)
class OxygenationEvidence:
    """What the oxygenation model reads.

    Attributes
    ----------
    studies
        Study ids that enter, in model order.
    terms
        One row per likelihood term (``kind`` "arm" or "contrast"), with the derived
        estimate and SE in mmHg and how they were derived.
    derived
        Every number derived from a register row, next to the row's source numbers.
    inclusion
        Per study: included or excluded, what it contributes, and why.
    """

    studies: tuple[str, ...]
    terms: pd.DataFrame
    derived: pd.DataFrame
    inclusion: pd.DataFrame
    register_hash: str
    natural_course: bool = True  # False: contrasts only (the classic normal-normal model)
    # SDs of PaO2/FiO2 changes the register reports (mmHg): the data the model's hierarchical
    # prior for a missing SD (Martínez-Muñoz 2024) learns from; see reported_change_sds.
    reported_sds: tuple[float, ...] = ()

    @property
    def n_studies(self) -> int:
        return len(self.studies)

    def masked(self, study_ids) -> "OxygenationEvidence":
        """The same terms with the named studies' information removed (shapes unchanged)."""
        terms = self.terms.copy()
        hit = terms["study_id"].isin(set(study_ids))
        terms.loc[hit, "se"] = MASKED_SE
        if "sd_missing" in terms:  # a masked term stops borrowing an SD (same layout): its huge SE stands
            terms["sd_borrow_active"] = ~hit & terms.get("sd_borrow_active", pd.Series(True, index=terms.index)).astype(bool)
        return replace(self, terms=terms)


# -- derivation of one row ---------------------------------------------------------------


def derive_row(row: pd.Series, n: int | None, method: str) -> dict:
    """Estimate and SE (mmHg of PaO2/FiO2) of one register row, and how they were obtained.

    Raises :class:`InputError` when the row's statistic needs a group size that is unknown
    or its numbers cannot give a standard error.
    """
    try:
        return _derive_row(row, n, method)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _derive_row(row: pd.Series, n: int | None, method: str) -> dict:
    stat = row["statistic"]
    steps: list[derivations.Derived] = []
    bound = False
    if stat in ("mean_sd", "median_iqr") and n is None:
        raise InputError(f"a {stat} row needs the group size n, which is not reported")
    if stat == "mean_sd":
        estimate = float(row["estimate"])
        se = derivations.se_from_sd(float(row["sd"]), n)
        steps.append(se)
    elif stat == "mean_se":
        estimate, se = float(row["estimate"]), None
    elif stat == "median_iqr":
        mean = derivations.mean_from_median_iqr(float(row["estimate"]), float(row["q1"]), float(row["q3"]), n, method)
        sd = derivations.sd_from_iqr(float(row["q1"]), float(row["q3"]), n)
        se = derivations.se_from_sd(sd.value, n)
        steps += [mean, sd, se]
        estimate = mean.value
    elif stat == "estimate_ci":
        ci_prob = 0.95 if pd.isna(row["ci_prob"]) else float(row["ci_prob"])
        se = derivations.se_from_ci(float(row["ci_lower"]), float(row["ci_upper"]), ci_prob)
        steps.append(se)
        estimate = float(row["estimate"])
    elif stat == "estimate_p":
        bound = row["p_relation"] == "<"
        se = derivations.se_from_p(float(row["estimate"]), float(row["p_value"]), bound=bound)
        steps.append(se)
        estimate = float(row["estimate"])
    elif stat == "estimate_no_spread":
        raise InputError("no SD, IQR, CI or P value reported (spread NOT FOUND): no standard error can be derived")
    else:  # direction_only never reaches here
        raise InputError(f"statistic {stat!r} carries no numbers")
    se_value = float(row["se"]) if stat == "mean_se" else se.value
    if row["measure"] == "sf_ratio":
        converted, converted_se = derivations.pf_change_from_sf_change(estimate, se_value)
        steps += [converted, converted_se]
        estimate, se_value = converted.value, converted_se.value
    return {
        "estimate": estimate,
        "se": se_value,
        "se_is_bound": bound,
        "derivation": "; ".join(step.formula for step in steps) or "as reported",
        "references": "; ".join(dict.fromkeys(step.reference for step in steps if step.reference)),
    }


def source_numbers(row: pd.Series) -> str:
    """The numbers a row reports, as the trial gave them (for ``data show`` and the report)."""
    stat = row["statistic"]
    n = "" if pd.isna(row["n"]) else f", n {int(row['n'])}"
    if stat == "mean_sd":
        return f"mean {row['estimate']:g} (SD {row['sd']:g}){n}"
    if stat == "mean_se":
        return f"mean {row['estimate']:g} (SE {row['se']:g}){n}"
    if stat == "median_iqr":
        return f"median {row['estimate']:g} [IQR {row['q1']:g}, {row['q3']:g}]{n}"
    if stat == "estimate_ci":
        prob = 0.95 if pd.isna(row["ci_prob"]) else row["ci_prob"]
        return f"{row['estimate']:g} ({prob:.0%} CI {row['ci_lower']:g}, {row['ci_upper']:g})"
    if stat == "estimate_p":
        return f"{row['estimate']:g} (P {row['p_relation'] or '='} {row['p_value']:g})"
    if stat == "estimate_no_spread":
        return f"{row['estimate']:g} (no spread reported; mean or median not stated){n}"
    return "direction only"


# -- selection ---------------------------------------------------------------------------


def choose_day(rows: pd.DataFrame, target: int, window: tuple[int, int]) -> tuple[pd.DataFrame, str]:
    """The rows of the reported day closest to ``target`` inside ``window``.

    Rows without a stated day are used only when no dated row qualifies, with a flag.
    """
    dated = rows[rows["day"].notna() & (rows["day"] >= window[0]) & (rows["day"] <= window[1])]
    if len(dated):
        distance = (dated["day"].astype("float64") - target).abs()
        day = dated.loc[distance.idxmin(), "day"]
        return dated[dated["day"] == day], ""
    undated = rows[rows["day"].isna()]
    if len(undated):
        label = str(undated["timepoint"].iloc[0])
        return undated[undated["timepoint"] == label], f"day of measurement not stated in the source ({label}): used as reported"
    return rows.iloc[0:0], ""


def _arm_size(arms: pd.DataFrame, row: pd.Series) -> int | None:
    if not pd.isna(row["n"]):
        return int(row["n"])
    size = arms.loc[row["arm"], "n"]
    return None if pd.isna(size) else int(size)


def reported_change_sds(register: Register, method: str) -> tuple[float, ...]:
    """The SD of every PaO2/FiO2 change the register reports with a spread (any timepoint,
    used or not): a mean's SD, an SE times sqrt(n), or an IQR's SD (Wan 2014). The data from
    which a trial without any spread borrows its SD (Cochrane Handbook 6.5.2.8 imputes one
    fixed SD; the model instead learns their distribution and carries its uncertainty)."""
    table = register.oxygenation
    rows = table[(table["measure"] == "pf_ratio") & (table["quantity"] == "change_from_baseline")
                 & table["comparator"].isna()]
    sds = []
    for _, row in rows.iterrows():
        arms = register.arms[register.arms["study_id"] == row["study_id"]].set_index("arm_id")
        n = _arm_size(arms, row)
        if row["statistic"] == "mean_sd":
            sds.append(float(row["sd"]))
        elif row["statistic"] == "mean_se" and n:
            sds.append(float(row["se"]) * math.sqrt(n))
        elif row["statistic"] == "median_iqr" and n:
            try:
                sds.append(derivations.sd_from_iqr(float(row["q1"]), float(row["q3"]), n).value)
            except ValueError:  # no SD to lend (n < 2, quartiles reversed): refused where the row itself enters
                continue
    return tuple(sds)


def sd_missing_mask(terms: pd.DataFrame) -> np.ndarray:
    """Boolean mask of the terms whose SD was not reported (and is borrowed). The column is
    absent, or holds NaN, for registers or simulations without such terms: both mean False."""
    if "sd_missing" not in terms:
        return np.zeros(len(terms), dtype=bool)
    return terms["sd_missing"].astype("boolean").fillna(False).to_numpy(dtype=bool)


def _no_spread_term(row: pd.Series, n: int | None, reported_sds: tuple[float, ...]) -> dict:
    """A central value without any spread: its SD becomes a model parameter (see
    :mod:`bayes_msc.models.continuous`); ``se`` holds a plug-in (median reported SD / sqrt(n))
    only for displays and simulations."""
    if len(reported_sds) < 2:
        raise InputError("no SD, IQR, CI or P value reported, and fewer than two other reported SDs to borrow from")
    if n is None:
        raise InputError("no spread reported and the group size is unknown: no SD can be borrowed")
    plug_in = float(np.median(reported_sds)) / math.sqrt(n)
    return {
        "estimate": float(row["estimate"]), "se": plug_in, "se_is_bound": False, "sd_missing": True, "n": n,
        "derivation": (
            f"no SD, IQR, CI or P value reported: the SD is a model parameter with a hierarchical prior learnt "
            f"from the {len(reported_sds)} reported SDs of PaO2/FiO2 changes (plug-in SE for display: median "
            f"SD {np.median(reported_sds):.1f} / sqrt({n}) = {plug_in:.2f}); mean or median not stated: "
            "analysed as a mean (an assumption)"
        ),
        "references": "Cochrane Handbook 6.5.2.8 (imputing missing SDs)",
    }


def build_oxygenation_evidence(register: Register, selection: EvidenceSelection, *, dose_response: bool = False,
                               use_assumed_doses: bool = True) -> OxygenationEvidence:
    """Apply an evidence selection to the register's oxygenation rows (pure: no I/O).

    ``dose_response``: the fit models dose-response, so each cell arm needs a usable dose;
    ``use_assumed_doses``: an arm whose dose is an assumption may enter one.
    """
    window = tuple(selection.oxygenation_day_window)
    table = register.oxygenation
    inclusion, terms, derived = [], [], []
    included: list[str] = []
    reported_sds = reported_change_sds(register, selection.median_iqr_method)

    for _, row in table.iterrows():  # every derivable number, used or not (for `data show`)
        arms = register.arms[register.arms["study_id"] == row["study_id"]].set_index("arm_id")
        entry = {
            "study_id": row["study_id"], "arm": row["arm"], "comparator": row["comparator"],
            "measure": row["measure"], "quantity": row["quantity"], "timepoint": row["timepoint"],
            "reported": source_numbers(row), "estimate": math.nan, "se": math.nan, "derivation": "",
            "used": False, "quality": row["quality"], "source": row["source"],
        }
        if row["statistic"] != "direction_only":
            try:
                if row["statistic"] == "estimate_no_spread":
                    numbers = _no_spread_term(row, _arm_size(arms, row), reported_sds)
                    entry.update(estimate=numbers["estimate"], se=math.nan, derivation=numbers["derivation"])
                else:
                    entry.update(derive_row(row, _arm_size(arms, row), selection.median_iqr_method))
            except InputError as exc:
                entry["derivation"] = f"not derivable: {exc.problem}"
        derived.append(entry)

    for _, study in evidence_set_studies(register, selection.evidence_set).iterrows():
        sid = study["study_id"]
        entry = inclusion_entry(study)
        inclusion.append(entry)
        entry["reason"] = listing_exclusion(study, selection)
        if entry["reason"]:
            continue
        rows = table[table["study_id"] == sid]
        if rows.empty:
            entry["reason"] = "oxygenation not reported"
            continue
        reason = _unusable_reason(rows)
        usable = rows[
            rows["measure"].isin(USABLE_MEASURES)
            & (rows["quantity"] == "change_from_baseline")
            & (rows["statistic"] != "direction_only")
        ]
        if usable.empty:
            entry["reason"] = reason
            continue
        arms = register.arms[register.arms["study_id"] == sid].set_index("arm_id")
        dropped = sorted({a for a in usable["arm"] if excluded_class(arms.loc[a], selection.product_classes)})
        usable = usable[~usable["arm"].isin(dropped)]
        if usable.empty:
            entry["reason"] = "cell arms are of a product class this analysis leaves out: " + ", ".join(dropped)
            continue
        chosen, flag = choose_day(usable, selection.oxygenation_day, window)
        if chosen.empty:
            entry["reason"] = f"no PaO2/FiO2 change reported between day {window[0]} and day {window[1]}"
            continue
        flags = [flag] if flag else []
        arm_rows = chosen[chosen["comparator"].isna()]
        contrast_rows = chosen[chosen["comparator"].notna()]
        has_control_arm = any(arms.loc[a, "role"] == "control" for a in arm_rows["arm"])
        if len(contrast_rows) and len(arm_rows):
            use_arms = selection.prefer == "arms" and has_control_arm
            flags.append(
                "reports both arm changes and a contrast: entered by its "
                + ("arms (evidence.prefer = arms)" if use_arms else "contrast")
                + "; the other is not used, so no patient counts twice"
            )
            chosen = arm_rows if use_arms else contrast_rows
        if len(chosen[chosen["comparator"].isna()]) and not has_control_arm:
            flags.append(
                "no control arm: its change is read as natural course + treatment effect, with the "
                "natural course borrowed from other studies' control arms"
            )
        if dose_response:
            cells = [a for a in chosen["arm"] if arms.loc[a, "role"] == "cells"]
            problem, flag = dose_check(register, sid, cells, use_assumed_doses)
            if problem:
                entry["reason"] = problem
                continue
            flags += [flag] if flag else []
        entry["reason"] = design_exclusion(study, selection)
        if entry["reason"]:
            continue
        study_index = len(included)
        details, qualities, sources = [], [], []
        for _, row in chosen.iterrows():
            kind = "contrast" if not pd.isna(row["comparator"]) else "arm"
            try:
                if row["statistic"] == "estimate_no_spread":
                    numbers = _no_spread_term(row, _arm_size(arms, row), reported_sds)
                else:
                    numbers = derive_row(row, _arm_size(arms, row), selection.median_iqr_method)
            except InputError as exc:
                flags.append(f"{row['arm']}: {exc.problem}")
                continue
            if numbers.get("sd_missing"):
                flags.append(f"{row['arm']}: SD not reported, borrowed from the reported SDs (hierarchical); "
                             "mean or median not stated, analysed as a mean (assumption)")
            terms.append({
                "study_id": sid, "study_index": study_index, "kind": kind, "arm": row["arm"],
                "comparator": row["comparator"] if kind == "contrast" else "",
                "treated": int(kind == "contrast" or arms.loc[row["arm"], "role"] == "cells"),
                "estimate": numbers["estimate"], "se": numbers["se"], "se_is_bound": numbers["se_is_bound"],
                "day": row["day"], "timepoint": row["timepoint"], "derivation": numbers["derivation"],
                "quality": row["quality"], "source": row["source"], "dose": arm_dose(register, sid, row["arm"]),
                "sd_missing": bool(numbers.get("sd_missing", False)), "n": numbers.get("n"),
            })
            label = f"{row['arm']} - {row['comparator']}" if kind == "contrast" else row["arm"]
            bound = " (SE is an upper bound: conservative)" if numbers["se_is_bound"] else ""
            borrowed = " (SD borrowed: SE shown is a plug-in)" if numbers.get("sd_missing") else ""
            details.append(f"{label} {numbers['estimate']:+.1f} (SE {numbers['se']:.1f}){bound}{borrowed}")
            qualities.append(row["quality"])
            if numbers.get("sd_missing"):
                qualities.append("assumption")  # statistic type and SD are not reported
            sources.append(str(row["source"]))
        if not details:
            entry["reason"] = "; ".join(flags)
            continue
        included.append(sid)
        kinds = sorted({t["kind"] for t in terms if t["study_id"] == sid})
        entry.update(
            status="included",
            contribution=", ".join(kinds),
            detail="; ".join(details) + f" ({chosen['timepoint'].iloc[0]}, mmHg)",
            reason="; ".join(flags),
            quality=worst_quality(qualities),
            source="; ".join(dict.fromkeys(sources)),
        )
    used = {(t["study_id"], t["arm"], t["comparator"] or "", t["timepoint"]) for t in terms}
    for entry in derived:
        comparator = "" if pd.isna(entry["comparator"]) else entry["comparator"]
        entry["used"] = (entry["study_id"], entry["arm"], comparator, entry["timepoint"]) in used and entry[
            "measure"
        ] in USABLE_MEASURES and entry["quantity"] == "change_from_baseline"
    return OxygenationEvidence(
        studies=tuple(included),
        terms=pd.DataFrame(terms, columns=TERM_COLUMNS),
        derived=pd.DataFrame(derived),
        inclusion=pd.DataFrame(inclusion),
        register_hash=register.content_hash,
        reported_sds=reported_sds,
    )


def _unusable_reason(rows: pd.DataFrame) -> str:
    """Why a study's oxygenation rows cannot enter, in the words a reader needs."""
    reasons = []
    for measure, text in MEASURE_REASONS.items():
        if (rows["measure"] == measure).any():
            reasons.append(text)
    if (rows["statistic"] == "direction_only").any():
        reasons.append("direction only: values not reported")
    if (rows["quantity"] == "baseline").any() and not (rows["quantity"] != "baseline").any():
        reasons.append("baseline values only; no follow-up oxygenation reported")
    numeric = rows[rows["statistic"] != "direction_only"]
    if ((numeric["quantity"] == "at_day") & numeric["measure"].isin(USABLE_MEASURES)).any():
        reasons.append("values at a day without baseline change")
    return "; ".join(dict.fromkeys(reasons)) or "no usable PaO2/FiO2 change"
