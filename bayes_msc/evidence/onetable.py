"""A user's own trials as one table: one row per two-arm trial, as metafor reads them.

Two kinds of table:

* **binary** (:func:`load_binary_trials`): ``study, events_treated, n_treated, events_control,
  n_control``. The table becomes an in-memory evidence :class:`~bayes_msc.evidence.register.Register`
  (studies, arms, mortality and doses tables, the register's own columns), so the one engine of
  the mortality family runs on it unchanged: sparse-data likelihoods, partial reports (a count
  known only within bounds), priors, decisions, SBC, trial design, sensitivity, influence.
* **continuous** (:func:`load_continuous_trials`): per arm ``mean_*, sd_*, n_*`` or
  ``median_*, q1_*, q3_*, n_*`` (``*`` = ``treated`` or ``control``). Each trial becomes one
  mean-difference contrast when its evidence is built
  (:func:`continuous_trials_evidence`), with the register's derivations
  (:mod:`bayes_msc.evidence.derivations`) for a median and IQR.

Optional columns of both: ``label`` (display name), ``year`` (publication year), ``source``,
``quality``, ``notes``, ``benefit_direction`` (one value for the whole file); a binary table
also takes ``dose`` (million cells/kg: enables dose-response) and the bounds
``events_treated_min``/``_max``, ``events_control_min``/``_max``. Any other column is a
study-level covariate (numeric when every value is a number, else categorical), kept in the
table's ``covariates`` (the register's long covariates format, each value's source "the data file
<name>, row N").

Column names can be mapped (``columns={"events_treated": "dead_msc", ...}``; CLI ``--columns``).
Validation happens on the raw text, as for a register: every error names the file, the 1-based
data row and the column as the file spells it.

Studies keep the order of the file: the model's ``study`` coordinate, and with it every draw,
follows that order, so a table listing the same trials in the same order as a register's
``studies.csv`` gives identical numbers to the register's fit.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..io.errors import InputError, Location
from . import derivations
from .mortality import MortalityEvidence
from .register import ID_PATTERN, MAX_ARM_SIZE, Register, _display, parse_number, read_csv
from .schema import MIN_SPREAD, QUALITY, TABLES

ARMS = ("treated", "control")
DIRECTIONS = ("increase", "decrease")
# Columns of every one table besides the counts or summaries; any other column is a covariate.
COMMON_OPTIONAL = ("label", "year", "source", "quality", "notes", "benefit_direction")
BINARY_REQUIRED = ("study", "events_treated", "n_treated", "events_control", "n_control")
BINARY_BOUNDS = ("events_treated_min", "events_treated_max", "events_control_min", "events_control_max")
BINARY_OPTIONAL = (*COMMON_OPTIONAL, "dose", *BINARY_BOUNDS)
SUMMARIES = ("mean", "sd", "median", "q1", "q3")
CONTINUOUS_REQUIRED = ("study", "n_treated", "n_control")
CONTINUOUS_OPTIONAL = (*COMMON_OPTIONAL, *(f"{s}_{arm}" for arm in ARMS for s in SUMMARIES))
MAX_MAGNITUDE = 1e6  # as the register: far beyond any trial, small enough that squares stay finite
YEARS = (1800, 2200)
TIMEPOINT = "as reported in the data file"


# -- shared reading -----------------------------------------------------------------------


def _column_map(columns: Any, known: tuple[str, ...], caller: str) -> dict[str, str]:
    """``{name the analysis reads: name in the file}`` from the user's mapping (identity for the rest)."""
    if columns is None:
        return {}
    if not isinstance(columns, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in columns.items()):
        raise InputError(f"{caller}(columns=...): expected a dict of 'column the analysis reads': "
                         "'column in your file', e.g. {'events_treated': 'dead_msc'}")
    for key, value in columns.items():
        if key not in known:
            raise InputError(f"{caller}(columns=...): {key!r} is not a column the analysis reads; "
                             f"known: {', '.join(known)}", Location("columns (--columns)", field=key))
        if not value.strip():
            raise InputError(f"{caller}(columns=...): {key!r} is mapped to an empty name",
                             Location("columns (--columns)", field=key))
    # every name the analysis reads must come from its own column: a mapped name, or its default
    targets = [columns.get(name, name).strip() for name in known]
    twice = next((t for t in targets if targets.count(t) > 1), None)
    if twice is not None:
        readers = [name for name, target in zip(known, targets) if target == twice]
        raise InputError(f"{caller}(columns=...): the file's column {twice!r} would be read as "
                         f"{' and '.join(readers)}: map each to a column of its own",
                         Location("columns (--columns)", field=twice))
    return {k: v.strip() for k, v in columns.items()}


