"""Study-level covariates: read, validated and derived in one place.

A covariate's value comes either from a row of the register's ``covariates.csv`` (long format:
``study_id, covariate, value, source, quality, notes``, so that every value carries its own
source and quality) or, for the covariates the register already holds, from another table:
``ards_cause`` (studies.csv), ``cell_source`` (the cell arms' product class in arms.csv) and
``infusions`` (the cell arms' largest number of infusions in doses.csv). What each covariate is
(numeric with a unit and a range, or categorical with its levels) is declared once, in
:data:`bayes_msc.evidence.schema.COVARIATES`.

A missing value is allowed and stays missing (NaN / None): an analysis that needs the covariate
models it or excludes the study with that reason; it is never filled in here.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..io.errors import InputError, Location
from .register import parse_covariate_value
from .schema import COVARIATES, COVARIATES_BY_NAME, Covariate


def covariate(name: str, source=None) -> Covariate:
    """The declaration of covariate ``name``: a register covariate (:data:`COVARIATES`), or a
    column of a one-table data file (``source.covariate_kinds``: its own covariates, numeric
    when every value is a number); an :class:`InputError` listing the known ones otherwise."""
    found = COVARIATES_BY_NAME.get(name)
    if found is not None:
        return found
    kinds = getattr(source, "covariate_kinds", None) or {}
    if name in kinds:
        return Covariate(name, kinds[name], "a column of the data file")
    known = [c.name for c in COVARIATES] + [k for k in kinds if k not in COVARIATES_BY_NAME]
    raise InputError(f"unknown covariate {name!r} (known: {', '.join(known)})")


def covariate_kind(name: str, source=None) -> str:
    """``"numeric"`` or ``"categorical"``."""
    return covariate(name, source).kind


def _study_ids(source) -> list[str]:
    """The studies of a register, or of a one-table file read as per-study rows."""
    if hasattr(source, "tables") and "studies" in source.tables:
        return list(source.studies["study_id"])
    return list(source.rows["study_id"])


def _derived(register, declared: Covariate) -> pd.Series:
    studies = register.studies.set_index("study_id")
    if declared.name == "ards_cause":
        return studies["ards_cause"].astype(object).where(studies["ards_cause"].notna(), None)
    arms = register.arms
    cells = arms[arms["role"] == "cells"]
    if declared.name == "cell_source":
        by_study = cells.groupby("study_id")["product_class"].agg(lambda s: sorted(set(s)))
        values = {sid: (classes[0] if len(classes) == 1 else "mixed") for sid, classes in by_study.items()}
        return pd.Series({sid: values.get(sid) for sid in studies.index}, dtype=object)
    if declared.name == "infusions":
        doses = register.doses
        cell_keys = set(zip(cells["study_id"], cells["arm_id"]))
        rows = doses[[k in cell_keys for k in zip(doses["study_id"], doses["arm_id"])]]
        most = rows.dropna(subset=["infusions"]).groupby("study_id")["infusions"].max()
        return pd.Series({sid: float(most[sid]) if sid in most.index else np.nan for sid in studies.index},
                         dtype=float)
    raise AssertionError(declared.name)  # every derived covariate is handled above


def study_covariates(register, names: Iterable[str]) -> pd.DataFrame:
    """One row per study of ``register`` (index ``study_id``), one column per covariate in
    ``names``: floats for numeric covariates (NaN when missing), level strings for categorical
    ones (None when missing). Unknown names raise an :class:`InputError`."""
    names = list(dict.fromkeys(names))
    study_ids = _study_ids(register)
    columns = {}
    table = register.covariates
    for name in names:
        declared = covariate(name, register)
        if declared.derived_from and not hasattr(register, "tables"):
            raise InputError(f"{name} is read from a register's {declared.derived_from}.csv; this data file has no "
                             f"such table: give {name} as a column of the file")
        if declared.derived_from:
            series = _derived(register, declared).reindex(study_ids)
        else:
            rows = table[table["covariate"] == name]
            where = Location(f"{getattr(register, 'root', getattr(register, 'path', ''))}/covariates.csv", field="value")
            values = {r.study_id: parse_covariate_value(declared, "" if pd.isna(r.value) else str(r.value), where)
                      for r in rows.itertuples()}
            series = pd.Series([values.get(sid) for sid in study_ids], index=study_ids, dtype=object)
        if declared.kind == "numeric":
            series = pd.to_numeric(series, errors="coerce").astype(float)
        else:
            series = series.astype(object).where(series.notna(), None)
        columns[name] = series
    frame = pd.DataFrame(columns, index=pd.Index(study_ids, name="study_id"))
    return frame


def covariate_provenance(register, name: str) -> pd.DataFrame:
    """Where each study's value of ``name`` comes from: ``study_id, value, source, quality, notes``
    (the covariates.csv rows, or the rows of the table a derived covariate is read from)."""
    declared = covariate(name, register)
    if not declared.derived_from:
        table = register.covariates
        return table[table["covariate"] == name][["study_id", "value", "source", "quality", "notes"]].reset_index(drop=True)
    values = study_covariates(register, [name])[name]
    source = {"studies": register.studies, "arms": register.arms[register.arms["role"] == "cells"],
              "doses": register.doses}[declared.derived_from]
    first = source.drop_duplicates("study_id").set_index("study_id")
    return pd.DataFrame({
        "study_id": values.index, "value": values.to_numpy(),
        "source": [first["source"].get(s, "") for s in values.index],
        "quality": [first["quality"].get(s, "") for s in values.index],
        "notes": [f"from {declared.derived_from}.csv" for _ in values.index],
    })
