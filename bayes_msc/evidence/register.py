"""Load and validate an evidence register (a folder of CSV tables, see ``data/README.md``).

Validation happens on the raw text so every message can name the file, the 1-based data
row and the column: impossible values (deaths > n, negative counts), text in number
columns, unknown studies or arms, duplicate rows and missing provenance are rejected with
an :class:`~bayes_msc.io.errors.InputError`. The first problem found is reported; nothing is
loaded partially.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import math
import os
import re
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

import pandas as pd

from ..io.errors import InputError, Location
from .schema import COVARIATES, COVARIATES_BY_NAME, STATISTIC_FIELDS, TABLES, Column, Covariate, Table


MAX_ARM_SIZE = 1e6  # the schema's bound on every count
MAX_ALLOCATIONS = 10_000  # combinations of allowed arm sizes one study may have (each is enumerated)


def default_data_dir() -> Path:
    """The embedded register: ``bayes_msc/_data`` in a wheel, ``data/`` in a checkout."""
    from ..io.paths import bundled_dir

    return bundled_dir("data")


@dataclass(frozen=True)
class Register:
    """A validated register: one DataFrame per table, and a hash of the raw bytes."""

    root: Path
    tables: dict[str, pd.DataFrame] = field(repr=False)
    content_hash: str = ""

    def fingerprint(self) -> str:
        """A hash of the tables as they are now (values, index, columns, dtypes): unlike
        ``content_hash`` (the files as read), it changes when a table is edited in place."""
        digest = hashlib.sha256()
        for name in sorted(self.tables):
            table = self.tables[name]
            digest.update(name.encode() + b"\0" + repr([(str(c), str(t)) for c, t in table.dtypes.items()]).encode())
            digest.update(pd.util.hash_pandas_object(table, index=True).to_numpy().tobytes())
        return digest.hexdigest()

    @property
    def studies(self) -> pd.DataFrame:
        return self.tables["studies"]

    @property
    def arms(self) -> pd.DataFrame:
        return self.tables["arms"]

    @property
    def doses(self) -> pd.DataFrame:
        return self.tables["doses"]

    @property
    def mortality(self) -> pd.DataFrame:
        return self.tables["mortality"]

    @property
    def oxygenation(self) -> pd.DataFrame:
        return self.tables["oxygenation"]

    @property
    def covariates(self) -> pd.DataFrame:
        """The covariates table (long format); empty for a register without covariates.csv."""
        from .schema import COVARIATE_TABLE

        return self.tables.get("covariates", pd.DataFrame(columns=list(COVARIATE_TABLE.column_names)))

    def study(self, study_id: str) -> pd.Series:
        return self.studies.set_index("study_id").loc[study_id]

    def allocations(self, study_id: str) -> list[dict[str, int]]:
        """Group sizes the design allows: every combination of allowed arm sizes summing to n_total."""
        arms = self.arms[self.arms["study_id"] == study_id]
        return _allocations(arms, self.study(study_id)["n_total"])


def _allowed_sizes(arm: pd.Series) -> list[int]:
    if not pd.isna(arm["n"]):
        return [int(arm["n"])]
    text = arm["n_allowed"]
    if pd.isna(text) or not str(text).strip():
        return []
    return [int(part) for part in str(text).split("|")]


def _allocations(arms: pd.DataFrame, n_total) -> list[dict[str, int]]:
    options = [_allowed_sizes(arm) for _, arm in arms.iterrows()]
    if any(not o for o in options):
        return []
    ids = list(arms["arm_id"])
    combos = [dict(zip(ids, sizes)) for sizes in product(*options)]
    if pd.isna(n_total) or all(len(o) == 1 for o in options):
        return combos
    return [c for c in combos if sum(c.values()) == int(n_total)]


# -- reading -----------------------------------------------------------------------------


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


# A decimal number as people and spreadsheets write it: no digit-group underscores ("4_7"
# would be 47 to Python's int()), no hex; "12.0" is a whole number (pandas writes an integer
# column with gaps that way).
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_NOT_FINITE = re.compile(r"[+-]?(inf|infinity|nan)", re.IGNORECASE)


def parse_number(text: str, where: Location, *, whole: bool = False, signed: bool = False,
                 positive: bool = False, maximum: float = 1e6, minimum: float = 0.0) -> float | int:
    """A finite number in range, from a cell's text, or an :class:`InputError` at ``where``."""
    if _NOT_FINITE.fullmatch(text):
        raise InputError(f"{text!r} is not a finite number", where)
    if not _NUMBER.fullmatch(text):
        raise InputError(f"{text!r} is not {'a whole number' if whole else 'a number'}", where)
    value = float(text)
    if not math.isfinite(value) or abs(value) > maximum:
        raise InputError(f"{text} is out of range (at most {maximum:g} in size)", where)
    if whole:
        if not value.is_integer():
            raise InputError(f"{text!r} is not a whole number", where)
        value = int(value)
    if value < 0 and not signed:
        raise InputError(f"negative value {text} is impossible", where)
    if positive and value == 0:
        raise InputError("must be greater than 0", where)
    if value != 0 and abs(value) < minimum:
        raise InputError(f"{text} is too small (at least {minimum:g} in size)", where)
    return value