def parse_column_mapping(text: str) -> dict[str, str]:
    """``events_treated=dead_msc,n_treated=N1`` (the CLI's ``--columns``) as a dict."""
    mapping: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(f"expected NAME=COLUMN pairs separated by commas (e.g. events_treated=dead_msc), "
                             f"got {part!r}", Location("--columns"))
        if key.strip() in mapping:
            raise InputError(f"{key.strip()!r} is mapped twice", Location("--columns"))
        mapping[key.strip()] = value.strip()
    if not mapping:
        raise InputError("no NAME=COLUMN pair given", Location("--columns"))
    return mapping


@dataclass(frozen=True)
class _Read:
    """A one-table file read and its header checked: rows as dicts keyed by the analysis' names."""

    path: Path
    shown: str
    raw: bytes
    rows: list[dict[str, str]]
    file_names: dict[str, str]  # analysis name -> the file's column name (for messages)
    covariate_columns: tuple[str, ...]
    header: tuple[str, ...]
    mapping: dict[str, str]  # the user's mapping, as given (empty: the default names)


def _read_table(path, required: tuple[str, ...], optional: tuple[str, ...], columns: Any, caller: str,
                kind: str) -> _Read:
    """Read ``path`` (a ``kind`` table: "binary", "continuous") and check its header."""
    if not isinstance(path, (str, Path)) and not hasattr(path, "__fspath__"):
        raise InputError(f"{caller}(path=...): expected a CSV file path, got {type(path).__name__}")
    path = Path(path)
    shown = _display(path)
    if not path.exists():
        raise InputError("data file not found", Location(shown))
    mapping = _column_map(columns, required + optional, caller)
    raw, reader = read_csv(path, shown)
    header = [h.strip() for h in (reader.fieldnames or [])]
    file_names = {name: mapping.get(name, name) for name in required + optional}
    for name in required:
        if file_names[name] not in header:
            mapped = f" (mapped from {name})" if name in mapping else ""
            raise InputError(f"required column is missing{mapped}; a {kind} table needs "
                             f"{', '.join(file_names[n] for n in required)}", Location(shown, field=file_names[name]))
    for name, target in mapping.items():
        if target not in header:
            raise InputError(f"column {target!r} (mapped from {name}) is not in the file",
                             Location(shown, field=target))
    for position, name in enumerate(header, start=1):
        if not name:  # a trailing comma in the header: a column without a name
            raise InputError(f"column {position} of the header has no name", Location(shown))
    reverse = {v: k for k, v in file_names.items()}
    # a column the analysis reads under another name is the user's own column, read as a covariate
    covariates = tuple(h for h in header if h not in reverse)
    rows = []
    for number, row in enumerate(reader, start=1):
        cells = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        rows.append({**{reverse[h]: cells.get(h, "") for h in header if h in reverse},
                     **{f"\0{h}": cells.get(h, "") for h in covariates}})
    if not rows:
        raise InputError("no rows", Location(shown))
    return _Read(path, shown, raw, rows, file_names, covariates, tuple(header), mapping)


def _content_hash(read: _Read) -> str:
    """SHA-256 of the file's bytes, and of the column mapping when one is given (the same bytes
    read under another mapping are other data)."""
    digest = hashlib.sha256(read.raw)
    if read.mapping:
        digest.update(b"\0columns\0" + json.dumps(read.mapping, sort_keys=True).encode())
    return digest.hexdigest()


