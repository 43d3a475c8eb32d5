"""The oxygenation HTML report, rendered in headless Chromium.

The register copy used here has ``<script>alert(1)</script>`` in the label of Monsel 2022, a
study that *enters* the oxygenation analysis, so the label reaches every part of the page:
the register table, the derived-numbers table, the forest plot and the predictive check (SVG
text), the answer. The browser helpers and the ``chromium`` fixture come from
``test_report.py``.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import test_report
from test_report import INJECTED, ROOT, DomScan, chromium, network_urls, page_requests, run_chromium  # noqa: F401

INJECTED_STUDY = "monsel2022"  # included in the oxygenation analysis
FIT = dict(chains=2, draws=300, tune=300, seed=11)


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def injected_register(relabelled_register) -> Path:
    """A copy of the embedded register with a script tag in Monsel 2022's label."""
    return relabelled_register(INJECTED_STUDY, f"Monsel 2022 {INJECTED}")


@pytest.fixture(scope="module")
def fitted(injected_register):
    import bayes_msc

    register = bayes_msc.load_register(injected_register)
    result = bayes_msc.fit("oxygenation", data=register, evidence="all", **FIT)  # with single-arm BC-U001
    assert INJECTED_STUDY in result.evidence.studies  # the label really reaches the analysis
    return result, register


@pytest.fixture(scope="module")
def report_file(fitted, tmp_path_factory) -> Path:
    from bayes_msc.report import write_report

    result, register = fitted
    return write_report(result, tmp_path_factory.mktemp("report") / "oxygenation.html", register=register)


@pytest.fixture(scope="module")
def report_html(report_file) -> str:
    return report_file.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def browser(chromium, report_file, tmp_path_factory) -> dict:
    """One screenshot and one DOM dump of the report, each with Chromium's net log."""
    tmp = tmp_path_factory.mktemp("chromium")
    shot = tmp / "shot.png"
    _, shot_log = run_chromium(chromium, tmp, report_file, f"--screenshot={shot}", "--window-size=1280,2000")
    dumped, dom_log = run_chromium(chromium, tmp, report_file, "--dump-dom")
    return {"shot": shot, "dom": dumped.stdout, "netlogs": [shot_log, dom_log]}


def section_html(page: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}">(.*?)</section>', page, re.S)
    assert match, f"no section {anchor!r}"
    return match.group(1)


def text_of(fragment: str) -> str:
    scan = DomScan()
    scan.feed(fragment)
    return re.sub(r"\s+", " ", " ".join(scan.text)).strip()


# -- in the browser ------------------------------------------------------------------------


def test_report_draws_makes_no_request_and_shows_the_label_as_text(browser):
    from PIL import Image

    # 1. it draws: the screenshot is neither blank nor a single colour
    image = np.asarray(Image.open(browser["shot"]).convert("RGB"), dtype=np.int16)
    assert image.shape[:2] == (2000, 1280)
    non_white = (np.abs(255 - image).sum(axis=2) > 30).mean()
    colours = len(np.unique(image.reshape(-1, 3), axis=0))
    assert non_white > 0.03, f"page looks blank: {non_white:.1%} non-white pixels"
    assert colours > 50, f"only {colours} distinct colours"

    # 2. no network request, in either run
    for netlog in browser["netlogs"]:
        assert network_urls(page_requests(netlog)) == []

    # 3. the injected label is text in the browser's DOM, never a script element
    dom = browser["dom"]
    assert "<main>" in dom and "The answer" in dom, dom[:500]
    scan = DomScan()
    scan.feed(dom)
    assert scan.scripts == 0
    shown = "".join(scan.text)
    assert shown.count(f"Monsel 2022 {INJECTED}") >= 4  # register, derived numbers, forest, answer ...
    assert html.escape(INJECTED, quote=False) in dom
    assert INJECTED not in dom