# Ids reach file names, report anchors, HTML and terminal lines: plain ASCII only, so none
# can carry markup, control characters or path separators (labels carry the free text).
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
ID_RULE = ("study and arm ids are ASCII letters, digits, '_', '.' and '-', starting with a letter or digit "
           "(pattern ^[A-Za-z0-9][A-Za-z0-9_.-]*$); put free text in the label")


def _parse_cell(raw: str, column: Column, where: Location):
    text = raw.strip()
    if not text:
        if column.required:
            raise InputError("required value is empty", where)
        return None
    if column.kind in ("text", "id"):
        if column.kind == "id" and not ID_PATTERN.fullmatch(text):
            raise InputError(f"identifier {text!r} is not allowed: {ID_RULE}", where)
        return text
    if column.kind == "enum":
        if text not in column.choices:
            raise InputError(f"{text!r} is not one of: {', '.join(column.choices)}", where)
        return text
    return parse_number(text, where, whole=column.kind == "int", signed=column.signed,
                        positive=column.positive, maximum=column.maximum, minimum=column.minimum)


def read_csv(path: Path, shown: str) -> tuple[bytes, csv.DictReader]:
    """The file's bytes (for its content hash) and a reader over its UTF-8 rows.

    Records are split by the csv module's rules only: a line break inside a quoted cell, or
    a U+2028 / U+0085 anywhere in a cell, stays in that cell (``str.splitlines`` would start
    a new row there and every later row number would be wrong). A header that names a column
    twice is refused: ``DictReader`` would silently keep the last copy.
    """
    if path.exists() and not path.is_file():
        raise InputError("is not a file", Location(shown))
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", Location(shown)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", Location(shown)) from None
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), restkey=_EXTRA_CELLS)
        header = reader.fieldnames or []
    except csv.Error as exc:
        raise InputError(f"not a readable CSV header ({exc})", Location(shown)) from None
    seen = set()
    for name in header:
        if name in seen:
            raise InputError("column appears twice in the header", Location(shown, field=name))
        seen.add(name)
    return raw, _Records(reader, shown)


_EXTRA_CELLS = "\0extra"


class _Records:
    """A ``DictReader`` that reports a row with more cells than the header, or text the csv
    module cannot read (a NUL byte, a quote left open), as an error at that row."""

    def __init__(self, reader: csv.DictReader, shown: str):
        self._reader, self._shown = reader, shown
        self.fieldnames = reader.fieldnames

    def __iter__(self):
        number = 0
        while True:
            number += 1
            try:
                row = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise InputError(f"not readable as CSV ({exc})", Location(self._shown, number)) from None
            if _EXTRA_CELLS in row:
                raise InputError("row has more cells than the header", Location(self._shown, number))
            yield row