class _Rows:
    """Parse the common columns of each row; every error names the file, row and column."""

    def __init__(self, read: _Read):
        self.read = read
        self.seen: dict[str, int] = {}
        self.ids: dict[str, int] = {}
        self.statement: dict[str, str] = {}

    def at(self, number: int, name: str) -> Location:
        return Location(self.read.shown, number, self.read.file_names.get(name, name))

    def number(self, row, number, name, **limits) -> float | int | None:
        text = row.get(name, "")
        if not text:
            return None
        return parse_number(text, self.at(number, name), **limits)

    def study(self, row, number) -> tuple[str, str]:
        """The study's id (the study text, or an id made from it) and its label."""
        text = row.get("study", "")
        if not text:
            raise InputError("required value is empty", self.at(number, "study"))
        if text in self.seen:
            raise InputError(f"duplicate study {text!r} (also row {self.seen[text]})", self.at(number, "study"))
        self.seen[text] = number
        study_id = text if ID_PATTERN.fullmatch(text) else study_id_from(text)
        if not study_id:
            raise InputError(f"{text!r} gives no usable study id (ASCII letters or digits needed)",
                             self.at(number, "study"))
        if study_id in self.ids:
            raise InputError(f"study {text!r} gives the id {study_id!r}, as row {self.ids[study_id]} does: "
                             "name the studies apart", self.at(number, "study"))
        self.ids[study_id] = number
        return study_id, row.get("label") or text

    def provenance(self, row, number) -> dict[str, str]:
        quality = row.get("quality", "")
        if quality and quality not in QUALITY:
            raise InputError(f"{quality!r} is not one of: {', '.join(QUALITY)}", self.at(number, "quality"))
        direction = row.get("benefit_direction", "")
        if direction:
            if direction not in DIRECTIONS:
                raise InputError(f"{direction!r} is not one of: {', '.join(DIRECTIONS)}",
                                 self.at(number, "benefit_direction"))
            if self.statement.setdefault("benefit_direction", direction) != direction:
                raise InputError(f"{direction!r} differs from {self.statement['benefit_direction']!r} in an earlier "
                                 "row: one file holds one direction of benefit", self.at(number, "benefit_direction"))
        source = row.get("source", "") or f"the data file {self.read.path.name}, row {number}"
        return {"source": source, "quality": quality, "notes": row.get("notes", "")}

    def year(self, row, number) -> int | None:
        year = self.number(row, number, "year", whole=True, maximum=YEARS[1])
        if year is not None and year < YEARS[0]:
            raise InputError(f"{year} is not a publication year", self.at(number, "year"))
        return year


def study_id_from(text: str) -> str:
    """A register id from a study's name: ``"Smith 2020 (A)"`` -> ``"Smith_2020_A"``."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")
    return slug if ID_PATTERN.fullmatch(slug or "-") else ""


def _covariates(read: _Read, study_ids: list[str], years: list[int | None]) -> tuple[pd.DataFrame, dict[str, str]]:
    """The study-level covariates in the register's long format (``study_id, covariate, value,
    source, quality, notes``), and each covariate's kind: "numeric" when every value given is a
    number, else "categorical". ``year`` becomes the declared ``publication_year``."""
    records, kinds = [], {}
    for name in read.covariate_columns:
        values = [row[f"\0{name}"] for row in read.rows]
        numeric = all(_is_number(v) for v in values if v)
        kinds[name] = "numeric" if numeric else "categorical"
        for number, (sid, value) in enumerate(zip(study_ids, values), start=1):
            if value:
                records.append({"study_id": sid, "covariate": name, "value": value,
                                "source": f"the data file {read.path.name}, row {number}", "quality": "", "notes": ""})
    if any(y is not None for y in years):
        kinds["publication_year"] = "numeric"
        for number, (sid, year) in enumerate(zip(study_ids, years), start=1):
            if year is not None:
                records.append({"study_id": sid, "covariate": "publication_year", "value": str(year),
                                "source": f"the data file {read.path.name}, row {number}", "quality": "", "notes": ""})
    frame = pd.DataFrame(records, columns=["study_id", "covariate", "value", "source", "quality", "notes"])
    return frame, kinds


def _is_number(text: str) -> bool:
    try:
        parse_number(text, Location(""), signed=True, maximum=math.inf)
    except InputError:
        return False
    return True


# -- binary ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BinaryEvidence(MortalityEvidence):
    """Mortality-family evidence of a user's binary outcome (the same model reads it), with what
    an event is and the words its counts are shown with (treated, control, events)."""

    event_name: str = "event"
    count_words: tuple[str, str, str] = ("treated", "control", "events")


@dataclass(frozen=True)
class BinaryTrials(Register):
    """A user's two-arm binary trials as an in-memory register (studies, arms, mortality,
    doses), with what the file says besides.

    Attributes
    ----------
    path
        The data file.
    covariate_kinds
        Each study-level covariate column's kind ("numeric" or "categorical"); the values are
        the register's covariates table (``covariates``: long format, ``study_id, covariate,
        value, source, quality, notes``).
    statement
        What the file states about its outcome (``benefit_direction``), one value for every row.
    event_name
        What an event is, for display ("death"); "event" when not stated.
    """

    path: Path = Path()
    covariate_kinds: dict = field(default_factory=dict)
    statement: dict = field(default_factory=dict)
    event_name: str = "event"

    def fingerprint(self) -> str:
        """The tables' hash, and the event name (shown in what the evidence says)."""
        return hashlib.sha256((super().fingerprint() + "\0" + self.event_name).encode()).hexdigest()


