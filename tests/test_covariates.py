"""Study-level covariates: covariates.csv validation and the derived covariates."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from bayes_msc.evidence.covariates import covariate_kind, covariate_provenance, study_covariates
from bayes_msc.evidence.register import default_data_dir, load_register
from bayes_msc.io.errors import InputError

HEADER = "study_id,covariate,value,source,quality,notes\n"


def _register_with(tmp_path: Path, body: str) -> Path:
    root = tmp_path / "reg"
    shutil.copytree(default_data_dir(), root)
    (root / "covariates.csv").write_text(HEADER + body, encoding="utf-8")
    return root


def test_values_are_read_by_kind_and_missing_stays_missing(tmp_path):
    root = _register_with(tmp_path, "lanzoni2021,publication_year,2021,Stem Cells Transl Med 2021,primary,\n"
                                    "lanzoni2021,rob2_overall,low,review,secondary,\n"
                                    "shi2021,publication_year,,not reported,primary,\n")
    frame = study_covariates(load_register(root), ["publication_year", "rob2_overall"])
    assert frame.loc["lanzoni2021", "publication_year"] == 2021.0
    assert frame.loc["lanzoni2021", "rob2_overall"] == "low"
    assert np.isnan(frame.loc["shi2021", "publication_year"])
    assert frame.loc["shi2021", "rob2_overall"] is None
    assert covariate_kind("publication_year") == "numeric" and covariate_kind("rob2_overall") == "categorical"


@pytest.mark.parametrize(("body", "field", "words"), [
    ("nosuch,publication_year,2021,s,primary,\n", "study_id", "unknown study"),
    ("shi2021,height,2021,s,primary,\n", "covariate", "unknown covariate"),
    ("shi2021,ards_cause,covid,s,primary,\n", "covariate", "read from studies.csv"),
    ("shi2021,rob2_overall,medium,s,primary,\n", "value", "not a level"),
    ("shi2021,share_ventilated,1.5,s,primary,\n", "value", "outside its range"),
    ("shi2021,publication_year,twenty,s,primary,\n", "value", ""),
    ("shi2021,publication_year,2021,s,primary,\nshi2021,publication_year,2020,s,primary,\n", "covariate", "duplicate"),
])
def test_bad_rows_name_file_row_and_field(tmp_path, body, field, words):
    root = _register_with(tmp_path, body)
    with pytest.raises(InputError) as caught:
        load_register(root)
    text = str(caught.value)
    assert "covariates.csv" in text and field in text and words in text


def test_derived_covariates_follow_the_other_tables():
    register = load_register()
    frame = study_covariates(register, ["ards_cause", "cell_source", "infusions"])
    root = default_data_dir()
    # independent reading of the CSV files
    studies = {r["study_id"]: r for r in csv.DictReader(open(root / "studies.csv", encoding="utf-8"))}
    cells: dict[str, set] = {}
    for r in csv.DictReader(open(root / "arms.csv", encoding="utf-8")):
        if r["role"] == "cells":
            cells.setdefault(r["study_id"], set()).add((r["arm_id"], r["product_class"]))
    infusions: dict[str, float] = {}
    for r in csv.DictReader(open(root / "doses.csv", encoding="utf-8")):
        if r["infusions"] and (r["arm_id"] in {a for a, _ in cells.get(r["study_id"], ())}):
            infusions[r["study_id"]] = max(infusions.get(r["study_id"], 0), float(r["infusions"]))
    for sid, row in studies.items():
        assert frame.loc[sid, "ards_cause"] == (row["ards_cause"] or None)
        classes = {c for _, c in cells.get(sid, ())}
        expected = None if not classes else (classes.pop() if len(classes) == 1 else "mixed")
        assert frame.loc[sid, "cell_source"] == expected, sid
        if sid in infusions:
            assert frame.loc[sid, "infusions"] == infusions[sid]
        else:
            assert np.isnan(frame.loc[sid, "infusions"])
    assert len(covariate_provenance(register, "ards_cause")) == len(studies)


def test_a_register_without_covariates_keeps_its_hash(tmp_path):
    root = tmp_path / "reg"
    shutil.copytree(default_data_dir(), root)
    (root / "covariates.csv").unlink(missing_ok=True)
    without = load_register(root).content_hash
    # the hash as it was before covariates.csv existed: the five tables' bytes, in order
    import hashlib

    digest = hashlib.sha256()
    for name in ("studies", "arms", "doses", "mortality", "oxygenation"):
        path = root / f"{name}.csv"
        raw = path.read_bytes() if path.exists() else b""
        digest.update(f"{name}.csv".encode() + b"\0" + raw + b"\0")
    assert without == digest.hexdigest()
    (root / "covariates.csv").write_text(HEADER, encoding="utf-8")
    assert load_register(root).content_hash != without  # a file present is part of what was read


def test_unknown_covariate_name_is_refused():
    with pytest.raises(InputError, match="unknown covariate 'age'"):
        study_covariates(load_register(), ["age"])