def _read_table(root: Path, table: Table) -> tuple[pd.DataFrame, bytes, list[Location]] | None:
    path = root / table.file_name
    shown = _display(path)
    if not path.exists():
        if table.required:
            raise InputError("required table is missing", Location(shown))
        return None
    raw, reader = read_csv(path, shown)
    header = reader.fieldnames or []
    for column in table.columns:
        # a column whose values may all be empty may also be left out (e.g. notes)
        if column.required and column.name not in header:
            raise InputError("required column is missing", Location(shown, field=column.name))
    for name in header:
        if name not in table.column_names:
            close = difflib.get_close_matches(name, table.column_names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise InputError(f"unknown column ({hint}expected: {', '.join(table.column_names)})",
                             Location(shown, field=name))
    records, seen = [], {}
    for number, row in enumerate(reader, start=1):
        parsed = {c.name: _parse_cell(row.get(c.name) or "", c, Location(shown, number, c.name)) for c in table.columns}
        key = tuple(parsed[k] for k in table.key)
        if key in seen:
            raise InputError(
                f"duplicate row: same {', '.join(table.key)} as row {seen[key]}",
                Location(shown, number, table.key[-1] if len(table.key) == 1 else table.key[1]),
            )
        seen[key] = number
        records.append(parsed)
    frame = pd.DataFrame.from_records(records, columns=list(table.column_names))
    for c in table.columns:
        if c.kind == "int":
            frame[c.name] = pd.array(frame[c.name].tolist(), dtype="Int64")
        elif c.kind == "float":
            frame[c.name] = pd.array(frame[c.name].tolist(), dtype="Float64")
    locations = [Location(shown, i + 1) for i in range(len(frame))]
    return frame, raw, locations


def load_register(directory: str | Path | None = None) -> Register:
    """Read and validate the register in ``directory`` (default: the embedded one)."""
    if directory is not None and not isinstance(directory, (str, os.PathLike)):
        raise InputError(f"load_register(directory=...): expected a folder path, got {type(directory).__name__}")
    root = Path(directory) if directory is not None else default_data_dir()
    if not root.is_dir():
        raise InputError("register directory not found", Location(str(root)))
    tables: dict[str, pd.DataFrame] = {}
    rows: dict[str, list[Location]] = {}
    digest = hashlib.sha256()
    for table in TABLES:
        loaded = _read_table(root, table)
        if loaded is None:
            frame, raw, locations = pd.DataFrame(columns=list(table.column_names)), b"", []
        else:
            frame, raw, locations = loaded
        tables[table.name] = frame
        rows[table.name] = locations
        if loaded is not None or table.hashed_when_absent:
            digest.update(table.file_name.encode() + b"\0" + raw + b"\0")
    _check_references(tables, rows)
    return Register(root=root, tables=tables, content_hash=digest.hexdigest())


# -- cross-table rules -------------------------------------------------------------------


def _check_references(tables: dict[str, pd.DataFrame], rows: dict[str, list[Location]]) -> None:
    studies = tables["studies"].set_index("study_id")
    arms = tables["arms"]
    arm_keys = set(zip(arms["study_id"], arms["arm_id"]))

    for i, arm in arms.iterrows():
        where = rows["arms"][i]
        _known_study(arm["study_id"], studies, where)
        if not pd.isna(arm["n"]) and not pd.isna(arm["n_allowed"]):
            raise InputError("give either n or n_allowed, not both", _at(where, "n_allowed"))
        if not pd.isna(arm["n_allowed"]):
            parts = str(arm["n_allowed"]).split("|")
            if not all(p.strip().isascii() and p.strip().isdigit() and 0 < int(p) <= MAX_ARM_SIZE for p in parts):
                raise InputError(f"{arm['n_allowed']!r} must be whole numbers from 1 to {MAX_ARM_SIZE:g} separated by |",
                                 _at(where, "n_allowed"))
    for sid, group in arms.groupby("study_id"):
        options = [len(_allowed_sizes(arm)) or 1 for _, arm in group.iterrows()]
        if math.prod(options) > MAX_ALLOCATIONS:
            where = rows["arms"][group.index[group["n_allowed"].notna()][0]]
            raise InputError(f"{sid}'s arms allow {math.prod(options):,} allocations; at most {MAX_ALLOCATIONS:,} are "
                             "supported", _at(where, "n_allowed"))
    for sid, group in arms.groupby("study_id"):
        if group["n_allowed"].notna().any() and not _allocations(group, studies.loc[sid, "n_total"]):
            where = rows["arms"][group.index[group["n_allowed"].notna()][0]]
            raise InputError(f"no allocation of the allowed sizes sums to {sid}'s n_total", _at(where, "n_allowed"))

    for i, dose in tables["doses"].iterrows():
        where = rows["doses"][i]
        _known_study(dose["study_id"], studies, where)
        if (dose["study_id"], dose["arm_id"]) not in arm_keys:
            raise InputError(f"unknown arm {dose['arm_id']!r} of study {dose['study_id']!r}", _at(where, "arm_id"))
        if not pd.isna(dose["dose_per_kg"]) and not pd.isna(dose["fixed_dose"]):
            raise InputError("give dose_per_kg or fixed_dose, not both", _at(where, "fixed_dose"))

    arm_table = arms.set_index(["study_id", "arm_id"])
    for i, row in tables["mortality"].iterrows():
        where = rows["mortality"][i]
        sid = row["study_id"]
        _known_study(sid, studies, where)
        row_arms = str(row["arms"]).split("+")
        for arm_id in row_arms:
            if (sid, arm_id) not in arm_keys:
                raise InputError(f"unknown arm {arm_id!r} of study {sid!r}", _at(where, "arms"))
        if len(set(row_arms)) != len(row_arms):  # "msc+msc" would count that arm's patients twice
            twice = next(a for a in row_arms if row_arms.count(a) > 1)
            raise InputError(f"arm {twice!r} is listed twice", _at(where, "arms"))
        exact, low, high = row["deaths"], row["deaths_min"], row["deaths_max"]
        if not pd.isna(exact) and (not pd.isna(low) or not pd.isna(high)):
            raise InputError("give deaths or the bounds deaths_min/deaths_max, not both", _at(where, "deaths"))
        if pd.isna(exact) and (pd.isna(low) or pd.isna(high)):
            raise InputError("no count: give deaths, or both deaths_min and deaths_max", _at(where, "deaths"))
        if pd.isna(exact) and low > high:
            raise InputError(f"deaths_min {low} exceeds deaths_max {high}", _at(where, "deaths_min"))
        n = _group_size(row_arms, sid, arm_table, studies)
        if n is None:
            raise InputError(
                f"size of arm(s) {row['arms']} unknown: give n, or n_allowed and the study's n_total",
                _at(where, "arms"),
            )
        most = exact if not pd.isna(exact) else high
        if most > n:
            field_name = "deaths" if not pd.isna(exact) else "deaths_max"
            raise InputError(f"{int(most)} deaths exceed n = {n} in {sid}/{row['arms']}", _at(where, field_name))

    _check_oxygenation(tables, rows, studies, arm_keys)
    check_covariate_rows(tables["covariates"], rows["covariates"], set(studies.index))


def _check_oxygenation(tables, rows, studies, arm_keys) -> None:
    for i, row in tables["oxygenation"].iterrows():
        where = rows["oxygenation"][i]
        sid = row["study_id"]
        _known_study(sid, studies, where)
        for field_name in ("arm", "comparator"):
            arm_id = row[field_name]
            if not pd.isna(arm_id) and (sid, arm_id) not in arm_keys:
                raise InputError(f"unknown arm {arm_id!r} of study {sid!r}", _at(where, field_name))
        for field_name in STATISTIC_FIELDS[row["statistic"]]:
            if pd.isna(row[field_name]):
                raise InputError(f"a {row['statistic']} row needs {field_name}", _at(where, field_name))
        stat = row["statistic"]
        if stat == "median_iqr" and not row["q1"] < row["q3"]:  # a zero-width IQR gives no SD
            raise InputError(f"q1 {row['q1']} must be below q3 {row['q3']}", _at(where, "q3"))
        if stat == "estimate_ci" and not row["ci_lower"] < row["ci_upper"]:
            raise InputError(f"ci_lower {row['ci_lower']} must be below ci_upper {row['ci_upper']}",
                             _at(where, "ci_upper"))
        if stat == "median_iqr" and not row["q1"] <= row["estimate"] <= row["q3"]:
            raise InputError(
                f"median {row['estimate']} is not between q1 {row['q1']} and q3 {row['q3']}", _at(where, "estimate")
            )
        if stat == "estimate_ci" and not row["ci_lower"] <= row["estimate"] <= row["ci_upper"]:
            raise InputError(
                f"estimate {row['estimate']} is outside its interval [{row['ci_lower']}, {row['ci_upper']}]",
                _at(where, "estimate"),
            )
        if not pd.isna(row["ci_prob"]) and not row["ci_prob"] < 1:
            raise InputError(f"ci_prob must be below 1, got {row['ci_prob']}", _at(where, "ci_prob"))
        if not pd.isna(row["p_value"]) and not row["p_value"] < 1:
            raise InputError(f"a P value must be below 1, got {row['p_value']}", _at(where, "p_value"))
        if not pd.isna(row["p_relation"]) and pd.isna(row["p_value"]):
            raise InputError("p_relation without a p_value", _at(where, "p_relation"))


def parse_covariate_value(declared: Covariate, text: str, where: Location):
    """A covariate value from its text: a float in the declared range, or one of the levels;
    None for an empty cell (not reported)."""
    text = (text or "").strip() if isinstance(text, str) or text is None else str(text)
    if text == "" or (isinstance(text, float) and math.isnan(text)):
        return None
    if declared.kind == "categorical":
        if declared.levels and text not in declared.levels:  # a data file's own column: any level
            raise InputError(f"{text!r} is not a level of {declared.name} ({', '.join(declared.levels)})", where)
        return text
    value = parse_number(text, where, signed=declared.minimum < 0, maximum=1e6)
    if not declared.minimum <= value <= declared.maximum:
        unit = f" {declared.unit}" if declared.unit else ""
        raise InputError(f"{declared.name} {value:g}{unit} is outside its range "
                         f"[{declared.minimum:g}, {declared.maximum:g}]", where)
    return float(value)


def check_covariate_rows(table: pd.DataFrame, rows: list[Location], study_ids: set[str]) -> None:
    """Validate covariates.csv: known studies, declared covariates that live in this file (not a
    derived one), and values of the declared kind and range. Errors name the file, row and field."""
    for i, row in table.reset_index(drop=True).iterrows():
        where = rows[i]
        if row["study_id"] not in study_ids:
            raise InputError(f"unknown study {row['study_id']!r} (not in studies.csv)",
                             Location(where.file, where.row, "study_id"))
        name = row["covariate"]
        declared = COVARIATES_BY_NAME.get(name)
        if declared is None:
            known = ", ".join(c.name for c in COVARIATES if not c.derived_from)
            raise InputError(f"unknown covariate {name!r} (known: {known})", Location(where.file, where.row, "covariate"))
        if declared.derived_from:
            raise InputError(f"{name} is read from {declared.derived_from}.csv, not from covariates.csv",
                             Location(where.file, where.row, "covariate"))
        value = row["value"]
        parse_covariate_value(declared, "" if value is None or (isinstance(value, float) and math.isnan(value))
                              else str(value), Location(where.file, where.row, "value"))


def _group_size(row_arms, sid, arm_table, studies) -> int | None:
    sizes = [arm_table.loc[(sid, a), "n"] for a in row_arms]
    if not any(pd.isna(s) for s in sizes):
        return int(sum(sizes))
    allowed = [arm_table.loc[(sid, a), "n_allowed"] for a in row_arms]
    if any(pd.isna(s) and pd.isna(al) for s, al in zip(sizes, allowed)):
        return None
    study_arms = set(arm_table.loc[sid].index)
    n_total = studies.loc[sid, "n_total"]
    if set(row_arms) == study_arms and not pd.isna(n_total):
        return int(n_total)
    return None


def _known_study(study_id, studies: pd.DataFrame, where: Location) -> None:
    if study_id not in studies.index:
        raise InputError(f"unknown study {study_id!r} (not in studies.csv)", _at(where, "study_id"))


def _at(where: Location, field_name: str) -> Location:
    return Location(where.file, where.row, field_name)