def load_binary_trials(path, columns: dict[str, str] | None = None, event_name: str | None = None) -> BinaryTrials:
    """Read and validate a one-table file of two-arm binary trials into a register.

    Parameters
    ----------
    path
        A CSV file: ``study, events_treated, n_treated, events_control, n_control`` and the
        optional columns of :mod:`bayes_msc.evidence.onetable`.
    columns
        ``{column the analysis reads: column in the file}`` for files that name them otherwise,
        e.g. ``{"events_treated": "dead_msc", "n_treated": "N1"}``.
    event_name
        What an event is, for display (``"death"``).

    A count known only within a range (``events_treated`` empty, ``events_treated_min`` and
    ``_max`` given) enters as the register's bounded report. Each study becomes a randomised
    two-arm trial with arms ``treated`` and ``control`` (no product class: the treatment is the
    user's); a ``dose`` is the treated arm's dose in million cells/kg.
    """
    if event_name is not None and (not isinstance(event_name, str) or not event_name.strip()):
        raise InputError("load_binary_trials(event_name=...): expected a non-empty text, e.g. 'death'",
                         Location("--event-name"))
    read = _read_table(path, BINARY_REQUIRED, BINARY_OPTIONAL, columns, "load_binary_trials", "binary")
    parse = _Rows(read)
    studies, arms, mortality, doses, ids, years = [], [], [], [], [], []
    for number, row in enumerate(read.rows, start=1):
        sid, label = parse.study(row, number)
        provenance = parse.provenance(row, number)
        counts = {}
        for arm in ARMS:
            n = parse.number(row, number, f"n_{arm}", whole=True, positive=True, maximum=MAX_ARM_SIZE)
            if n is None:
                raise InputError("required value is empty", parse.at(number, f"n_{arm}"))
            counts[arm] = (n, *_event_count(parse, row, number, arm, n))
        dose = parse.number(row, number, "dose", positive=True, maximum=1e4, minimum=1e-6)
        years.append(parse.year(row, number))
        ids.append(sid)
        studies.append({
            "study_id": sid, "label": label, "design": "rct", "allocation": "randomised",
            "n_total": counts["treated"][0] + counts["control"][0], "status": "published", **provenance,
        })
        for arm in ARMS:
            n, events, low, high = counts[arm]
            arms.append({"study_id": sid, "arm_id": arm, "label": arm, "role": "cells" if arm == "treated" else "control",
                         "product_class": "none", "n": n, **provenance})
            mortality.append({"study_id": sid, "arms": arm, "day": None, "timepoint": TIMEPOINT,
                              "deaths": events, "deaths_min": low, "deaths_max": high, **provenance})
        if dose is not None:
            doses.append({"study_id": sid, "arm_id": "treated", "dose_per_kg": float(dose), **provenance})
    tables = {
        "studies": _frame("studies", studies), "arms": _frame("arms", arms),
        "doses": _frame("doses", doses), "mortality": _frame("mortality", mortality),
        "oxygenation": _frame("oxygenation", []),
    }
    tables["covariates"], kinds = _covariates(read, ids, years)
    return BinaryTrials(root=read.path, tables=tables, content_hash=_content_hash(read), path=read.path,
                        covariate_kinds=kinds, statement=dict(parse.statement),
                        event_name=(event_name or "event").strip())


