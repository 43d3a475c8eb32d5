"""Cumulative meta-analysis and `update`: the last cumulative row is the full fit draw for
draw, a row with k studies is a fit of those k studies (within Monte Carlo error), an update
is a fit of the register with the trial written into it, and bad input is refused with its
file, row and field."""

from __future__ import annotations

import csv
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

import bayes_msc
from bayes_msc.analyses.cumulative import accrual_steps, cumulative_analysis, publication_years, render_cumulative
from bayes_msc.analyses.update import read_new_trials, update_analysis, with_added_trials
from bayes_msc.api import fit_spec
from bayes_msc.evidence.register import load_register
from bayes_msc.io.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
YEAR = re.compile(r"\b(19\d\d|20\d\d)\b")


def reference_years() -> dict[str, int]:
    """Each study's year as its reference column states it (the first four-digit year)."""
    with open(ROOT / "data" / "studies.csv", encoding="utf-8") as f:
        return {r["study_id"]: int(m[0]) for r in csv.DictReader(f) if (m := YEAR.findall(r["reference"]))}


def write_register(folder: Path, years: dict[str, int]) -> Path:
    """A copy of the embedded register with a covariates table of publication years."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in (ROOT / "data").glob("*.csv"):
        shutil.copy(path, folder / path.name)
    with open(folder / "covariates.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["study_id", "covariate", "value", "source", "quality", "notes"])
        for study, year in years.items():
            w.writerow([study, "publication_year", year, "reference column", "secondary", ""])
    return folder


@pytest.fixture(scope="module")
def register_dir(tmp_path_factory) -> Path:
    return write_register(tmp_path_factory.mktemp("register"), reference_years())


@pytest.fixture(scope="module")
def spec():
    return bayes_msc.load_spec("mortality").with_sampler(chains=4, draws=1000, tune=600, seed=7)


@pytest.fixture(scope="module")
def by_year(spec, register_dir):
    return cumulative_analysis(spec, register_dir)


# -- years and order ---------------------------------------------------------------------------


def test_publication_years_come_from_the_register_covariate(register_dir):
    years = publication_years(load_register(register_dir))
    assert years["zheng2014"] == 2014 and years["bowdish2023"] == 2023 and years["stat2025"] == 2025
    assert math.isnan(years["bcu001_2026"])  # its reference states no year: none recorded, none guessed


def test_accrual_order_ties_enter_together_and_by_study_in_year_label_order():
    years = {"b": 2021.0, "a": 2021.0, "c": 2019.0, "d": 2023.0}
    labels = {"a": "Zed 2021", "b": "Alpha 2021", "c": "Old 2019", "d": "New 2023"}
    assert accrual_steps(list(years), labels, years, "year") == [
        (2019, 2019.0, ["c"]), (2021, 2021.0, ["b", "a"]), (2023, 2023.0, ["d"])]
    assert [s[2] for s in accrual_steps(list(years), labels, years, "study")] == [["c"], ["b"], ["a"], ["d"]]


def test_a_study_without_a_year_is_refused_by_name(tmp_path, spec):
    years = reference_years()
    del years["matthay2019"]
    folder = write_register(tmp_path / "r", years)
    with pytest.raises(InputError, match=r"no publication year for 1 included study: matthay2019 \(Matthay 2019"):
        cumulative_analysis(spec, folder)
    with pytest.raises(InputError, match="10 included studies: lanzoni2021"):  # a register without years
        cumulative_analysis(spec, write_register(tmp_path / "none", {}))


@pytest.mark.parametrize("value", ["20x1", "1850", "2150"])
def test_a_bad_year_names_its_file_row_and_field(tmp_path, value):
    folder = write_register(tmp_path / "r", {"zheng2014": 2014, "shi2021": 2021})
    text = (folder / "covariates.csv").read_text().replace("shi2021,publication_year,2021", f"shi2021,publication_year,{value}")
    (folder / "covariates.csv").write_text(text)
    with pytest.raises(InputError, match=r"covariates.csv, row 2, field 'value'"):
        publication_years(load_register(folder))


# -- the analysis ------------------------------------------------------------------------------


def test_cumulative_rows_by_year(by_year, register_dir):
    table = by_year.table
    ref = reference_years()
    included = table["study_ids"].iloc[-1].split(", ")
    # one row per distinct year among the included studies, each with every study up to it
    assert list(table["year"]) == sorted({ref[s] for s in included})
    for row in table.itertuples():
        assert set(row.study_ids.split(", ")) == {s for s in included if ref[s] <= row.year}
    assert list(table["studies"]) == sorted(table["studies"])
    for column in ("divergences", "rhat_max", "ess_bulk_min", "ess_tail_min", "diagnostics_passed"):
        assert table[column].notna().all()
    assert "2014" in render_cumulative(by_year)


def test_last_row_is_the_full_fit_and_nothing_recompiles(spec, register_dir, by_year):
    full = fit_spec(spec, load_register(register_dir))
    last = by_year.table.iloc[-1]
    for key, value in full.decisions.headline().items():
        assert last[key] == value, key  # same compiled model, same seed: the same draws
    # sampler settings are not part of the compiled structure: a short run reuses the model too
    again = cumulative_analysis(spec.with_sampler(draws=200, tune=200), register_dir, by="study")
    assert again.compiles == 0  # every row swapped data into the compiled model
    assert list(again.table["studies"]) == list(range(1, len(full.evidence.studies) + 1))
    assert set(again.table["study_ids"].iloc[-1].split(", ")) == set(full.evidence.studies)


def test_a_row_equals_a_fit_of_its_studies_alone(spec, register_dir, by_year):
    row = by_year.table[by_year.table["year"] == 2021].iloc[0]
    studies = row["study_ids"].replace(" ", "")
    alone = fit_spec(spec.with_evidence(evidence_set=f"studies:{studies}"), load_register(register_dir))
    assert len(alone.evidence.studies) == row["studies"] == 6  # Dilogo, Lanzoni, Shi, Zhu (2021); Zheng, Matthay
    d = alone.decisions
    assert abs(row["prob_benefit"] - d.prob_benefit.prob) <= 4 * math.hypot(row["prob_benefit_mcse"], d.prob_benefit.mcse)
    assert abs(row["effect_median"] - d.pooled_effect.median) <= 4 * math.hypot(row["effect_median_mcse"],
                                                                               d.pooled_effect.mcse_median)
    # and it differs from the full fit (the masking did something)
    full = by_year.table.iloc[-1]
    assert abs(row["prob_benefit"] - full["prob_benefit"]) > 8 * math.hypot(row["prob_benefit_mcse"],
                                                                           full["prob_benefit_mcse"])


# -- update ------------------------------------------------------------------------------------

NEW_TRIAL = "study,events_treated,n_treated,events_control,n_control,label,year\nnewtrial,10,60,18,60,New trial,2026\n"


def test_update_equals_a_fit_of_the_register_with_the_trial_written_in(tmp_path, spec, register_dir):
    path = tmp_path / "new_trial.csv"
    path.write_text(NEW_TRIAL)
    register = load_register(register_dir)
    before_fingerprint = register.fingerprint()
    update = update_analysis(spec, register, path)
    assert register.fingerprint() == before_fingerprint  # the register itself is untouched
    # the same trial written into a copy of the register's files by hand
    folder = write_register(tmp_path / "by_hand", reference_years())
    with open(folder / "studies.csv", "a", encoding="utf-8") as f:
        f.write("newtrial,New trial,rct,randomised,,,,,,120,published,by hand,primary,\n")
    with open(folder / "arms.csv", "a", encoding="utf-8") as f:
        f.write("newtrial,cells,cells,cells,msc_unspecified,,60,,by hand,primary,\n"
                "newtrial,control,control,control,none,not_stated,60,,by hand,primary,\n")
    with open(folder / "mortality.csv", "a", encoding="utf-8") as f:
        f.write("newtrial,cells,,as reported,10,,,by hand,primary,\nnewtrial,control,,as reported,18,,,by hand,primary,\n")
    by_hand = fit_spec(spec, load_register(folder)).decisions.headline()
    before = fit_spec(spec, register).decisions.headline()
    after_row, before_row = update.table.set_index("fit").loc["after"], update.table.set_index("fit").loc["before"]
    for key in by_hand:
        assert after_row[key] == by_hand[key], key
        assert before_row[key] == before[key], key
    assert after_row["studies"] == before_row["studies"] + 1
    assert update.shift["prob_benefit_change"] == pytest.approx(by_hand["prob_benefit"] - before["prob_benefit"])
    # the trial's own odds ratio and Wald interval, by hand: (10/50) / (18/42)
    log_or, se = math.log(10 * 42 / (50 * 18)), math.sqrt(1 / 10 + 1 / 50 + 1 / 18 + 1 / 42)
    own = update.new_trials.iloc[0]
    assert own["estimate"] == pytest.approx(math.exp(log_or))
    assert own["lower"] == pytest.approx(math.exp(log_or - 1.959964 * se), rel=1e-6)
    assert own["upper"] == pytest.approx(math.exp(log_or + 1.959964 * se), rel=1e-6)
    # the year is kept for a later cumulative analysis
    assert publication_years(with_added_trials(register, path))["newtrial"] == 2026


def test_a_zero_cell_gets_the_half_correction(tmp_path):
    from bayes_msc.analyses.update import own_estimate

    path = tmp_path / "t.csv"
    path.write_text("study,events_treated,n_treated,events_control,n_control\nz,0,20,3,20\n")
    trial = read_new_trials(path)[0][0]
    got = own_estimate(trial, bayes_msc.load_spec("mortality").outcome_type.measure)
    assert got["estimate"] == pytest.approx((0.5 * 17.5) / (20.5 * 3.5))
    assert "0.5 added" in got["how"]


def test_update_of_an_estimates_file_equals_the_file_with_the_row(tmp_path):
    rows = "study,estimate,se\na,-0.4,0.3\nb,-0.1,0.25\nc,-0.6,0.4\n"
    (tmp_path / "est.csv").write_text(rows)
    (tmp_path / "new.csv").write_text("study,estimate,se\nd,-0.2,0.2\n")
    (tmp_path / "all.csv").write_text(rows + "d,-0.2,0.2\n")
    spec = bayes_msc.resolve_spec("normal_normal", data=str(tmp_path / "est.csv"), measure="log_ratio",
                                  benefit_direction="decrease", chains=2, draws=500, tune=500, seed=3)
    update = update_analysis(spec, str(tmp_path / "est.csv"), tmp_path / "new.csv")
    whole = fit_spec(spec, bayes_msc.api.load_data(spec, str(tmp_path / "all.csv"))).decisions.headline()
    after = update.table.set_index("fit").loc["after"]
    for key in whole:
        assert after[key] == whole[key], key
    own = update.new_trials.iloc[0]  # a log ratio is stated as a log ratio: the row as given, +- 1.96 SE
    assert (own["estimate"], own["lower"], own["upper"]) == pytest.approx((-0.2, -0.2 - 1.959964 * 0.2,
                                                                          -0.2 + 1.959964 * 0.2), rel=1e-6)


BAD = [
    ("study,events_treated,n_treated,events_control\nx,1,10,2\n", r"field 'n_control': required column is missing"),
    ("study,events_treated,n_treated,events_control,n_control,colour\nx,1,10,2,10,red\n", r"field 'colour': unknown column"),
    ("study,events_treated,n_treated,events_control,n_control\nx,11,10,2,10\n",
     r"row 1, field 'events_treated': 11 events exceed n_treated = 10"),
    ("study,events_treated,n_treated,events_control,n_control\nx,0,0,2,10\n", r"row 1, field 'n_treated': an arm needs"),
    ("study,events_treated,n_treated,events_control,n_control\nx,-1,10,2,10\n", r"row 1, field 'events_treated': negative"),
    ("study,events_treated,n_treated,events_control,n_control\nx,1.5,10,2,10\n",
     r"row 1, field 'events_treated': '1.5' is not a whole number"),
    ("study,events_treated,n_treated,events_control,n_control\nx,1,10,2,\n", r"row 1, field 'n_control': required value"),
    ("study,events_treated,n_treated,events_control,n_control\nbowdish2023,1,10,2,10\n",
     r"row 1, field 'study': study 'bowdish2023' is already in the register"),
    ("study,events_treated,n_treated,events_control,n_control\nx,1,10,2,10\nx,1,10,2,10\n",
     r"row 2, field 'study': duplicate study 'x' \(also row 1\)"),
    ("study,events_treated,n_treated,events_control,n_control\n<b>x</b>,1,10,2,10\n",
     r"row 1, field 'study': identifier '<b>x</b>' is not allowed"),
    ("study,events_treated,n_treated,events_control,n_control,estimate,se\nx,1,10,2,10,0.1,0.2\n", "not both"),
    ("study,events_treated,n_treated,events_control,n_control\n", "no rows"),
    ("study,events_treated,n_treated,events_control,n_control,quality\nx,1,10,2,10,great\n",
     r"row 1, field 'quality': 'great' is not one of"),
    ("study,events_treated,n_treated,events_control,n_control,year\nx,1,10,2,10,99\n",
     r"row 1, field 'year': 99 is not a publication year"),
    ("study,estimate,se\nx,1,0\n", r"row 1, field 'se': must be greater than 0"),
    ("study,estimate,se\nx,abc,1\n", r"row 1, field 'estimate': 'abc' is not a number"),
]


@pytest.mark.parametrize("text, problem", BAD)
def test_bad_new_trials_are_refused_with_file_row_and_field(tmp_path, text, problem):
    path = tmp_path / "new_trial.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=problem) as caught:
        with_added_trials(load_register(), path)
    assert str(path) in str(caught.value)


def test_missing_file_and_a_trial_that_would_not_enter_are_refused_before_any_fit(tmp_path, spec, monkeypatch):
    with pytest.raises(InputError, match="new-trials file not found"):
        with_added_trials(load_register(), tmp_path / "none.csv")
    path = tmp_path / "mapc.csv"
    path.write_text("study,events_treated,n_treated,events_control,n_control,product_class\nm,1,10,2,10,mapc\n")
    import bayes_msc.api as api

    monkeypatch.setattr(api, "fit_spec", lambda *a, **k: pytest.fail("fitted before refusing"))
    with pytest.raises(InputError, match=r"mapc.csv, row 1, field 'study': new trial 'm' would not enter .*product class"):
        update_analysis(spec, None, path)


# -- figure, section and command line --------------------------------------------------------------


def synthetic_table() -> pd.DataFrame:
    table = pd.DataFrame({
        "step": [2014, 2019, 2021], "year": [2014, 2019, 2021], "studies": [1, 2, 7],
        "added": ["<script>alert(1)</script>", "B", "C"], "effect_median": [0.6, 1.4, 0.45],
        "effect_lower": [0.07, 0.4, 0.2], "effect_upper": [5.0, 5.2, 0.95], "effect_median_mcse": [0.01] * 3,
        "prob_benefit": [0.681, 0.268, 0.979], "prob_benefit_mcse": [0.005] * 3, "prob_meaningful": [0.6, 0.16, 0.93],
        "tau_median": [0.3, 0.3, 0.5], "divergences": [3, 0, 0], "rhat_max": [1.02, 1.0, 1.0],
        "ess_bulk_min": [300.0, 3000.0, 2000.0], "ess_tail_min": [350.0, 3000.0, 2000.0],
        "diagnostics_passed": [False, True, True], "diagnostics_failed": ["R-hat, divergences", "", ""]})
    table.attrs["words"] = {"effect": "pooled OR", "benefit": "P(OR < 1)", "meaningful": "P(OR < 0.8)",
                            "digits": ".2f", "log_scale": True, "null": 1.0, "meaningful_threshold": 0.8}
    return table


def test_figure_has_a_row_per_step_and_flags_a_failed_fit():
    from bayes_msc.report.figures_cumulative import cumulative_figure

    fig = cumulative_figure(synthetic_table())
    ax, right = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0].startswith("2014") and "diagnostics FAIL" in labels[0] and "FAIL" not in labels[1]
    assert [t.get_text() for t in right.texts] == ["0.681", "0.268", "0.979"]
    newest = cumulative_figure(synthetic_table(), sort="newest-first")
    assert newest.axes[0].get_yticklabels()[0].get_text().startswith("2021")
    with pytest.raises(InputError, match="sort must be one of"):
        cumulative_figure(synthetic_table(), sort="effect")
    with pytest.raises(InputError, match="not a cumulative table"):
        cumulative_figure(pd.DataFrame({"x": [1]}))


def test_section_escapes_what_comes_from_data():
    from types import SimpleNamespace

    from bayes_msc.report.figures_cumulative import CUMULATIVE_SECTION

    table = synthetic_table()
    cumulative = SimpleNamespace(table=table, words=table.attrs["words"], by="year", statement="s <i>x</i>")
    html = CUMULATIVE_SECTION.build(SimpleNamespace(cumulative=cumulative))
    assert "<script>alert" not in html and "&lt;script&gt;" in html and "FAIL: R-hat, divergences" in html
    assert CUMULATIVE_SECTION.build(SimpleNamespace()) is None


def test_command_line_refuses_in_one_line(tmp_path, capsys):
    from bayes_msc.cli import main

    assert main(["cumulative", "mortality", "--data", str(write_register(tmp_path / "none", {}))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no publication year for 10 included studies" in err
    (tmp_path / "bad.csv").write_text("study,estimate\nx,1\n")
    assert main(["update", "mortality", "--add", str(tmp_path / "bad.csv")]) == 2
    assert "field 'se': required column is missing" in capsys.readouterr().err


def test_command_line_writes_the_table_and_the_figure(tmp_path, capsys, register_dir):
    import json

    from bayes_msc.cli import main

    out = tmp_path / "cumulative"
    assert main(["cumulative", "mortality", "--data", str(register_dir), "--chains", "2", "--draws", "200",
                 "--tune", "200", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((out / "cumulative.json").read_text())
    assert printed["table"] == saved["table"] and saved["by"] == "year" and len(saved["table"]) >= 4
    svg = (out / "cumulative.svg").read_text()
    assert svg.startswith("<?xml") and "<svg" in svg and "2014" in svg


def test_an_estimates_file_without_years_gives_no_year(tmp_path):
    """A file without a year column states no year for any study (none is guessed), so the
    cumulative analysis refuses it by name (test_a_study_without_a_year_is_refused_by_name)."""
    (tmp_path / "est.csv").write_text("study,estimate,se\na,1,1\nb,2,1\n")
    from bayes_msc.evidence.estimates import load_estimates

    years = publication_years(load_estimates(tmp_path / "est.csv"))
    assert list(years.index) == ["a", "b"] and years.isna().all()
