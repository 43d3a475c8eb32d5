"""From the register to the mortality analysis: what enters, in which form, and why not.

Each study in the chosen evidence set ends up either *included* — contributing arm
observations in the form they were reported — or *excluded* with a reason. Three forms of
report enter the likelihood (see ``bayes_msc.models.likelihood``):

``exact``
    deaths out of n in one arm: a binomial observation.
``bounded``
    only bounds on an arm's deaths (Shi 2021: at most one death, inferred from the SAE count):
    an interval-censored binomial, the sum of the binomial pmf over the allowed counts.
``total``
    one count across several arms whose sizes may be unknown (BC-U001: one death among 12
    patients in three dose groups of a 3+3 design): the distribution of the sum of the arm
    binomials, averaged over the allocations the design allows (uniform weights — an
    assumption stated in the inclusion report).

Every such report is expressed as a list of *configurations* — complete assignments of
deaths (and group sizes) to arms with a weight — so one likelihood term serves all partial
forms, and an exact count is simply the one-configuration case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from itertools import product
from typing import TYPE_CHECKING

import pandas as pd

from .doses import arm_dose
from .register import Register
from .selection import (
    design_exclusion, dose_check, evidence_set_studies, excluded_class, inclusion_entry, listing_exclusion, worst_quality,
)

if TYPE_CHECKING:
    from .settings import EvidenceSelection

@dataclass(frozen=True)
class ArmCount:
    """One arm's share of a configuration: ``deaths`` of ``n`` in arm ``arm_index``."""

    arm_index: int
    deaths: int
    n: int


@dataclass(frozen=True)
class Configuration:
    log_weight: float
    counts: tuple[ArmCount, ...]


@dataclass(frozen=True)
class PartialReport:
    """A report that is not one exact arm count: a bound, or a total across arms."""

    study_id: str
    kind: str  # "bounded" | "total"
    arms: tuple[str, ...]
    description: str
    configurations: tuple[Configuration, ...]


@dataclass(frozen=True)
class MortalityEvidence:
    """The mortality data of one analysis, ready for the model builder.

    Attributes
    ----------
    studies
        Included study ids, in register order; the model's ``study`` coordinate.
    arms
        Included arms: ``study_id, arm_id, label, study_index, treated, product_class,
        dose_per_kg, n`` (``n`` is NA where only allowed sizes are known).
    exact
        Exact counts: ``arm_index, study_id, arm_id, deaths, n``.
    partial
        Bounded and total reports, as configurations.
    inclusion
        One row per study of the evidence set: ``study_id, label, seed, status,
        contribution, detail, reason, quality, source``.
    register_hash
        Content hash of the register the data came from.
    allocations
        Each included study's allocation class (``studies.csv`` ``allocation``), aligned with
        ``studies``; empty for evidence built without a register (all randomised).
    """

    studies: tuple[str, ...]
    arms: pd.DataFrame
    exact: pd.DataFrame
    partial: tuple[PartialReport, ...]
    inclusion: pd.DataFrame
    register_hash: str
    allocations: tuple[str, ...] = ()

    def allocation_of(self, index: int) -> str:
        return self.allocations[index] if self.allocations else "randomised"

    @property
    def n_studies(self) -> int:
        return len(self.studies)

    def masked(self, study_ids: set[str] | frozenset[str]) -> "MortalityEvidence":
        """The same shapes with the given studies' data removed (n = deaths = 0).

        A binomial with n = 0 has probability one, so a masked arm contributes nothing to
        the likelihood, yet every array keeps its shape and the compiled model is reused.
        The masked studies' own parameters then simply follow their priors.
        """
        exact = self.exact.copy()
        hit = exact["study_id"].isin(study_ids)
        exact.loc[hit, ["deaths", "n"]] = 0
        partial = tuple(
            _masked_report(report) if report.study_id in study_ids else report for report in self.partial
        )
        return replace(self, exact=exact, partial=partial)


def _masked_report(report: PartialReport) -> PartialReport:
    empty = tuple(
        Configuration(0.0 if i == 0 else -math.inf, tuple(ArmCount(c.arm_index, 0, 0) for c in config.counts))
        for i, config in enumerate(report.configurations)
    )
    return PartialReport(report.study_id, report.kind, report.arms, report.description + " (masked)", empty)


# -- selection ---------------------------------------------------------------------------