def _event_count(parse: _Rows, row, number, arm: str, n: int) -> tuple[int | None, int | None, int | None]:
    """(events, low, high): an exact count, or bounds on it, checked against the arm's size."""
    name, low_name, high_name = f"events_{arm}", f"events_{arm}_min", f"events_{arm}_max"
    events = parse.number(row, number, name, whole=True, maximum=MAX_ARM_SIZE)
    low = parse.number(row, number, low_name, whole=True, maximum=MAX_ARM_SIZE)
    high = parse.number(row, number, high_name, whole=True, maximum=MAX_ARM_SIZE)
    if events is not None and (low is not None or high is not None):
        raise InputError(f"give {parse.read.file_names[name]} or the bounds {parse.read.file_names[low_name]}/"
                         f"{parse.read.file_names[high_name]}, not both", parse.at(number, name))
    if events is None:
        if low is None and high is None:
            raise InputError(f"no count: give {parse.read.file_names[name]}, or both bounds "
                             f"{parse.read.file_names[low_name]} and {parse.read.file_names[high_name]}",
                             parse.at(number, name))
        if low is None or high is None:
            missing = low_name if low is None else high_name
            raise InputError("a range needs both bounds", parse.at(number, missing))
        if low > high:
            raise InputError(f"{parse.read.file_names[low_name]} {low} exceeds {parse.read.file_names[high_name]} {high}",
                             parse.at(number, low_name))
    most, most_name = (events, name) if events is not None else (high, high_name)
    if most > n:
        raise InputError(f"{most} events exceed n = {n} ({parse.read.file_names[f'n_{arm}']})", parse.at(number, most_name))
    return events, low, high


def _frame(name: str, records: list[dict]) -> pd.DataFrame:
    """A register table with the schema's columns and dtypes (as the register loader makes them)."""
    table = next(t for t in TABLES if t.name == name)
    frame = pd.DataFrame.from_records(records, columns=list(table.column_names))
    for column in table.columns:
        values = [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in frame[column.name]]
        if column.kind == "int":
            frame[column.name] = pd.array(values, dtype="Int64")
        elif column.kind == "float":
            frame[column.name] = pd.array(values, dtype="Float64")
        else:
            frame[column.name] = pd.Series(values, dtype=object)
    return frame


# -- continuous -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ContinuousTrials:
    """A user's two-arm trials of a continuous outcome, validated, one row per trial.

    ``rows``: ``study_id, label, n_treated, n_control`` and per arm either ``mean_*, sd_*`` or
    ``median_*, q1_*, q3_*`` (NaN where not given), ``row`` (the file's data row), ``source``,
    ``quality``, ``notes``. The mean difference and its SE are derived when the evidence is
    built, by the spec's ``evidence.median_iqr_method`` (:func:`continuous_trials_evidence`).
    """

    path: Path
    rows: pd.DataFrame
    content_hash: str
    covariates: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    covariate_kinds: dict = field(default_factory=dict)
    statement: dict = field(default_factory=dict)