def test_answer_shows_the_decisions_numbers(fitted, browser):
    from bayes_msc.report.html import fmt, pct

    result, _ = fitted
    d = result.decisions
    answer = section_html(browser["dom"], "answer")
    cards = {
        html.unescape(re.sub(r"<[^>]+>", "", label)): (html.unescape(value), html.unescape(sub))
        for label, value, sub in re.findall(
            r'<div class="keynum"><div class="label">(.*?)</div><div class="value">(.*?)</div>'
            r'<div class="sub">(.*?)</div></div>', answer, re.S)
    }
    assert cards["P(benefit): P(pooled difference > 0)"][0] == pct(d.prob_benefit.prob)
    assert cards["P(benefit): P(pooled difference > 0)"][1] == f"MCSE {fmt(100 * d.prob_benefit.mcse, '.1f')} points"
    assert cards["P(clinically meaningful): P(pooled difference > 20 mmHg)"][0] == pct(d.prob_meaningful.prob)
    assert cards["Pooled mean difference (mmHg)"] == (
        fmt(d.pooled_effect.median, ".1f"), f"95% equal-tailed {fmt(d.pooled_effect.lower, '.1f')} to {fmt(d.pooled_effect.upper, '.1f')}")
    assert cards["Difference in a new trial (mmHg)"][0] == fmt(d.predictive_effect.median, ".1f")
    assert cards["Between-study SD τ (mmHg)"][0] == fmt(d.tau.median, ".1f")
    assert cards["Natural course: change without cells (mmHg)"][0] == fmt(d.get("natural_course_mean").median, ".1f")

    words = text_of(answer)
    assert d.meaningful_threshold == 20.0  # from spec.decision
    assert f"is {pct(d.prob_benefit.prob)} (Monte Carlo standard error {fmt(100 * d.prob_benefit.mcse, '.1f')}" in words
    assert (f"{fmt(d.pooled_effect.median, '.1f')} mmHg (95% equal-tailed interval {fmt(d.pooled_effect.lower, '.1f')} mmHg to "
            f"{fmt(d.pooled_effect.upper, '.1f')} mmHg)") in words
    # the honest sentence: three studies, one single-arm with an SE that is only an upper bound
    assert "only three of the 31 studies in the register enter" in words
    assert "BC-U001 phase 1 2026 is a single-arm study with no control arm" in words
    assert "is only an upper bound, derived from a report of “100.07 (P < 0.001)”" in words


