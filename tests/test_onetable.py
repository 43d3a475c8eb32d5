"""A user's own trials as one table (bayes_msc.evidence.onetable; the binary and continuous
analyses): the same numbers as the register path, and hostile files refused at their row and
column."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from bayes_msc.evidence.onetable import load_binary_trials, load_continuous_trials
from bayes_msc.io.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SAMPLER = {"seed": 31, "chains": 2, "draws": 150, "tune": 200}
BINARY_HEADER = ["study", "events_treated", "n_treated", "events_control", "n_control"]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bayes_msc", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=600)


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _read(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def register_exact_trials() -> list[dict]:
    """The embedded register's randomised trials with exact counts for one cell arm (of a product
    class the mortality spec admits) and one control arm, read from the CSV files with the csv
    module alone: the day in the 28-31 day window (the earliest), or the trial's only timepoint.
    In studies.csv order."""
    classes = set(tomllib.loads((ROOT / "models" / "mortality.toml").read_text())["evidence"]["product_classes"])
    arms = {(a["study_id"], a["arm_id"]): a for a in _read("arms.csv")}
    rows = _read("mortality.csv")
    trials = []
    for study in _read("studies.csv"):
        if study["allocation"] != "randomised" or study["status"] != "published":
            continue
        own = [r for r in rows if r["study_id"] == study["study_id"]]
        in_window = [r for r in own if r["day"] and 28 <= int(r["day"]) <= 31]
        if in_window:
            first = min(int(r["day"]) for r in in_window)
            own = [r for r in in_window if int(r["day"]) == first]
        elif len({(r["day"], r["timepoint"]) for r in own}) != 1:
            continue
        counts = {}
        for r in own:
            arm = arms[(r["study_id"], r["arms"])] if "+" not in r["arms"] else None
            if arm is None or (arm["role"] == "cells" and arm["product_class"] not in classes):
                continue
            if not r["deaths"]:
                counts = {}
                break
            counts.setdefault(arm["role"], []).append((int(r["deaths"]), int(arm["n"])))
        if len(counts.get("cells", [])) == 1 and len(counts.get("control", [])) == 1:
            (dt, nt), (dc, nc) = counts["cells"][0], counts["control"][0]
            trials.append({"study": study["study_id"], "label": study["label"], "events_treated": dt, "n_treated": nt,
                           "events_control": dc, "n_control": nc, "source": study["reference"]})
    return trials


def test_the_register_gives_the_trials_the_equivalence_rests_on():
    trials = {t["study"]: t for t in register_exact_trials()}
    # Bowdish 2023 Table 2: 42/112 vs 47/110 by day 30; Lanzoni 2021 at day 31 (not day 60)
    assert (trials["bowdish2023"]["events_treated"], trials["bowdish2023"]["n_control"]) == (42, 110)
    assert (trials["lanzoni2021"]["events_treated"], trials["lanzoni2021"]["events_control"]) == (1, 7)
    assert "shi2021" not in trials  # a bound, not an exact count
    assert len(trials) >= 8


def test_a_one_table_binary_fit_reproduces_the_register_fit_draw_for_draw(tmp_path):
    """Same trials, same order (studies.csv's), same seed: the same posterior, draw for draw."""
    from bayes_msc import fit

    trials = register_exact_trials()
    path = write_csv(tmp_path / "trials.csv", [*BINARY_HEADER, "label", "source"],
                     [[t[k] for k in (*BINARY_HEADER, "label", "source")] for t in trials])
    ids = ",".join(t["study"] for t in trials)
    register = fit("mortality", evidence=f"studies:{ids}", **SAMPLER)
    table = fit("binary", data=path, benefit_direction="decrease", **SAMPLER)
    assert register.evidence.studies == table.evidence.studies
    for name in ("log_or", "tau", "study_log_or", "baseline_logit", "log_or_new", "study_effect_z"):
        np.testing.assert_array_equal(table.posterior[name].values, register.posterior[name].values, err_msg=name)
    for key in ("pooled_effect", "predictive_effect", "tau"):
        assert getattr(table.decisions, key) == getattr(register.decisions, key), key
    for key in ("prob_benefit", "prob_meaningful", "predictive_prob_benefit"):
        assert getattr(table.decisions, key) == getattr(register.decisions, key), key
    # and the direction is the user's: with "increase", P(benefit) is the other tail
    up = fit("binary", data=path, benefit_direction="increase", clinically_meaningful=1.25, **SAMPLER)
    np.testing.assert_array_equal(up.posterior["log_or"].values, register.posterior["log_or"].values)
    assert up.decisions.prob_benefit.prob == pytest.approx(1 - register.decisions.prob_benefit.prob, abs=1e-12)


def test_a_bound_enters_as_the_registers_bounded_report(tmp_path):
    """Shi 2021's cell arm (at most 1 death of 65, a bound from the SAE count) as a range."""
    path = write_csv(tmp_path / "t.csv", [*BINARY_HEADER, "events_treated_min", "events_treated_max"],
                     [["shi2021", "", 65, 0, 35, 0, 1], ["zheng2014", 1, 6, 2, 6, "", ""]])
    trials = load_binary_trials(path)
    from bayes_msc.api import resolve_spec

    spec = resolve_spec("binary", data=trials, benefit_direction="decrease")
    evidence = spec.outcome_type.build_evidence(trials, spec)
    (report,) = evidence.partial
    assert report.kind == "bounded" and report.study_id == "shi2021"
    assert [c.counts[0].deaths for c in report.configurations] == [0, 1]
    assert {c.counts[0].n for c in report.configurations} == {65}
    assert list(evidence.exact["deaths"]) == [0, 1, 2]
    assert list(evidence.inclusion["reason"]) == ["", ""]  # one count per arm: no timepoint was chosen


def test_columns_map_the_files_names_and_other_columns_are_covariates(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["trial", "dead_msc", "N1", "dead_ctl", "N0", "year", "region", "dose"],
                     [["Smith 2020", 3, 20, 6, 21, 2020, "EU", 1.0], ["Lee 2022", 0, 10, 2, 10, 2022, "", 2.0]])
    trials = load_binary_trials(path, columns={"study": "trial", "events_treated": "dead_msc", "n_treated": "N1",
                                               "events_control": "dead_ctl", "n_control": "N0"}, event_name="death")
    assert list(trials.studies["study_id"]) == ["Smith_2020", "Lee_2022"]
    assert list(trials.studies["label"]) == ["Smith 2020", "Lee 2022"]
    assert list(trials.mortality["deaths"]) == [3, 6, 0, 2]
    assert list(trials.doses["dose_per_kg"]) == [1.0, 2.0]
    cov = trials.covariates  # the register's covariates table
    assert set(zip(cov["study_id"], cov["covariate"], cov["value"])) == {
        ("Smith_2020", "region", "EU"), ("Smith_2020", "publication_year", "2020"),
        ("Lee_2022", "publication_year", "2022")}
    assert trials.covariate_kinds == {"region": "categorical", "publication_year": "numeric"}
    assert set(cov.loc[cov["study_id"] == "Lee_2022", "source"]) == {"the data file t.csv, row 2"}
    assert trials.event_name == "death"
    with pytest.raises(InputError, match="not a column the analysis reads"):
        load_binary_trials(path, columns={"deaths": "dead_msc"})
    with pytest.raises(InputError, match="would be read as events_treated and events_control"):
        load_binary_trials(path, columns={"study": "trial", "events_treated": "dead_ctl", "events_control": "dead_ctl"})
    swapped = write_csv(tmp_path / "s.csv", BINARY_HEADER, [["a", 1, 10, 4, 12]])
    with pytest.raises(InputError, match="'events_control' would be read as events_treated and events_control"):
        load_binary_trials(swapped, columns={"events_treated": "events_control"})
    both = load_binary_trials(swapped, columns={"events_treated": "events_control", "events_control": "events_treated",
                                                "n_treated": "n_control", "n_control": "n_treated"})
    assert list(both.mortality["deaths"]) == [4, 1] and list(both.arms["n"]) == [12, 10]


HOSTILE_BINARY = [
    # the second data row, and what the message names
    (["a", 5, 4, 1, 4], ("'events_treated'", "exceed n = 4")),
    (["a", -1, 4, 1, 4], ("'events_treated'", "negative")),
    (["a", "two", 4, 1, 4], ("'events_treated'", "not a whole number")),
    (["a", 1, 0, 1, 4], ("'n_treated'", "greater than 0")),
    (["a", 1, 4, "", 4], ("'events_control'", "no count")),
    (["a", 1, 4, 1, ""], ("'n_control'", "required value is empty")),
    (["", 1, 4, 1, 4], ("'study'", "required value is empty")),
    (["a", 1.5, 4, 1, 4], ("'events_treated'", "whole number")),
    (["a", "nan", 4, 1, 4], ("'events_treated'", "finite")),
]


@pytest.mark.parametrize("row, fragments", HOSTILE_BINARY)
def test_hostile_binary_cells_are_refused_at_their_row_and_column(tmp_path, row, fragments):
    path = write_csv(tmp_path / "t.csv", BINARY_HEADER, [["ok", 1, 10, 2, 10], row])
    with pytest.raises(InputError) as caught:
        load_binary_trials(path)
    message = str(caught.value)
    assert "t.csv, row 2, field " in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_hostile_binary_files_are_refused_naming_the_problem(tmp_path):
    def refused(header, rows, *fragments, **options):
        path = write_csv(tmp_path / "t.csv", header, rows)
        with pytest.raises(InputError) as caught:
            load_binary_trials(path, **options)
        for fragment in fragments:
            assert fragment in str(caught.value), (fragment, str(caught.value))

    refused(["study", "events_treated", "n_treated", "events_control"], [["a", 1, 4, 1]],
            "field 'n_control'", "required column is missing")
    refused(BINARY_HEADER, [["a", 1, 4, 1, 4], ["a", 2, 4, 1, 4]], "row 2", "'study'", "duplicate study 'a' (also row 1)")
    refused(BINARY_HEADER, [["a b", 1, 4, 1, 4], ["a_b", 2, 4, 1, 4]], "row 2", "'study'", "as row 1 does")
    refused([*BINARY_HEADER, "events_treated_min", "events_treated_max"], [["a", "", 4, 1, 4, 3, 2]],
            "row 1", "'events_treated_min'", "exceeds")
    refused([*BINARY_HEADER, "events_treated_min", "events_treated_max"], [["a", "", 4, 1, 4, 1, 5]],
            "row 1", "'events_treated_max'", "exceed n = 4")
    refused([*BINARY_HEADER, "events_treated_min", "events_treated_max"], [["a", 1, 4, 1, 4, 0, 2]],
            "row 1", "'events_treated'", "not both")
    refused([*BINARY_HEADER, "events_treated_min"], [["a", "", 4, 1, 4, 0]], "row 1", "'events_treated_max'", "both bounds")
    refused([*BINARY_HEADER, "quality"], [["a", 1, 4, 1, 4, "great"]], "row 1", "'quality'", "not one of")
    refused([*BINARY_HEADER, "benefit_direction"], [["a", 1, 4, 1, 4, "decrease"], ["b", 1, 4, 1, 4, "increase"]],
            "row 2", "'benefit_direction'", "one direction")
    refused([*BINARY_HEADER, "dose"], [["a", 1, 4, 1, 4, -1]], "row 1", "'dose'", "negative")
    refused([*BINARY_HEADER, "year"], [["a", 1, 4, 1, 4, 20]], "row 1", "'year'", "publication year")
    refused(BINARY_HEADER, [], "no rows")
    refused(["trial", *BINARY_HEADER[1:]], [["a", 1, 4, 1, 4]], "'N9'", "mapped from n_control",
            columns={"study": "trial", "n_control": "N9"})
    refused([*BINARY_HEADER, ""], [["a", 1, 4, 1, 4, ""]], "column 6 of the header has no name")
    (tmp_path / "bad.csv").write_bytes(b"study,events_treated\n\xff\xfe,1\n")
    with pytest.raises(InputError, match="not UTF-8"):
        load_binary_trials(tmp_path / "bad.csv")


def test_the_command_line_refuses_hostile_input_in_one_line(tmp_path, capsys):
    """Exit 2, one line naming file, row and column, no traceback, and nothing sampled."""
    bad = write_csv(tmp_path / "trials.csv", BINARY_HEADER, [["a", 1, 10, 2, 10], ["b", 12, 10, 2, 10]])
    good = write_csv(tmp_path / "good.csv", BINARY_HEADER, [["a", 1, 10, 2, 10]])
    cases = [
        (("fit", "binary", "--data", str(bad), "--benefit-direction", "decrease"),
         ("trials.csv, row 2, field 'events_treated'", "exceed n = 10")),
        (("fit", "binary", "--benefit-direction", "decrease"), ("no embedded data", "--data")),
        (("fit", "binary", "--data", str(good)), ("cannot guess which direction", "--benefit-direction")),
        (("fit", "binary", "--data", str(good), "--benefit-direction", "increase"),
         ("clinically meaningful odds ratio 0.8", "above 1")),
        (("fit", "binary", "--data", str(good), "--benefit-direction", "decrease", "--columns", "n_treated"),
         ("--columns", "NAME=COLUMN")),
        (("fit", "binary", "--data", str(good), "--benefit-direction", "decrease", "--columns", "n_treated=N1"),
         ("'N1'", "mapped from n_treated")),
        (("fit", "mortality", "--columns", "n_treated=N1"), ("reads no one-table file", "--columns")),
        (("fit", "continuous", "--data", str(good), "--benefit-direction", "increase"),
         ("good.csv", "the treated arm needs mean_treated")),
    ]
    from bayes_msc.cli import main

    for number, (args, fragments) in enumerate(cases):
        if number < 2:  # a real process: exit status and stderr as a shell sees them
            result = run_cli(*args)
            code, stderr = result.returncode, result.stderr
        else:
            capsys.readouterr()
            code, stderr = main(list(args)), capsys.readouterr().err
        assert code == 2, (args, stderr)
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in stderr, stderr
        for fragment in fragments:
            assert fragment in lines[0], (fragment, lines[0])


def test_quick_start_three_commands(tmp_path):
    """The README's quick start for a user's own four-column table, run as written (taken from
    the README, with a shorter sampler): a fit, a report and a forest-plot SVG."""
    import json
    import re
    import shutil
    import xml.etree.ElementTree as ET

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S) if "fit binary --data trials.csv" in b)
    commands = [line.split()[3:] for line in block.splitlines() if line.startswith("python -m bayes_msc ")]
    assert [c[0] for c in commands] == ["fit", "report", "figure"]
    shutil.copy(ROOT / "docs" / "examples" / "trials.csv", tmp_path / "trials.csv")
    short = ["--draws", "150", "--chains", "2", "--seed", "5"]
    fitted = run_cli(*commands[0], *short, "--json", cwd=tmp_path)
    assert fitted.returncode == 0, fitted.stderr
    summary = json.loads(fitted.stdout)
    assert summary["decisions"]["benefit_direction"] == "decrease"
    assert summary["decisions"]["measure"] == "odds ratio"
    for command in commands[1:]:
        done = run_cli(*command, *short, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<svg" in html and "Bowdish 2023" in html and "http://" not in html.replace("http://www.w3.org", "")
    svg = ET.parse(tmp_path / "forest.svg").getroot()
    shown = " ".join(t for t in svg.itertext())
    for label in ("Lanzoni 2021", "Bowdish 2023", "Zhu 2021"):
        assert label in shown
    assert "42/112" in shown and "47/110" in shown  # events/n per arm beside the rows


def test_the_example_file_holds_the_registers_numbers():
    """docs/examples/trials.csv is real data: each row equals the register's counts."""
    with (ROOT / "docs" / "examples" / "trials.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    register = {t["study"]: t for t in register_exact_trials()}
    assert len(rows) == len(register)
    for row in rows:
        expected = register[row["study"]]
        assert [int(row[k]) for k in BINARY_HEADER[1:]] == [expected[k] for k in BINARY_HEADER[1:]], row["study"]
        assert row["source"].strip()


# -- continuous -----------------------------------------------------------------------------

CONTINUOUS_HEADER = ["study", "mean_treated", "sd_treated", "n_treated", "mean_control", "sd_control", "n_control"]
# Made-up summaries: the test is of the arithmetic, not of a trial's result.
CONTINUOUS_ROWS = [["t1", 12.0, 8.0, 30, 5.0, 9.0, 28], ["t2", 3.5, 4.0, 15, 1.0, 5.5, 16],
                   ["t3", 20.0, 15.0, 60, 14.0, 14.0, 61], ["t4", -2.0, 6.0, 12, -1.0, 7.0, 11]]
PRIORS = ["effect=normal(mu=0,sigma=20)", "heterogeneity=halfnormal(sigma=10)"]


def test_a_continuous_fit_equals_normal_normal_on_the_closed_form_differences(tmp_path):
    from bayes_msc import fit

    data = write_csv(tmp_path / "arms.csv", CONTINUOUS_HEADER, CONTINUOUS_ROWS)
    estimates = [[s, mt - mc, math.hypot(st / math.sqrt(nt), sc / math.sqrt(nc))]
                 for s, mt, st, nt, mc, sc, nc in CONTINUOUS_ROWS]
    est = write_csv(tmp_path / "estimates.csv", ["study", "estimate", "se"], [[s, repr(e), repr(se)] for s, e, se in estimates])
    options = dict(unit="points", benefit_direction="increase", priors=PRIORS, **SAMPLER)
    table = fit("continuous", data=data, **options)
    reference = fit("normal_normal", data=est, measure="mean_difference", **options)
    np.testing.assert_array_equal(table.evidence.terms["estimate"], [e for _, e, _ in estimates])
    np.testing.assert_array_equal(table.evidence.terms["se"], [se for _, _, se in estimates])
    for name in ("mu", "tau", "study_effect", "mu_new"):
        np.testing.assert_array_equal(table.posterior[name].values, reference.posterior[name].values, err_msg=name)
    assert table.decisions.prob_benefit == reference.decisions.prob_benefit
    assert table.decisions.unit == "points"


def test_a_median_and_iqr_become_a_mean_and_sd_by_wan_2014_or_luo_2018(tmp_path):
    from bayes_msc.evidence.onetable import continuous_trials_evidence

    path = write_csv(tmp_path / "t.csv", ["study", "median_treated", "q1_treated", "q3_treated", "n_treated",
                                          "mean_control", "sd_control", "n_control"],
                     [["a", 10.0, 4.0, 19.0, 25, 6.0, 7.0, 24]])
    trials = load_continuous_trials(path)
    eta = 2 * stats.norm.ppf((0.75 * 25 - 0.125) / (25 + 0.25))  # Wan 2014, formula (16)
    se_treated = (19.0 - 4.0) / eta / math.sqrt(25)
    se = math.sqrt(se_treated**2 + 7.0**2 / 24)
    wan = continuous_trials_evidence(trials, median_iqr_method="wan2014").terms.iloc[0]
    assert wan["estimate"] == pytest.approx((4.0 + 10.0 + 19.0) / 3 - 6.0, rel=1e-12)
    assert wan["se"] == pytest.approx(se, rel=1e-12)
    weight = 0.7 + 0.39 / 25  # Luo 2018 scenario S2
    luo = continuous_trials_evidence(trials, median_iqr_method="luo2018").terms.iloc[0]
    assert luo["estimate"] == pytest.approx(weight * (4.0 + 19.0) / 2 + (1 - weight) * 10.0 - 6.0, rel=1e-12)


def test_hostile_continuous_files_are_refused_at_their_row_and_column(tmp_path):
    def refused(header, rows, *fragments):
        path = write_csv(tmp_path / "c.csv", header, rows)
        with pytest.raises(InputError) as caught:
            load_continuous_trials(path)
        for fragment in fragments:
            assert fragment in str(caught.value), (fragment, str(caught.value))

    ok = ["ok", 1.0, 2.0, 10, 0.0, 2.0, 10]
    refused(CONTINUOUS_HEADER, [ok, ["b", 1.0, "", 10, 0.0, 2.0, 10]], "c.csv, row 2, field 'sd_treated'", "needs its SD")
    refused(CONTINUOUS_HEADER, [ok, ["b", 1.0, 0, 10, 0.0, 2.0, 10]], "row 2", "'sd_treated'", "greater than 0")
    refused(CONTINUOUS_HEADER, [ok, ["b", 1.0, 2.0, 1, 0.0, 2.0, 10]], "row 2", "'n_treated'", "at least 2")
    refused(CONTINUOUS_HEADER, [ok, ["b", "x", 2.0, 10, 0.0, 2.0, 10]], "row 2", "'mean_treated'", "not a number")
    refused(CONTINUOUS_HEADER, [ok, ["b", "", "", 10, 0.0, 2.0, 10]], "row 2", "'mean_treated'", "no summary")
    refused(["study", "median_treated", "q1_treated", "q3_treated", "n_treated", "mean_control", "sd_control", "n_control"],
            [["b", 5.0, 6.0, 9.0, 10, 0.0, 2.0, 10]], "row 1", "'median_treated'", "not between")
    refused(["study", "median_treated", "q1_treated", "q3_treated", "n_treated", "mean_control", "sd_control", "n_control"],
            [["b", 5.0, 6.0, "", 10, 0.0, 2.0, 10]], "row 1", "'q3_treated'", "both quartiles")
    refused(["study", "mean_treated", "n_treated", "mean_control", "sd_control", "n_control"], [["b", 1, 10, 0, 2, 10]],
            "row 1", "'sd_treated'", "needs its SD")


def test_a_continuous_fit_refuses_what_it_cannot_guess(tmp_path):
    from bayes_msc import fit

    data = write_csv(tmp_path / "arms.csv", CONTINUOUS_HEADER, CONTINUOUS_ROWS)
    with pytest.raises(InputError, match="unit"):
        fit("continuous", data=data, benefit_direction="increase", **SAMPLER)
    with pytest.raises(InputError, match="no default effect prior"):
        fit("continuous", data=data, unit="points", benefit_direction="increase", **SAMPLER)
    with pytest.raises(InputError, match="which direction"):
        fit("continuous", data=data, unit="points", priors=PRIORS, **SAMPLER)
    with pytest.raises(InputError, match="no embedded data"):
        fit("continuous", unit="points", benefit_direction="increase", priors=PRIORS, **SAMPLER)


def test_the_command_line_reads_a_median_and_iqr_by_the_method_it_is_given(tmp_path, capsys):
    """``--median-iqr-method luo2018`` reaches the derivation (and is refused where nothing reads it)."""
    import json

    from bayes_msc.cli import main

    path = write_csv(tmp_path / "t.csv", ["study", "median_treated", "q1_treated", "q3_treated", "n_treated",
                                          "mean_control", "sd_control", "n_control"],
                     [["a", 10.0, 4.0, 19.0, 25, 6.0, 7.0, 24], ["b", 2.0, 0.0, 5.0, 12, 1.0, 3.0, 12]])
    args = ["fit", "continuous", "--data", str(path), "--unit", "points", "--benefit-direction", "increase",
            "--prior", PRIORS[0], "--prior", PRIORS[1], "--chains", "1", "--draws", "50", "--tune", "50", "--json"]
    capsys.readouterr()
    assert main([*args, "--median-iqr-method", "luo2018"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["decisions"]["unit"] == "points"
    weight = 0.7 + 0.39 / 25  # Luo 2018 scenario S2; Wan 2014 would give 11 - 6 = +5
    luo = weight * (4.0 + 19.0) / 2 + (1 - weight) * 10.0 - 6.0
    assert summary["inclusion"][0]["detail"].startswith(f"{luo:+.4g} (SE")
    assert main(["fit", "mortality", "--median-iqr-method", "luo2018"]) == 2
    assert "reads no median and IQR" in capsys.readouterr().err


def test_the_binary_outcome_stays_binary_on_every_scale_of_the_mortality_family():
    from bayes_msc.api import resolve_spec

    spec = resolve_spec("binary", likelihood="arm", dose_response="loglinear", benefit_direction="increase")
    outcome = spec.outcome_type
    assert (outcome.name, outcome.likelihood, outcome.dose_response) == ("binary", "arm", "loglinear")
    assert outcome.record.benefit is None and "benefit_direction" in outcome.must_state
    assert outcome.benefit_direction(spec) == "increase"


def test_a_saved_binary_result_loads_back_against_its_table(tmp_path):
    import bayes_msc

    example = ROOT / "docs" / "examples" / "trials.csv"
    result = bayes_msc.fit("binary", data=example, benefit_direction="decrease", seed=2, chains=1, draws=60, tune=60)
    result.save(tmp_path / "out")
    back = bayes_msc.load_result(tmp_path / "out", data=example)
    assert back.prob_benefit() == result.prob_benefit()
    with pytest.raises(InputError, match="no embedded data"):
        bayes_msc.load_result(tmp_path / "out")