def load_continuous_trials(path, columns: dict[str, str] | None = None) -> ContinuousTrials:
    """Read and validate a one-table file of two-arm trials of a continuous outcome.

    Each arm needs its size ``n_*`` and either a mean and SD (``mean_*``, ``sd_*``) or a median
    and quartiles (``median_*``, ``q1_*``, ``q3_*``); an arm whose mean is given without its SD
    (or a median without both quartiles) is an error naming the row and the missing column.
    """
    read = _read_table(path, CONTINUOUS_REQUIRED, CONTINUOUS_OPTIONAL, columns, "load_continuous_trials",
                       "continuous")
    for arm in ARMS:
        if not any(read.file_names[f"{s}_{arm}"] in read.header for s in ("mean", "median")):
            raise InputError(f"the {arm} arm needs mean_{arm} and sd_{arm}, or median_{arm}, q1_{arm} and q3_{arm}",
                             Location(read.shown, field=read.file_names[f"mean_{arm}"]))
    parse = _Rows(read)
    records, ids, years = [], [], []
    for number, row in enumerate(read.rows, start=1):
        sid, label = parse.study(row, number)
        record = {"study_id": sid, "label": label, "row": number, **parse.provenance(row, number)}
        for arm in ARMS:
            n = parse.number(row, number, f"n_{arm}", whole=True, maximum=MAX_ARM_SIZE)
            if n is None:
                raise InputError("required value is empty", parse.at(number, f"n_{arm}"))
            if n < 2:
                raise InputError(f"an arm of {n} patient{'s' if n != 1 else ''} has no spread: n must be at least 2",
                                 parse.at(number, f"n_{arm}"))
            record[f"n_{arm}"] = n
            record.update(_arm_summary(parse, row, number, arm))
        years.append(parse.year(row, number))
        ids.append(sid)
        records.append(record)
    covariates, kinds = _covariates(read, ids, years)
    columns_out = ["study_id", "label", "row", "source", "quality", "notes",
                   *(f"{k}_{arm}" for arm in ARMS for k in ("n", *SUMMARIES))]
    return ContinuousTrials(read.path, pd.DataFrame(records, columns=columns_out), _content_hash(read),
                            covariates, kinds, dict(parse.statement))


def _arm_summary(parse: _Rows, row, number, arm: str) -> dict[str, float]:
    """One arm's mean and SD, or median and quartiles, checked (SD > 0, q1 < q3, the median
    between the quartiles)."""
    value = {s: parse.number(row, number, f"{s}_{arm}", signed=s != "sd", maximum=MAX_MAGNITUDE,
                             minimum=MIN_SPREAD if s == "sd" else 0.0) for s in SUMMARIES}
    if value["mean"] is not None:
        if value["sd"] is None:
            raise InputError(f"the {arm} arm's mean needs its SD", parse.at(number, f"sd_{arm}"))
        if value["sd"] == 0:
            raise InputError("an SD must be greater than 0", parse.at(number, f"sd_{arm}"))
        given = [s for s in ("median", "q1", "q3") if value[s] is not None]
        if given:
            raise InputError(f"give the {arm} arm's mean and SD or its median and quartiles, not both",
                             parse.at(number, f"{given[0]}_{arm}"))
    elif value["median"] is not None:
        for s in ("q1", "q3"):
            if value[s] is None:
                raise InputError(f"the {arm} arm's median needs both quartiles", parse.at(number, f"{s}_{arm}"))
        if not value["q1"] < value["q3"]:  # a zero-width IQR gives no SD
            raise InputError(f"q1 {value['q1']:g} must be below q3 {value['q3']:g}", parse.at(number, f"q3_{arm}"))
        if not value["q1"] <= value["median"] <= value["q3"]:
            raise InputError(f"median {value['median']:g} is not between q1 {value['q1']:g} and q3 {value['q3']:g}",
                             parse.at(number, f"median_{arm}"))
        if value["sd"] is not None:
            raise InputError(f"give the {arm} arm's mean and SD or its median and quartiles, not both",
                             parse.at(number, f"sd_{arm}"))
    else:
        present = next((s for s in SUMMARIES if value[s] is not None), None)
        if present is not None:
            raise InputError(f"the {arm} arm's {present} needs a {'median' if present in ('q1', 'q3') else 'mean'}",
                             parse.at(number, f"{'median' if present in ('q1', 'q3') else 'mean'}_{arm}"))
        raise InputError(f"no summary for the {arm} arm: give mean_{arm} and sd_{arm}, or median_{arm}, q1_{arm} "
                         f"and q3_{arm}", parse.at(number, f"mean_{arm}"))
    return {f"{s}_{arm}": (math.nan if value[s] is None else float(value[s])) for s in SUMMARIES}