def choose_timepoint(rows: pd.DataFrame, window: tuple[int, int]) -> tuple[pd.DataFrame, str]:
    """Pick one timepoint's rows for a study.

    The earliest reported day inside ``window`` wins (28-31 days by default, the usual
    primary mortality endpoint); otherwise the trial's endpoint — its latest stated day, or
    its only timepoint — is used and a flag says so.
    """
    days = rows["day"]
    in_window = rows[days.notna() & (days >= window[0]) & (days <= window[1])]
    if len(in_window):
        day = in_window["day"].min()
        return in_window[in_window["day"] == day], ""
    keys = rows[["day", "timepoint"]].drop_duplicates()
    if len(keys) == 1:
        chosen = rows
    elif days.notna().any():
        chosen = rows[days == days.max()]
    else:
        chosen = rows[rows["timepoint"] == rows["timepoint"].iloc[0]]
    label = str(chosen["timepoint"].iloc[0])
    if chosen["day"].isna().all():
        return chosen, f"timepoint not stated in the source ({label}): used as the trial's endpoint"
    return chosen, f"no count in the {window[0]}-{window[1]} day window: used the trial's endpoint ({label})"


def build_mortality_evidence(register: Register, selection: EvidenceSelection, *, dose_response: bool = False,
                             use_assumed_doses: bool = True) -> MortalityEvidence:
    """Apply an evidence selection to the register (pure: no I/O).

    ``dose_response``: the fit models dose-response, so single-arm studies may enter and each
    cell arm needs a usable dose; ``use_assumed_doses``: an arm whose dose is an assumption may
    enter one (the spec's ``model.use_assumed_doses``).
    """
    window = tuple(selection.timepoint_window_days)
    single_arm_ok = dose_response
    study_rows = evidence_set_studies(register, selection.evidence_set)

    included: list[str] = []
    allocations: list[str] = []
    arm_records: list[dict] = []
    exact_records: list[dict] = []
    pending_partial: list[tuple[str, pd.Series, list[str]]] = []
    inclusion: list[dict] = []
    # each study's rows, split once (the same rows, in register order, as a mask per study:
    # the masks were a third of the time a warm `fit` spent building its evidence)
    mortality_rows = _rows_by_study(register.mortality)
    arm_rows = _rows_by_study(register.arms)

    for _, study in study_rows.iterrows():
        sid = study["study_id"]
        entry = inclusion_entry(study)
        inclusion.append(entry)
        entry["reason"] = listing_exclusion(study, selection)
        if entry["reason"]:
            continue
        rows = mortality_rows(sid)
        if rows.empty:
            entry["reason"] = "deaths not reported" + _note(study)
            continue
        rows, timepoint_flag = choose_timepoint(rows, window)

        arms = arm_rows(sid).set_index("arm_id")
        dropped_arms = []
        usable_rows = []
        for _, row in rows.iterrows():
            row_arms = str(row["arms"]).split("+")
            excluded = [a for a in row_arms if excluded_class(arms.loc[a], selection.product_classes)]
            if excluded:
                for a in excluded:
                    dropped_arms.append(f"{a} ({arms.loc[a, 'product_class']})")
                continue
            usable_rows.append((row, row_arms))
        used_arms = [a for _, row_arms in usable_rows for a in row_arms]
        roles = {arms.loc[a, "role"] for a in used_arms}
        flags = [timepoint_flag] if timepoint_flag else []
        if dropped_arms:
            flags.append("arms of another product class left out: " + ", ".join(dropped_arms))
        if "cells" not in roles:
            entry["reason"] = (
                "cell arms are of a product class this analysis leaves out: " + ", ".join(dropped_arms)
                if dropped_arms
                else "no cell arm with mortality data"
            )
            continue
        if "control" not in roles and not single_arm_ok:
            entry["reason"] = (
                "no control arm: under the pooled (no dose-response) model a single-arm study "
                "cannot inform the treatment effect; it enters dose-response analyses through its "
                "within-study dose contrasts"
            )
            continue

        if single_arm_ok:  # a dose-response form
            cells = [a for a in used_arms if arms.loc[a, "role"] == "cells"]
            problem, flag = dose_check(register, sid, cells, use_assumed_doses)
            if problem:
                entry["reason"] = problem
                continue
            flags += [flag] if flag else []
        entry["reason"] = design_exclusion(study, selection)
        if entry["reason"]:
            continue

        study_index = len(included)
        included.append(sid)
        allocations.append(entry["allocation"])
        arm_index = {}
        for a in dict.fromkeys(used_arms):
            arm = arms.loc[a]
            dose = arm_dose(register, sid, a)
            arm_index[a] = len(arm_records)
            arm_records.append(
                {
                    "study_id": sid,
                    "arm_id": a,
                    "label": arm["label"],
                    "study_index": study_index,
                    "treated": int(arm["role"] == "cells"),
                    "product_class": arm["product_class"],
                    "dose_per_kg": dose.per_kg,
                    "dose": dose,
                    "n": arm["n"],
                }
            )
        kinds, details, qualities, sources = [], [], [], []
        for row, row_arms in usable_rows:
            qualities.append(row["quality"])
            sources.append(str(row["source"]))
            if len(row_arms) == 1 and not pd.isna(row["deaths"]):
                arm = arms.loc[row_arms[0]]
                exact_records.append(
                    {
                        "arm_index": arm_index[row_arms[0]],
                        "study_id": sid,
                        "arm_id": row_arms[0],
                        "deaths": int(row["deaths"]),
                        "n": int(arm["n"]),
                    }
                )
                kinds.append("exact")
                details.append(f"{row_arms[0]} {int(row['deaths'])}/{int(arm['n'])}")
            else:
                report = _partial_report(register, sid, row, row_arms, arm_index)
                pending_partial.append(report)
                kinds.append(report.kind)
                details.append(report.description)
                if report.kind == "total":
                    flags.append(
                        "group sizes unknown: averaged over the allocations the design allows "
                        "(equal weights, an assumption)"
                    )
        entry.update(
            status="included",
            contribution=", ".join(sorted(set(kinds))),
            detail="; ".join(details) + f" ({rows['timepoint'].iloc[0]})",
            timepoint=rows["timepoint"].iloc[0],
            reason="; ".join(flags),
            quality=worst_quality(qualities),
            source="; ".join(dict.fromkeys(sources)),
        )
    arms_frame = pd.DataFrame(
        arm_records,
        columns=["study_id", "arm_id", "label", "study_index", "treated", "product_class", "dose_per_kg", "dose", "n"],
    )
    exact_frame = pd.DataFrame(exact_records, columns=["arm_index", "study_id", "arm_id", "deaths", "n"])
    return MortalityEvidence(
        studies=tuple(included),
        arms=arms_frame,
        exact=exact_frame.astype({"arm_index": int, "deaths": int, "n": int}),
        partial=tuple(pending_partial),
        inclusion=pd.DataFrame(inclusion),
        register_hash=register.content_hash,
        allocations=tuple(allocations),
    )