def test_derived_numbers_table_puts_reported_next_to_derived(browser):
    evidence = section_html(browser["dom"], "evidence")
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", evidence, re.S)
    texts = [text_of(r) for r in rows]
    (i,) = [k for k, t in enumerate(texts) if "median 54.3 [IQR -15.5, 93.3], n 21" in t]
    cells = [text_of(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", rows[i], re.S)]
    assert cells[0].startswith(f"Monsel 2022 {INJECTED}")
    assert cells[1:] == ["UC-MSC", "PaO2/FiO2, change from baseline, day 0 to 7", "median 54.3 [IQR -15.5, 93.3], n 21",
                         "44.03", "18.88", "yes"]
    formula = texts[i + 1]  # the formula line under it
    assert "mean = ((-15.5) + 54.3 + 93.3) / 3 = 44.03" in formula and "SE = 86.4997 / sqrt(21) = 18.88" in formula
    assert "Wan X et al., BMC Med Res Methodol 2014;14:135" in formula
    # the bounded SE, and why unused numbers do not enter
    whole = text_of(evidence)
    assert "100.07 (P < 0.001) 100.07 ≤ 30.41 yes" in whole
    assert "7.4 (95% CI -44.7, 59.7) 7.40 26.63 no: the trial enters by its arm changes" in whole
    assert "no: PaO2 alone (mmHg) is not PaO2/FiO2" in whole
    for reference in ("Wan X, Wang W, Liu J, Tong T", "BMC Med Res Methodol 2014;14:135", "Luo D, Wan X",
                      "Stat Methods Med Res 2018", "Cochrane Handbook", "Rice TW", "Chest 2007;132:410"):
        assert reference in whole, reference


# -- the page as written -------------------------------------------------------------------


def test_html_references_nothing_outside_the_file(report_html):
    test_report.test_html_references_nothing_outside_the_file(report_html)


def test_sections_show_every_part(fitted, report_html):
    from bayes_msc.outcomes import get_outcome
    from bayes_msc.report.presentations import layout_for

    result, register = fitted
    text = html.unescape(report_html)
    # same sections as the mortality report (dose-response left out: no dose-response fitted), except
    # where mortality shows its covariate terms: in "Who benefits" (populations are a mortality model)
    oxygenation = [s.anchor for s in layout_for(get_outcome("oxygenation"))]
    mortality = [s.anchor for s in layout_for(get_outcome("mortality"))]
    assert [a if a != "covariates" else "who-benefits" for a in oxygenation] == mortality
    assert re.findall(r'<section id="([^"]+)"', report_html) == [
        "answer", "forest", "flow", "frequentist", "priors", "diagnostics", "robustness", "methods", "evidence"]
    # every study, in or out with the reason
    for label in register.studies["label"]:
        assert label in text, label
    assert text.count('class="badge pass">included<') == 3  # BC-U001, Monsel 2022, Martínez-Muñoz 2024 (evidence "all")
    assert "oxygenation index (mean airway pressure x FiO2 / PaO2) is a different measure" in text
    assert "withdrawn registration: no participants, no results" in text
    # forest plot and prior vs posterior of the four top-level parameters
    assert "study_effect" in text and "mu_new" in text and "natural_course" in text
    for label in ("pooled mean difference μ (mmHg)", "between-study SD of the effect τ (mmHg)",
                  "mean natural-course change (mmHg)", "between-study SD of the natural course (mmHg)"):
        assert label in text
    assert "Normal(mu=0, sigma=100) [default]" in text and "HalfNormal(sigma=50) [halfnormal_50]" in text
    # diagnostics with verdicts, rank plots, predictive check of every term
    for check in result.diagnostics.checks:
        assert check.name in text
    assert "Rank plots" in text and "Normal(model mean, SE)" in text
    ppc = section_html(report_html, "diagnostics")
    assert len(re.findall(r"<tr>", ppc.split("Observed (derived) and replicated")[1])) == 1 + len(result.evidence.terms)
    # methods from the spec, with the provenance
    methods = text_of(section_html(report_html, "methods"))
    for phrase in ("normal likelihood", "Change in PaO2/FiO2 from baseline", "natural course", "nutpie",
                   f"seed {result.spec.sampler.seed}", result.spec.content_hash()[:16], "closest to day 7 within days 3–14",
                   "Wan X, Wang W", "Luo D, Wan X", "Cochrane Handbook", "Rice TW", "Vehtari"):
        assert phrase in methods, phrase
    assert result.spec.content_hash() in text and result.evidence.register_hash in text
    # every figure has a text alternative and a caption; element ids are unique (inline SVGs too)
    assert report_html.count("<figure") == report_html.count("<figcaption>") == 6  # incl. the study-flow diagram
    assert report_html.count('role="img" aria-label="') == report_html.count("<figure")
    ids = re.findall(r'\bid="([^"]+)"', report_html)
    assert len(ids) == len(set(ids))


# -- the pieces ----------------------------------------------------------------------------


def test_forest_rows(fitted):
    from bayes_msc.report.oxygenation import Z95, forest_rows
    from bayes_msc.report.sections import ReportContext

    result, register = fitted
    rows = forest_rows(ReportContext(result=result, register=register))
    assert list(rows.loc[rows["kind"] == "header", "study_id"]) == list(result.evidence.studies)
    terms = rows[rows["kind"] == "term"].reset_index(drop=True)
    expected = result.evidence.terms.reset_index(drop=True)
    np.testing.assert_allclose(terms["est"], expected["estimate"])
    np.testing.assert_allclose(terms["upper"] - terms["lower"], 2 * Z95 * expected["se"])
    assert list(terms["bound"]) == list(expected["se_is_bound"].astype(bool))
    for kind, var in (("natural", "natural_course"), ("effect", "study_effect")):
        part = rows[rows["kind"] == kind].set_index("study_id")
        for sid in result.evidence.studies:
            assert part.loc[sid, "est"] == pytest.approx(float(result.posterior[var].sel(study=sid).median()))


def test_term_predictive_is_seeded_and_centred_on_the_model_mean(fitted):
    from bayes_msc.models.continuous import continuous_inputs, term_means
    from bayes_msc.report.oxygenation import term_predictive
    from bayes_msc.report.sections import ReportContext

    result, register = fitted
    ctx = ReportContext(result=result, register=register)
    ppc = term_predictive(ctx)
    assert len(ppc) == len(result.evidence.terms)
    inputs = continuous_inputs(result.evidence, result.spec.priors, result.spec.model)
    means = np.median(term_means(result.posterior, inputs).reshape(-1, len(ppc)), axis=0)
    np.testing.assert_allclose(ppc["model_mean"], means)
    assert ((ppc["pred_q025"] < ppc["pred_median"]) & (ppc["pred_median"] < ppc["pred_q975"])).all()
    # replicates spread at least by the term's SE (plus the posterior spread of the mean)
    assert ((ppc["pred_q975"] - ppc["pred_q025"]) >= 2 * 1.9 * ppc["se"]).all()
    pd.testing.assert_frame_equal(ppc, term_predictive(ctx))


def test_rank_plots_wrap_more_than_four_panels_into_rows(fitted):
    from bayes_msc.report.sections import ReportContext, rank_plots

    result, register = fitted
    shown = rank_plots(ReportContext(result=result, register=register), ["mu", "tau", "nc_mean", "nc_sd", "mu_new"])
    assert shown.count("<svg") == 2  # 5 panels: rows of 3 and 2
    ids = re.findall(r'\bid="([^"]+)"', shown)
    assert len(ids) == len(set(ids))


def test_cli_report_and_fit_report(injected_register, tmp_path, monkeypatch, capsys):
    from bayes_msc.cli import main

    monkeypatch.chdir(tmp_path)
    options = ["--data", str(injected_register), "--chains", "2", "--draws", "200", "--tune", "200"]
    out = tmp_path / "custom" / "oxygenation.html"
    assert main(["report", "oxygenation", *options, "--output", str(out)]) == 0
    assert out.is_file() and 'id="fig-forest"' in out.read_text(encoding="utf-8")
    assert str(out) in capsys.readouterr().out

    assert main(["fit", "oxygenation", *options, "--report"]) == 0
    assert (tmp_path / "reports" / "oxygenation.html").is_file()
    assert not list(tmp_path.rglob(".*.tmp"))