def arm_estimate(record, arm: str, method: str) -> dict:
    """One arm's mean and the SE of that mean, with the derivation (the register's
    :func:`bayes_msc.evidence.oxygenation.derive_row`: Wan 2014 or Luo 2018 for a median and IQR)."""
    from .oxygenation import derive_row

    n = int(record[f"n_{arm}"])
    if not math.isnan(record[f"mean_{arm}"]):
        row = pd.Series({"statistic": "mean_sd", "estimate": record[f"mean_{arm}"], "sd": record[f"sd_{arm}"],
                         "measure": ""})
    else:
        row = pd.Series({"statistic": "median_iqr", "estimate": record[f"median_{arm}"], "q1": record[f"q1_{arm}"],
                         "q3": record[f"q3_{arm}"], "measure": ""})
    return derive_row(row, n, method)


def continuous_trials_evidence(trials: ContinuousTrials, exclude_studies=(), median_iqr_method: str = "wan2014"):
    """One mean-difference contrast per trial (treated minus control) and its SE.

    Why contrasts, not arm terms with a natural course: one-table trials report each arm's
    final value (or change) on their own population's scale, and two trials' control arms
    differ in who was enrolled and when, not only by chance. An arm-level model would pool the
    control arms into a shared "natural course" and let those between-population differences
    inform the effect; the within-trial contrast is what randomisation protects, and it is what
    a metafor ``escalc(measure = "MD")`` analysis pools. The SE is that of a difference of
    independent means, ``sqrt(sd_t^2/n_t + sd_c^2/n_c)``.
    """
    from .doses import NO_DOSE
    from .estimates import _contrast_term
    from .oxygenation import TERM_COLUMNS, OxygenationEvidence

    excluded = set(exclude_studies)
    terms, inclusion, studies, derived = [], [], [], []
    for record in trials.rows.to_dict("records"):
        sid = record["study_id"]
        entry = {"study_id": sid, "label": record["label"], "seed": False, "allocation": "randomised",
                 "status": "excluded", "contribution": "", "detail": "", "reason": "", "quality": record["quality"],
                 "source": record["source"]}
        inclusion.append(entry)
        if sid in excluded:
            entry["reason"] = "excluded by the analysis spec (evidence.exclude_studies)"
            continue
        try:
            arms = {arm: arm_estimate(record, arm, median_iqr_method) for arm in ARMS}
        except InputError as exc:  # the derivation's own check, at the trial's row
            raise InputError(exc.problem, Location(_display(trials.path), record["row"])) from None
        for arm in ARMS:
            derived.append({"study_id": sid, "arm": arm, "estimate": arms[arm]["estimate"], "se": arms[arm]["se"],
                            "derivation": arms[arm]["derivation"], "references": arms[arm]["references"]})
        difference, se = derivations.difference_of_independent(
            arms["treated"]["estimate"], arms["treated"]["se"], arms["control"]["estimate"], arms["control"]["se"])
        how = "; ".join([f"treated: {arms['treated']['derivation']}", f"control: {arms['control']['derivation']}",
                         difference.formula, se.formula])
        term = _contrast_term(sid, len(studies), difference.value, se.value, how, record["quality"], record["source"])
        term.update(dose=NO_DOSE, timepoint=TIMEPOINT)
        terms.append(term)
        studies.append(sid)
        entry.update(status="included", contribution="mean difference",
                     detail=f"{difference.value:+.4g} (SE {se.value:.4g})")
    return OxygenationEvidence(
        studies=tuple(studies),
        terms=pd.DataFrame(terms, columns=TERM_COLUMNS),
        derived=pd.DataFrame(derived),
        inclusion=pd.DataFrame(inclusion),
        register_hash=trials.content_hash,
        natural_course=False,
    )


__all__ = ["BinaryEvidence", "BinaryTrials", "ContinuousTrials", "continuous_trials_evidence", "load_binary_trials",
           "load_continuous_trials", "parse_column_mapping", "study_id_from"]