def _rows_by_study(table: pd.DataFrame):
    """``study_id -> that study's rows of table`` (an empty frame for a study without rows)."""
    groups = {sid: rows for sid, rows in table.groupby("study_id", sort=False)}
    empty = table.iloc[:0]
    return lambda sid: groups.get(sid, empty)


def _note(study: pd.Series) -> str:
    from .citation import public_note

    note = public_note(study.get("notes"))  # the study, not the curators' search for its numbers
    return f" ({note})" if note else ""


def _death_range(row: pd.Series) -> tuple[int, int]:
    if not pd.isna(row["deaths"]):
        return int(row["deaths"]), int(row["deaths"])
    return int(row["deaths_min"]), int(row["deaths_max"])


def _partial_report(
    register: Register, study_id: str, row: pd.Series, row_arms: list[str], arm_index: dict[str, int]
) -> PartialReport:
    low, high = _death_range(row)
    if len(row_arms) == 1:
        n = int(register.arms.set_index(["study_id", "arm_id"]).loc[(study_id, row_arms[0]), "n"])
        configs = tuple(
            Configuration(0.0, (ArmCount(arm_index[row_arms[0]], d, n),)) for d in range(low, high + 1)
        )
        return PartialReport(
            study_id, "bounded", tuple(row_arms), f"{row_arms[0]} {low}-{high}/{n} deaths (bound)", configs
        )
    allocations = [a for a in register.allocations(study_id) if set(row_arms) <= set(a)]
    configs = []
    log_w = -math.log(len(allocations))
    for allocation in allocations:
        sizes = [allocation[a] for a in row_arms]
        for total in range(low, high + 1):
            for deaths in compositions(total, sizes):
                configs.append(
                    Configuration(
                        log_w,
                        tuple(ArmCount(arm_index[a], d, n) for a, d, n in zip(row_arms, deaths, sizes)),
                    )
                )
    total_n = sum(allocations[0][a] for a in row_arms)
    deaths_text = f"{low}" if low == high else f"{low}-{high}"
    return PartialReport(
        study_id,
        "total",
        tuple(row_arms),
        f"{deaths_text}/{total_n} deaths across {'+'.join(row_arms)} "
        f"({len(allocations)} allowed allocation{'s' if len(allocations) != 1 else ''})",
        tuple(configs),
    )


def compositions(total: int, sizes: list[int]) -> list[tuple[int, ...]]:
    """All ways to split ``total`` deaths over arms of the given sizes (0 <= d_k <= n_k)."""
    return [d for d in product(*(range(min(total, n) + 1) for n in sizes)) if sum(d) == total]
