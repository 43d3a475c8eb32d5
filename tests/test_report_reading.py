"""The report leads with what a clinician reads: the answer, the forest plot, the study flow; the
register's row-by-row tables folded into an appendix; no empty section; every FAIL names the
checks that failed; a prior-data conflict says what it means and what to look at."""

from __future__ import annotations

import html
import re

import pandas as pd
import pytest

FIT = dict(chains=2, draws=300, tune=300, seed=11)


@pytest.fixture(scope="module")
def fitted():
    import bayes_msc

    return bayes_msc.fit("mortality", **FIT)


def failing_sensitivity(result):
    from bayes_msc.analyses.sensitivity import PriorSensitivity

    row = dict(effect_prior="default", heterogeneity_prior="halfnormal_0.5", effect_median=0.7, effect_lower=0.4,
               effect_upper=1.2, prob_benefit=0.9, prob_benefit_mcse=0.01, prob_meaningful=0.7, tau_median=0.4)
    table = pd.DataFrame([{**row, "diagnostics_passed": True, "diagnostics_failed": ""},
                          {**row, "effect_prior": "sceptical", "diagnostics_passed": False,
                           "diagnostics_failed": "R-hat, bulk ESS"}])
    psense = pd.DataFrame({"prior": [0.01, 0.09], "likelihood": [0.2, 0.12],
                           "diagnosis": ["-", "potential prior-data conflict"]}, index=["mu", "tau"])
    return PriorSensitivity(result.spec.outcome, result.outcome.measure, table, psense, "verdict text", 1.0, [0.1], 1)


@pytest.fixture(scope="module")
def page(fitted):
    from bayes_msc.report import render_report

    return render_report(fitted, sensitivity=failing_sensitivity(fitted))


def sections(page: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', page, flags=re.S))


def test_the_answer_then_the_forest_plot_then_the_study_flow(page):
    order = re.findall(r'<section id="([^"]+)">', page)
    assert order[:3] == ["answer", "forest", "flow"], order
    # the forest figure comes before any evidence table; those are folded in an appendix at the end
    assert page.index('id="forest"') < page.index('id="evidence"')
    assert order[-1] == "evidence"
    evidence = sections(page)["evidence"]
    assert re.search(r"<h2>[^<]*</h2>\s*<details>\s*<summary>", evidence)
    assert "<table" in evidence


def test_no_section_is_empty_and_those_not_run_say_how_to_run_them(page, fitted):
    for anchor, body in sections(page).items():
        text = re.sub(r"<[^>]+>", " ", re.sub(r"<h2>.*?</h2>", "", body, flags=re.S))
        assert len(text.split()) >= 5, anchor
    assert 'id="next-trial"' not in page  # not run: left out
    text = html.unescape(page)
    assert "report mortality --sensitivity adds it" in text  # leave-one-study-out not run: the command


def test_every_fail_names_its_checks_and_a_conflict_is_explained(page):
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    assert "FAIL: R-hat, bulk ESS outside thresholds" in text
    for match in re.finditer(r"\bFAIL\b", text):
        after = text[match.end():match.end() + 60]
        before = text[max(0, match.start() - 80):match.start()]
        # a FAIL is followed by the checks, or is a diagnostics-table badge next to its check's name
        assert after.startswith(":") or re.search(r"R-hat|ESS|divergences|maxdepth|E-BFMI", before + after), \
            before + "FAIL" + after
    assert "Potential prior-data conflict (tau)" in text
    assert "prior's tail" in text and "prior-sensitivity rows" in text


def test_terminal_sensitivity_and_comparison_say_which_check_failed(fitted):
    from bayes_msc.io.display import render_sensitivity

    text = render_sensitivity(failing_sensitivity(fitted))
    assert "FAIL: R-hat, bulk ESS outside thresholds" in text
    assert "Potential prior-data conflict (tau)" in text.replace("\n      ", " ")
    from types import SimpleNamespace

    from bayes_msc.io.display import render_comparison

    from dataclasses import replace

    checks = [replace(c, passed=c.name != "tail ESS") for c in fitted.diagnostics.checks]
    failing = SimpleNamespace(diagnostics=replace(fitted.diagnostics, checks=checks), dose_response=None)
    table = pd.DataFrame({"elpd": [-20.0], "se": [2.0], "elpd_diff": [0.0], "dse": [0.0], "weight": [1.0]},
                         index=["none"])
    comparison = SimpleNamespace(table=table, common_studies=["a"], left_out={}, results={"none": failing},
                                 pareto_k=pd.DataFrame({"none": [0.1]}, index=["a"]), statement="statement")
    assert "FAIL: tail ESS outside thresholds" in render_comparison(comparison)


def test_provenance_rows_that_fail_name_their_checks(capsys):
    from bayes_msc.cli import main

    assert main(["provenance", "mortality", "--chains", "2", "--draws", "50", "--tune", "50", "--seed", "3"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "FAIL" in line]
    assert rows and all(re.search(r"FAIL: (R-hat|bulk ESS|tail ESS)[^|]* outside thresholds", r) for r in rows), rows


def test_the_study_flows_provenance_table_names_the_checks_a_fail_is_about():
    import types

    import pandas as pd

    from bayes_msc.report.flow import provenance_markup

    table = pd.DataFrame([
        {"evidence": "primary numbers only", "studies": 9, "effect_median": 0.6, "effect_lower": 0.3,
         "effect_upper": 1.1, "prob_benefit": 0.93, "prob_benefit_mcse": 0.004, "prob_meaningful": 0.8,
         "prob_meaningful_mcse": 0.006, "diagnostics_passed": False, "diagnostics_failed": "R-hat, bulk ESS"},
        {"evidence": "+ secondary", "studies": 11, "effect_median": 0.6, "effect_lower": 0.3,
         "effect_upper": 1.1, "prob_benefit": 0.92, "prob_benefit_mcse": 0.004, "prob_meaningful": 0.8,
         "prob_meaningful_mcse": 0.006, "diagnostics_passed": True, "diagnostics_failed": ""},
    ])
    words = {"digits": ".2f", "effect": "OR", "benefit": "P(OR < 1)", "meaningful": "P(OR < 0.8)"}
    html = str(provenance_markup(types.SimpleNamespace(table=table, words=words, statement="Primary numbers carry it.")))
    assert "FAIL: R-hat, bulk ESS outside thresholds" in html and ">pass<" in html
