"""What one new trial changes: the analysis before and after it, without editing the register.

:func:`with_added_trials` reads a small one-table file of new trials and returns a copy of
the register with them added (studies, arms and outcome rows, checked by the register's own
cell and cross-table rules); :func:`update_analysis` fits the analysis on the register as it
is and on the copy, and reports the shift. The register on disk is never written.

The file has one row per trial:

* binary outcomes (mortality): ``study, events_treated, n_treated, events_control, n_control``;
* contrasts (oxygenation: a PaO2/FiO2 change difference in mmHg, cells minus control; or a
  normal-normal estimates file): ``study, estimate, se``;

with optional ``label``, ``year`` (the publication year, kept as the register covariate
``publication_year`` for a later cumulative analysis), ``source``, ``quality`` (default
``primary``: numbers read in the trial's own report), ``notes``, ``day`` (the outcome's day)
and, for binary rows, ``product_class`` of the cell arm (default ``msc_unspecified``). A new
trial enters as a randomised controlled trial: its arms are ``cells`` and ``control``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..io.errors import InputError, Location

BINARY_COLUMNS = ("study", "events_treated", "n_treated", "events_control", "n_control")
CONTRAST_COLUMNS = ("study", "estimate", "se")
OPTIONAL_COLUMNS = ("label", "year", "source", "quality", "notes", "day", "product_class")
DEFAULT_QUALITY = "primary"
DEFAULT_PRODUCT_CLASS = "msc_unspecified"
Z95 = 1.959963984540054


# -- the file ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewTrial:
    """One validated row of a new-trials file."""

    study: str
    label: str
    row: int
    kind: str  # "binary" or "contrast"
    numbers: dict  # events_treated, n_treated, events_control, n_control; or estimate, se
    year: int | None
    day: int | None
    source: str
    quality: str
    notes: str
    product_class: str


def read_new_trials(path: str | Path) -> tuple[list[NewTrial], bytes]:
    """Read and check a new-trials file; every problem names the file, row and field."""
    from ..evidence.register import _parse_cell, parse_number, read_csv
    from ..evidence.schema import ARMS, MORTALITY, STUDIES, Column
    from ..evidence.schema import COVARIATES_BY_NAME

    declared_year = COVARIATES_BY_NAME["publication_year"]  # the range a publication year may take
    FIRST_YEAR, LAST_YEAR = int(declared_year.minimum), int(declared_year.maximum)

    path = Path(path)
    shown = str(path)
    if not path.is_file():
        raise InputError("new-trials file not found", Location(shown))
    raw, reader = read_csv(path, shown)
    header = [h.strip() for h in (reader.fieldnames or [])]
    binary = set(BINARY_COLUMNS[1:]) & set(header)
    contrast = set(CONTRAST_COLUMNS[1:]) & set(header)
    if binary and contrast:
        raise InputError("give either binary counts (events_treated, n_treated, events_control, n_control) or a "
                         "contrast (estimate, se), not both", Location(shown))
    kind = "contrast" if contrast else "binary"
    required = CONTRAST_COLUMNS if contrast else BINARY_COLUMNS
    for name in required:
        if name not in header:
            raise InputError(f"required column is missing (need {', '.join(required)})", Location(shown, field=name))
    for name in header:
        if name not in required + OPTIONAL_COLUMNS:
            raise InputError(f"unknown column (known: {', '.join(required + OPTIONAL_COLUMNS)})",
                             Location(shown, field=name))
    columns = {c.name: c for table in (STUDIES, ARMS, MORTALITY) for c in table.columns}
    count = Column("count", "int")
    trials, seen = [], {}
    for number, row in enumerate(reader, start=1):
        row = {k.strip(): (v or "") for k, v in row.items()}

        def cell(name: str, column: Column, required: bool = False):
            return _parse_cell(row.get(name, ""), replace(column, name=name, required=required),
                               Location(shown, number, name))

        study = cell("study", columns["study_id"], required=True)
        if study in seen:
            raise InputError(f"duplicate study {study!r} (also row {seen[study]})", Location(shown, number, "study"))
        seen[study] = number
        if kind == "binary":
            numbers = {name: cell(name, count, required=True) for name in BINARY_COLUMNS[1:]}
            for arm in ("treated", "control"):
                if numbers[f"n_{arm}"] == 0:
                    raise InputError("an arm needs at least one patient", Location(shown, number, f"n_{arm}"))
                if numbers[f"events_{arm}"] > numbers[f"n_{arm}"]:
                    raise InputError(f"{numbers[f'events_{arm}']} events exceed n_{arm} = {numbers[f'n_{arm}']}",
                                     Location(shown, number, f"events_{arm}"))
        else:
            from ..evidence.schema import MIN_SPREAD

            numbers = {"estimate": parse_number(row["estimate"].strip(), Location(shown, number, "estimate"),
                                                signed=True),
                       "se": parse_number(row["se"].strip(), Location(shown, number, "se"), positive=True,
                                          minimum=MIN_SPREAD)}
        year = cell("year", Column("year", "int"))
        if year is not None and not FIRST_YEAR <= year <= LAST_YEAR:
            raise InputError(f"{year} is not a publication year ({FIRST_YEAR}-{LAST_YEAR})",
                             Location(shown, number, "year"))
        trials.append(NewTrial(
            study=study, label=cell("label", columns["label"]) or study, row=number, kind=kind, numbers=numbers,
            year=year, day=cell("day", columns["day"]),
            source=cell("source", columns["source"]) or f"{path.name} row {number}",
            quality=cell("quality", columns["quality"]) or DEFAULT_QUALITY, notes=cell("notes", columns["notes"]) or "",
            product_class=cell("product_class", columns["product_class"]) or DEFAULT_PRODUCT_CLASS))
    if not trials:
        raise InputError("no rows", Location(shown))
    return trials, raw


# -- the register with the trials added ----------------------------------------------------------


def with_added_trials(register: Any, path: str | Path):
    """A copy of ``register`` with the trials of ``path`` added; the register is not changed.

    ``register``: a loaded :class:`~bayes_msc.evidence.register.Register`, or an
    :class:`~bayes_msc.evidence.estimates.EstimateTable` (a normal-normal estimates file,
    which takes contrast rows). Each new trial becomes a study (randomised, ``rct``) with a
    ``cells`` and a ``control`` arm and its outcome rows: two mortality rows for binary
    counts, one PaO2/FiO2 change contrast (``mean_se``, cells minus control, mmHg) for a
    contrast. New ids must not clash with the register's. The combined tables pass the
    register's cross-table rules (``deaths <= n``, known arms), errors naming the new file's
    row and field. The copy's content hash covers the register and the file.
    """
    from ..evidence.estimates import EstimateTable
    from ..evidence.register import Register

    trials, raw = read_new_trials(path)
    shown = str(path)
    if isinstance(register, EstimateTable):
        return _added_to_estimates(register, trials, raw, shown)
    if not isinstance(register, Register):
        raise InputError(f"with_added_trials: expected a register or an estimates table, got {type(register).__name__}")
    known = set(register.studies["study_id"])
    for trial in trials:
        if trial.study in known:
            raise InputError(f"study {trial.study!r} is already in the register: give the new trial an id of its own",
                             Location(shown, trial.row, "study"))
    tables = {name: frame.copy() for name, frame in register.tables.items()}
    rows = _register_locations(register)
    additions: dict[str, list[tuple[dict, Location]]] = {"studies": [], "arms": [], "mortality": [], "oxygenation": []}
    for trial in trials:
        at = Location(shown, trial.row)
        provenance = {"source": trial.source, "quality": trial.quality, "notes": trial.notes or None}
        binary = trial.kind == "binary"
        n = trial.numbers
        additions["studies"].append(({
            "study_id": trial.study, "label": trial.label, "design": "rct", "allocation": "randomised",
            "population": None, "ards_cause": None, "registration": None, "reference": None, "seed_file": None,
            "n_total": n["n_treated"] + n["n_control"] if binary else None, "status": "published", **provenance}, at))
        for arm, role in (("cells", "cells"), ("control", "control")):
            additions["arms"].append(({
                "study_id": trial.study, "arm_id": arm, "label": arm, "role": role,
                "product_class": trial.product_class if role == "cells" else "none",
                "control_type": "not_stated" if role == "control" else None,
                "n": n[f"n_{'treated' if role == 'cells' else 'control'}"] if binary else None, "n_allowed": None,
                **provenance}, at))
        timepoint = f"day {trial.day}" if trial.day is not None else "as reported"
        if binary:
            for arm, key in (("cells", "events_treated"), ("control", "events_control")):
                additions["mortality"].append(({
                    "study_id": trial.study, "arms": arm, "day": trial.day, "timepoint": timepoint,
                    "deaths": n[key], "deaths_min": None, "deaths_max": None, **provenance}, at))
        else:
            additions["oxygenation"].append(({
                "study_id": trial.study, "arm": "cells", "comparator": "control", "measure": "pf_ratio",
                "quantity": "change_from_baseline", "day": trial.day, "timepoint": timepoint, "statistic": "mean_se",
                "estimate": n["estimate"], "se": n["se"], **provenance}, at))
    for name, added in additions.items():
        if added:
            tables[name] = _appended(tables[name], [record for record, _ in added])
            rows[name] = rows[name] + [where for _, where in added]
    years = [t for t in trials if t.year is not None]
    if years:
        from ..evidence.register import _display

        tables["covariates"] = _covariates_with_years(register, years)
        existing = len(tables["covariates"]) - len(years)  # rows of the register's own covariates table
        rows["covariates"] = ([Location(_display(Path(register.root) / "covariates.csv"), i + 1) for i in range(existing)]
                              + [Location(shown, t.row, "year") for t in years])
    from ..evidence.register import _check_references

    _check_references(tables, rows)
    digest = hashlib.sha256(register.content_hash.encode() + b"\0" + raw).hexdigest()
    return Register(root=register.root, tables=tables, content_hash=digest)


def _appended(frame: pd.DataFrame, records: list[dict]) -> pd.DataFrame:
    """``frame`` with ``records`` appended, each column keeping its dtype (Int64, Float64, text)."""
    added = pd.DataFrame.from_records(records, columns=list(frame.columns))
    combined = pd.concat([frame, added], ignore_index=True)
    for column in frame.columns:
        dtype = frame[column].dtype
        if isinstance(dtype, (pd.Int64Dtype, pd.Float64Dtype)):
            combined[column] = pd.array(combined[column].tolist(), dtype=dtype)
    return combined


def _register_locations(register) -> dict[str, list[Location]]:
    """Each existing row's place in the register's files (for messages of the cross-table rules)."""
    from ..evidence.register import _display

    return {name: [Location(_display(Path(register.root) / f"{name}.csv"), i + 1) for i in range(len(frame))]
            for name, frame in register.tables.items()}


def _covariates_with_years(register, trials: list[NewTrial]) -> pd.DataFrame:
    """The register's covariates (long format) with each new trial's publication year."""
    from .cumulative import YEAR_COVARIATE

    existing = register.tables.get("covariates")
    if existing is None:
        path = Path(register.root) / "covariates.csv"
        existing = (pd.read_csv(path, dtype=str, keep_default_na=False) if path.is_file()
                    else pd.DataFrame(columns=["study_id", "covariate", "value", "source", "quality", "notes"]))
    added = pd.DataFrame([{"study_id": t.study, "covariate": YEAR_COVARIATE, "value": str(t.year),
                           "source": t.source, "quality": t.quality, "notes": ""} for t in trials])
    return pd.concat([existing, added.reindex(columns=existing.columns)], ignore_index=True)


def _added_to_estimates(table, trials: list[NewTrial], raw: bytes, shown: str):
    """An estimates table (normal-normal) with the new contrast rows appended."""
    if any(t.kind != "contrast" for t in trials):
        raise InputError("an estimates file takes contrast rows (study, estimate, se), not binary counts",
                         Location(shown))
    known = set(table.rows["study"])
    for trial in trials:
        if trial.study in known:
            raise InputError(f"study {trial.study!r} is already in the estimates file: give the new trial an id of "
                             "its own", Location(shown, trial.row, "study"))
    added = pd.DataFrame([{"study": t.study, **t.numbers, "label": t.label, "source": t.source,
                           "quality": t.quality, "notes": t.notes} for t in trials])
    rows = pd.concat([table.rows, added.reindex(columns=table.rows.columns)], ignore_index=True)
    digest = hashlib.sha256(table.content_hash.encode() + b"\0" + raw).hexdigest()
    return replace(table, rows=rows, content_hash=digest)


# -- before and after ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Update:
    """The analysis before and after the new trials.

    ``table``: two rows (``fit`` "before", "after") with the pooled effect and its 95%
    interval (stated scale), P(benefit), P(meaningful) with MCSEs, τ, the new-trial
    (predictive) effect and the diagnostics. ``shift``: the difference of the pooled medians
    (after minus before; for a ratio also their ratio) and the change in P(benefit) with its
    MCSE. ``new_trials``: each added trial's own estimate and 95% interval (stated scale).
    """

    outcome: str
    words: dict
    benefit: str
    table: pd.DataFrame
    shift: dict
    new_trials: pd.DataFrame
    statement: str

    def to_dict(self) -> dict:
        return {"outcome": self.outcome, "benefit": self.benefit, "words": self.words,
                "table": self.table.to_dict(orient="records"), "shift": self.shift,
                "new_trials": self.new_trials.to_dict(orient="records"), "statement": self.statement}


def own_estimate(trial: NewTrial, measure) -> dict:
    """A new trial's own effect and Wald 95% interval on the stated scale: the empirical odds
    ratio of a binary row (0.5 added to every cell when one is zero), or the contrast as given."""
    if trial.kind == "binary":
        from ..evidence.empirical import CORRECTION, empirical_log_or

        n = trial.numbers
        log_or, se, corrected = empirical_log_or(n["events_treated"], n["n_treated"], n["events_control"], n["n_control"])
        return {"study_id": trial.study, "label": trial.label, "estimate": float(np.exp(log_or)),
                "lower": float(np.exp(log_or - Z95 * se)), "upper": float(np.exp(log_or + Z95 * se)),
                "how": "empirical odds ratio, Wald interval" + (f" ({CORRECTION:g} added to every cell: a zero cell)"
                                                              if corrected else "")}
    est, se = trial.numbers["estimate"], trial.numbers["se"]
    stated = measure.stated
    return {"study_id": trial.study, "label": trial.label, "estimate": float(stated(est)),
            "lower": float(stated(est - Z95 * se)), "upper": float(stated(est + Z95 * se)),
            "how": "estimate ± 1.96 SE as given"}


def update_analysis(spec, data: Any, path: str | Path) -> Update:
    """Fit ``spec`` on ``data`` as it is and with the trials of ``path`` added.

    Refused before any fit: a bad file, a clash of ids, or a new trial that would not enter
    the analysis (its reason from the inclusion report).
    """
    from ..api import fit_spec, load_data
    from .cumulative import _row_numbers, words
    from .sensitivity import benefit_event

    source = load_data(spec, data)
    added = with_added_trials(source, path)
    trials, _ = read_new_trials(path)
    evidence_after = spec.outcome_type.build_evidence(added, spec)
    inclusion = evidence_after.inclusion.set_index("study_id")
    for trial in trials:
        if trial.study not in evidence_after.studies:
            reason = inclusion["reason"].get(trial.study, "") if trial.study in inclusion.index else ""
            raise InputError(f"new trial {trial.study!r} would not enter the {spec.name} analysis"
                             + (f": {reason}" if reason else ""), Location(str(path), trial.row, "study"))
    before = fit_spec(spec, source, compare_designs=False)
    after = fit_spec(spec, added, evidence=evidence_after, compare_designs=False)
    rows = []
    for label, result in (("before", before), ("after", after)):
        rows.append({"fit": label, "studies": len(result.evidence.studies), **_row_numbers(result)})
    table = pd.DataFrame(rows)
    b, a = table.iloc[0], table.iloc[1]
    measure = spec.outcome_type.measure
    shift = {"effect_median_difference": float(a["effect_median"] - b["effect_median"]),
             "prob_benefit_change": float(a["prob_benefit"] - b["prob_benefit"]),
             "prob_benefit_change_mcse": float(np.hypot(a["prob_benefit_mcse"], b["prob_benefit_mcse"])),
             "prob_meaningful_change": float(a["prob_meaningful"] - b["prob_meaningful"])}
    if measure.log_scale:
        shift["effect_median_ratio"] = float(a["effect_median"] / b["effect_median"])
    new = pd.DataFrame([own_estimate(t, measure) for t in trials])
    w = words(spec)
    return Update(spec.outcome, w, benefit_event(spec), table, shift, new, _update_statement(table, shift, new, w))


def _update_statement(table, shift, new, w) -> str:
    d = w["digits"]
    b, a = table.iloc[0], table.iloc[1]
    names = ", ".join(new["label"])
    text = (f"Adding {names}: the {w['effect']} moves from {b['effect_median']:{d}} ({b['effect_lower']:{d}} to "
            f"{b['effect_upper']:{d}}) to {a['effect_median']:{d}} ({a['effect_lower']:{d}} to {a['effect_upper']:{d}}), "
            f"a difference of medians of {shift['effect_median_difference']:+{d}}; {w['benefit']} from "
            f"{b['prob_benefit']:.3f} to {a['prob_benefit']:.3f} ({shift['prob_benefit_change']:+.3f}, MCSE "
            f"{shift['prob_benefit_change_mcse']:.3f}).")
    failed = [r["fit"] for _, r in table.iterrows() if not r["diagnostics_passed"]]
    if failed:
        text += f" The {' and '.join(failed)} fit failed its diagnostics: read its numbers as unreliable."
    return text


def render_update(update: Update) -> str:
    """Before/after table, shift and the new trials' own estimates for the terminal."""
    from .sensitivity import diagnostics_word

    w = update.words
    d = w["digits"]
    effect, benefit = w["effect"] + " (95% ETI)", w["benefit"] + " (MCSE)"
    e, b, m = max(26, len(effect)), max(22, len(benefit)), max(16, len(w["meaningful"]))
    lines = ["What the new trial changes (medians, 95% equal-tailed intervals)",
             f"  {'fit':<8} {'k':>3}  {effect:<{e}} {benefit:<{b}} {w['meaningful']:<{m}} {'tau':>6}  "
             f"{'new trial (95% ETI)':<26} diagnostics"]
    for row in update.table.itertuples():
        band = f"{row.effect_median:{d}} ({row.effect_lower:{d}} to {row.effect_upper:{d}})"
        predictive = f"{row.predictive_median:{d}} ({row.predictive_lower:{d}} to {row.predictive_upper:{d}})"
        lines.append(f"  {row.fit:<8} {int(row.studies):>3}  {band:<{e}} "
                     f"{f'{row.prob_benefit:.3f} ({row.prob_benefit_mcse:.3f})':<{b}} {row.prob_meaningful:<{m}.3f} "
                     f"{row.tau_median:>6.2f}  {predictive:<26} {diagnostics_word(row)}")
    s = update.shift
    lines += ["", f"Shift: difference of medians {s['effect_median_difference']:+{d}}"
              + (f" (ratio {s['effect_median_ratio']:{d}})" if "effect_median_ratio" in s else "")
              + f"; change in {w['benefit']} {s['prob_benefit_change']:+.3f} (MCSE {s['prob_benefit_change_mcse']:.3f})",
              "", "The new trial's own estimate:"]
    for row in update.new_trials.itertuples():
        lines.append(f"  {row.label}: {row.estimate:{d}} ({row.lower:{d}} to {row.upper:{d}}); {row.how}")
    return "\n".join(lines + ["", update.statement, f"P(benefit) = {update.benefit}."])
