"""Every command of the CLI on tiny settings, in process (compiled models are shared with the
rest of the session): exit codes and the key output, not only "it did not crash".

A fit of 2 x 50 draws cannot reach a bulk ESS of 400, so it is a real fit whose diagnostics
fail: ``--strict`` must exit 3, and without it the exit is 0 with a loud warning.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import bayes_msc
from bayes_msc.cli import EXIT_DIAGNOSTICS_FAILED, EXIT_INPUT_ERROR, main

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--chains", "2", "--draws", "100", "--tune", "100", "--seed", "3"]
FAILING = ["--chains", "2", "--draws", "50", "--tune", "50", "--seed", "3"]  # ESS <= 100 < 400


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- --version ---------------------------------------------------------------------------------


def test_version_prints_the_package_version_and_exits_0(capsys):
    assert main(["--version"]) == 0  # main returns its exit status (argparse's exit is caught)
    assert capsys.readouterr().out.strip() == f"bayes_msc {bayes_msc.__version__}"


def test_version_from_the_command_line_matches_pyproject():
    result = subprocess.run([sys.executable, "-m", "bayes_msc", "--version"], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    printed = result.stdout.strip().removeprefix("bayes_msc ")
    # installed (as CI installs it): the declared version; a bare source tree says it is unknown
    assert printed == declared or printed == "0.0.0+unknown", printed


# -- light commands ------------------------------------------------------------------------------


def test_priors_marks_one_preset_per_role_the_spec_uses(capsys):
    code, out, _ = run(capsys, "priors", "mortality")
    assert code == 0
    spec = bayes_msc.load_spec("mortality")
    starred = re.findall(r"^\* (?!=)(\S+)\s+(\S+)", out, re.M)
    assert dict((role, name) for name, role in starred) == dict(spec.priors.names)
    assert "sceptical" in out and "turner2015_mortality" in out and out.rstrip().endswith("* = used by the spec")


def test_data_check_counts_the_register(capsys):
    code, out, _ = run(capsys, "data", "check")
    register = bayes_msc.load_register()
    assert code == 0
    assert f"valid ({len(register.studies)} studies, {len(register.arms)} arms" in out
    assert register.content_hash[:16] in out


def test_data_show_lists_every_study_of_the_analysis(capsys):
    code, out, _ = run(capsys, "data", "show", "--analysis", "oxygenation")
    assert code == 0
    register = bayes_msc.load_register()
    for label in register.studies["label"]:
        assert label in out, label
    assert "oxygenation (randomised evidence): what enters and why" in out
    assert "excluded" in out and "reason:" in out


def test_bad_option_values_exit_2_in_process(capsys):
    code, _, err = run(capsys, "sbc", "normal_normal", "--n", "5")
    assert code == EXIT_INPUT_ERROR and "--n" in err and "must be at least 10" in err
    code, _, err = run(capsys, "compare", "mortality", "--dose-response", "emax")
    assert code == EXIT_INPUT_ERROR and "drop --dose-response" in err


# -- fits ----------------------------------------------------------------------------------------


def test_fit_json_is_the_summary_and_strict_exits_3_when_diagnostics_fail(capsys, tmp_path):
    code, out, err = run(capsys, "fit", "mortality", *FAILING, "--json", "--out", str(tmp_path))
    assert code == 0  # not strict: the numbers are printed, with a loud warning
    summary = json.loads(out)
    assert summary == json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["diagnostics"]["passed"] is False
    failed = {c["name"] for c in summary["diagnostics"]["checks"] if not c["passed"]}
    assert "bulk ESS" in failed
    assert "WARNING: FAIL" in err and "bulk ESS" in err
    d = summary["decisions"]
    assert 0 < d["pooled_effect"]["lower"] < d["pooled_effect"]["median"] < d["pooled_effect"]["upper"]
    assert 0 <= d["prob_benefit"]["prob"] <= 1 and d["prob_benefit"]["mcse"] > 0

    code, out, err = run(capsys, "fit", "mortality", *FAILING, "--strict")
    assert code == EXIT_DIAGNOSTICS_FAILED == 3
    assert "WARNING: FAIL" in err
    assert "P(" in out  # the summary is still printed before the exit status says no


def test_strict_report_exits_3_and_still_writes_the_report(capsys, tmp_path):
    target = tmp_path / "r.html"
    code, out, err = run(capsys, "report", "mortality", *FAILING, "--strict", "--output", str(target))
    assert code == 3 and target.is_file() and str(target) in out
    assert "WARNING: FAIL" in err
    assert "FAIL" in target.read_text(encoding="utf-8")  # the report says so too


def test_influence_leaves_out_each_study_once(capsys):
    code, out, _ = run(capsys, "influence", "mortality", *TINY, "--json")
    assert code == 0
    influence = json.loads(out)
    spec = bayes_msc.load_spec("mortality")

    studies = spec.outcome_type.build_evidence(bayes_msc.load_register(), spec).studies
    assert [row["study_id"] for row in influence["table"]] == list(studies)
    assert influence["most_influential"] in studies
    for row in influence["table"]:
        assert row["change_prob_benefit"] == pytest.approx(row["prob_benefit"] - influence["full"]["prob_benefit"])
    code, out, _ = run(capsys, "influence", "mortality", *TINY)
    assert code == 0 and "Leave one study out" in out and "Pareto k" in out


@pytest.mark.slow  # 20-40 s: refits every prior combination / every form x study
def test_sensitivity_covers_every_prior_combination(capsys):
    code, out, _ = run(capsys, "sensitivity", "mortality", *TINY, "--json")
    assert code == 0
    sens = json.loads(out)
    combos = {(r["effect_prior"], r["heterogeneity_prior"], r["baseline_prior"]) for r in sens["table"]}
    # 3 effect x 3 heterogeneity presets, then the 2 other baseline presets (sparse arms)
    assert len(combos) == len(sens["table"]) == 11
    assert {"default", "sceptical", "enthusiastic"} == {e for e, _, _ in combos}
    assert {b for _, _, b in combos} == {"default_baseline", "baseline_sd5", "baseline_sd10"}
    low = min(r["prob_benefit"] for r in sens["table"])
    assert f"{low:.3f}" in sens["verdict"]
    assert {p["parameter"] for p in sens["psense"]} >= {"log_or", "tau"}


@pytest.mark.slow  # 20-40 s: refits every prior combination / every form x study
def test_compare_ranks_the_three_dose_response_forms(capsys):
    code, out, _ = run(capsys, "compare", "mortality", *TINY, "--json")
    assert code == 0
    comparison = json.loads(out)
    forms = [row["form"] for row in comparison["loo"]]
    assert sorted(forms) == ["emax", "loglinear", "none"]
    assert [row["rank"] for row in comparison["loo"]] == [0, 1, 2]
    assert comparison["loo"][0]["elpd_diff"] == 0.0
    assert all(row["elpd_diff"] <= 0 for row in comparison["loo"])
    assert math.isclose(sum(row["weight"] for row in comparison["loo"]), 1.0, rel_tol=1e-6)
    assert f"Best by LOO: {forms[0]}" in comparison["statement"]


def test_sbc_writes_its_result_and_the_exit_says_the_verdict(capsys, tmp_path):
    from bayes_msc.evidence.estimates import write_estimates

    data = write_estimates(tmp_path / "estimates.csv", [0.0] * 4, [0.6, 0.5, 0.9, 0.45])
    out_file = tmp_path / "nn.sbc.json"
    # --thin 2: the 2 x 100 draws leave the 100 rank draws SBC needs
    code, out, _ = run(capsys, "sbc", "normal_normal", "--data", str(data), "--n", "10", *TINY, "--thin", "2",
                       "--measure", "log_ratio", "--benefit-direction", "increase", "--out", str(out_file))
    saved = json.loads(out_file.read_text(encoding="utf-8"))
    assert saved["n"] == 10 and set(saved["parameters"]) == {"mu", "tau"}
    # 10 replicates are below the minimum a verdict needs (200): never PASS, FAIL only on a real failure
    assert not saved["passed"] and not saved["conclusive"]
    assert code == (3 if saved["failed"] else 0)
    assert out.startswith("FAIL" if saved["failed"] else "NO VERDICT") and str(out_file) in out
    assert not list(tmp_path.glob("*.partial.jsonl"))  # the journal is removed once the result is written
    for parameter in ("mu", "tau"):
        ranks = saved["ranks"][parameter]
        assert len(ranks) == 10 and all(0 <= r <= saved["n_draws"] for r in ranks)


def test_bench_help_lists_quick(capsys):
    assert main(["bench", "--help"]) == 0 and "--quick" in capsys.readouterr().out


@pytest.mark.slow  # ~10-20 s: one default-size fit and a 2-fit sweep, in process
def test_bench_children_measure_what_the_summary_reads(capsys):
    """`bench --quick` runs whole-process fits and PyMC's own sampler for minutes, so the test
    runs its nutpie children in process (compiled models shared with the session) and feeds
    their real output to the summary. The PyMC child is stood in for by the fit's numbers."""
    import io
    import time

    from bayes_msc.bench import child_main, summarise

    def child(*argv):
        assert child_main([*argv, "--started-at", repr(time.time())]) == 0
        (line,) = [l for l in capsys.readouterr().out.splitlines() if l.startswith("BENCH ")]
        return json.loads(line.removeprefix("BENCH "))

    fit = child("fit", "--seed", "2")
    for key in ("import", "compile", "sample", "postprocess", "whole", "peak_rss_mb"):
        assert fit[key] >= 0, key
    assert fit["min_bulk_ess"] > 400 and fit["divergences"] == 0  # the default spec is a good fit
    assert fit["ess_per_second"] == pytest.approx(fit["min_bulk_ess"] / fit["sample"])
    sweep = child("sweep", "--fits", "2")
    assert sweep["fits"] == 2 and sweep["later_fit_median"] > 0
    out = io.StringIO()
    summarise({"cold": [fit], "warm": [fit], "pymc": [fit], "numpyro": []}, sweep, [fit], out)
    text = out.getvalue()
    assert "medians [min-max] over 1 repeat(s)" in text
    assert re.search(r"warm fit <= 0.5 x cold fit\s+1.00\s+FAIL", text), text  # cold = warm here
