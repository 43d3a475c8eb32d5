"""Per-study estimates and standard errors: the input of the classic normal-normal model.

Two sources give the same :class:`~bayes_msc.evidence.oxygenation.OxygenationEvidence`
(contrast terms only, no natural course):

* a plain CSV with columns ``study, estimate, se`` (optional ``label``, ``year`` — the
  publication year, which orders a forest plot by year —, ``source``, ``quality``, ``notes``, and what the estimates are: ``measure``, ``unit``,
  ``benefit_direction``, one value for the whole file) — any continuous or log-scale
  contrast, e.g. log odds ratios or the eight-schools coaching effects;
* an evidence register: each study's PaO2/FiO2 contrast, either as reported or as the
  difference of its two arms' derived changes.

Errors name the file, the 1-based data row and the column, as for registers.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..io.errors import InputError, Location
from ..io.fileio import write_atomic
from ..models.choices import MEASURES
from . import derivations
from .doses import NO_DOSE
from .oxygenation import TERM_COLUMNS, OxygenationEvidence, build_oxygenation_evidence, sd_missing_mask
from .register import parse_number, read_csv
from .schema import MIN_SPREAD as MIN_SE, QUALITY

if TYPE_CHECKING:
    from .settings import EvidenceSelection

REQUIRED = ("study", "estimate", "se")
MAX_MAGNITUDE = 1e6  # far beyond any real effect or SE on any scale; squares stay finite
# What the file says about its estimates, one value for every row (or left empty): their
# measure (log_ratio, smd, mean_difference), the unit of a mean difference, and which
# direction is benefit (increase, decrease). A normal-normal fit reads them when neither its
# spec nor an option states them.
STATEMENTS = {"measure": MEASURES, "unit": None,
              "benefit_direction": ("increase", "decrease")}
OPTIONAL = ("label", "year", "source", "quality", "notes", *STATEMENTS)


@dataclass(frozen=True)
class EstimateTable:
    """A validated per-study estimates file."""

    path: Path
    rows: pd.DataFrame  # study, estimate, se, label, year (None when not given), source, quality, notes
    content_hash: str
    statement: dict = field(default_factory=dict)  # measure, unit, benefit_direction when the file states them
    # Columns beyond the known ones, raw text by row: covariates of a meta-regression when the analysis
    # names them (model.covariates), refused as unknown columns otherwise (estimates_evidence).
    covariates: dict = field(default_factory=dict)


def load_estimates(path: str | Path) -> EstimateTable:
    """Read and validate ``study, estimate, se`` rows (SE > 0, finite numbers, unique studies)."""
    path = Path(path)
    shown = str(path)
    if not path.is_file():
        raise InputError("estimates file not found", Location(shown))
    raw, reader = read_csv(path, shown)
    header = [h.strip() for h in (reader.fieldnames or [])]
    for name in REQUIRED:
        if name not in header:
            raise InputError(f"required column is missing (need {', '.join(REQUIRED)})", Location(shown, field=name))
    extra = [name for name in header if name not in REQUIRED + OPTIONAL]
    for name in extra:
        if not name or header.count(name) > 1:
            raise InputError("empty or repeated column name", Location(shown, field=name))
    covariates: dict[str, list[str]] = {name: [] for name in extra}
    records, seen, statement = [], {}, {}
    for number, row in enumerate(reader, start=1):
        if None in row:
            raise InputError("row has more cells than the header", Location(shown, number))
        row = {k.strip(): (v or "").strip() for k, v in row.items()}
        study = row["study"]
        if not study:
            raise InputError("required value is empty", Location(shown, number, "study"))
        if study in seen:
            raise InputError(f"duplicate study {study!r} (also row {seen[study]})", Location(shown, number, "study"))
        seen[study] = number
        values = {
            "estimate": parse_number(row["estimate"], Location(shown, number, "estimate"), signed=True,
                                     maximum=MAX_MAGNITUDE),
            "se": parse_number(row["se"], Location(shown, number, "se"), signed=True, maximum=MAX_MAGNITUDE),
        }
        if values["se"] <= 0:
            raise InputError(f"a standard error must be > 0, got {row['se']}", Location(shown, number, "se"))
        if values["se"] < MIN_SE:  # 1/SE^2 must stay finite in the likelihood
            raise InputError(f"a standard error must be at least {MIN_SE:g}, got {row['se']}",
                             Location(shown, number, "se"))
        if row.get("quality") and row["quality"] not in QUALITY:
            raise InputError(f"{row['quality']!r} is not one of: {', '.join(QUALITY)}",
                             Location(shown, number, "quality"))
        for key, allowed in STATEMENTS.items():
            value = row.get(key, "")
            if not value:
                continue
            if allowed is not None and value not in allowed:
                raise InputError(f"{value!r} is not one of: {', '.join(allowed)}", Location(shown, number, key))
            if statement.setdefault(key, value) != value:
                raise InputError(f"{value!r} differs from {statement[key]!r} in an earlier row: one file holds one "
                                 f"{key.replace('_', ' ')}", Location(shown, number, key))
        year = (parse_number(row["year"], Location(shown, number, "year"), whole=True, maximum=9999)
                if row.get("year") else None)
        for name in extra:
            covariates[name].append(row.get(name, ""))
        records.append({
            "study": study, **values, "label": row.get("label") or study, "year": year,
            "source": row.get("source", ""), "quality": row.get("quality", ""), "notes": row.get("notes", ""),
        })
    if not records:
        raise InputError("no rows", Location(shown))
    return EstimateTable(path, pd.DataFrame(records), hashlib.sha256(raw).hexdigest(), statement, covariates)


def estimates_evidence(table: EstimateTable, exclude_studies: Iterable[str] = (),
                       covariates: Iterable[str] = ()) -> OxygenationEvidence:
    """Contrast terms from an estimates file (studies in ``exclude_studies`` left out).

    A column the format does not know is read only as a covariate the analysis names
    (``covariates``: ``model.covariates``, ``--covariate NAME``); any other is refused as an
    unknown column, so a misspelt column is not silently ignored."""
    named = set(covariates)
    for name in table.covariates:
        if name not in named:
            raise InputError(f"unknown column (known: {', '.join(REQUIRED + OPTIONAL)}; a covariate column enters "
                             f"only when the analysis names it: --covariate {name})", Location(str(table.path), field=name))
    excluded = set(exclude_studies)
    terms, inclusion, studies = [], [], []
    for row in table.rows.itertuples():
        entry = {
            "study_id": row.study, "label": row.label, "seed": False, "status": "excluded",
            "contribution": "", "detail": "", "reason": "", "quality": row.quality, "source": row.source,
        }
        inclusion.append(entry)
        if row.study in excluded:
            entry["reason"] = "excluded by the analysis spec (evidence.exclude_studies)"
            continue
        terms.append(_contrast_term(row.study, len(studies), row.estimate, row.se, "as reported", row.quality, row.source))
        studies.append(row.study)
        entry.update(status="included", contribution="estimate", detail=f"{row.estimate:g} (SE {row.se:g})")
    return OxygenationEvidence(
        studies=tuple(studies),
        terms=pd.DataFrame(terms, columns=TERM_COLUMNS),
        derived=pd.DataFrame(),
        inclusion=pd.DataFrame(inclusion),
        register_hash=table.content_hash,
        natural_course=False,
    )


def register_contrasts(register, selection: EvidenceSelection, *, dose_response: bool = False,
                       use_assumed_doses: bool = True) -> OxygenationEvidence:
    """Each study's PaO2/FiO2 contrast from a register: as reported, or arm minus control.

    Studies without a control (single-arm) cannot give a contrast and are excluded with that
    reason: without the natural-course term they carry no information on the effect.
    """
    arm_level = build_oxygenation_evidence(register, selection, dose_response=dose_response,
                                           use_assumed_doses=use_assumed_doses)
    terms, studies = [], []
    inclusion = arm_level.inclusion.copy()
    for position, entry in inclusion.iterrows():
        if entry["status"] != "included":
            continue
        sid = entry["study_id"]
        own = arm_level.terms[arm_level.terms["study_id"] == sid]
        if sd_missing_mask(own).any():
            inclusion.loc[position, ["status", "contribution", "detail"]] = ["excluded", "", ""]
            inclusion.loc[position, "reason"] = ("SD not reported: the normal-normal model needs a known SE "
                                                 "(the oxygenation analysis borrows the SD from other trials)")
            continue
        contrast = own[own["kind"] == "contrast"]
        treated, control = own[(own["kind"] == "arm") & (own["treated"] == 1)], own[(own["kind"] == "arm") & (own["treated"] == 0)]
        if len(contrast):
            t = contrast.iloc[0]
            estimate, se, how = t["estimate"], t["se"], t["derivation"]
        elif len(treated) == 1 and len(control) == 1:
            diff, diff_se = derivations.difference_of_independent(
                treated["estimate"].iloc[0], treated["se"].iloc[0], control["estimate"].iloc[0], control["se"].iloc[0]
            )
            estimate, se, how = diff.value, diff_se.value, f"{diff.formula}; {diff_se.formula}"
        else:
            inclusion.loc[position, ["status", "contribution", "detail"]] = ["excluded", "", ""]
            inclusion.loc[position, "reason"] = "no control arm: a normal-normal meta-analysis needs a per-study contrast"
            continue
        terms.append(_contrast_term(sid, len(studies), estimate, se, how, own["quality"].iloc[0], own["source"].iloc[0]))
        studies.append(sid)
        inclusion.loc[position, "contribution"] = "contrast"
        inclusion.loc[position, "detail"] = f"{estimate:+.1f} (SE {se:.1f}) mmHg"
    return OxygenationEvidence(
        studies=tuple(studies),
        terms=pd.DataFrame(terms, columns=TERM_COLUMNS),
        derived=arm_level.derived,
        inclusion=inclusion,
        register_hash=register.content_hash,
        natural_course=False,
    )


def _contrast_term(study, index, estimate, se, how, quality, source) -> dict:
    return {
        "study_id": study, "study_index": index, "kind": "contrast", "arm": "", "comparator": "",
        "treated": 1, "estimate": float(estimate), "se": float(se), "se_is_bound": False,
        "day": None, "timepoint": "", "derivation": how, "quality": quality, "source": source, "dose": NO_DOSE,
    }


def write_estimates(path, estimates, ses, studies=None) -> Path:
    """Write a ``study, estimate, se`` CSV (the normal-normal input), e.g. for a simulation."""
    path = Path(path)
    studies = list(studies) if studies is not None else [f"s{i + 1}" for i in range(len(estimates))]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(REQUIRED)
    writer.writerows(zip(studies, estimates, ses))
    return write_atomic(path, buffer.getvalue())
