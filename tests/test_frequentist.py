"""The classic frequentist rows and small-study tests against published values.

Data: the BCG vaccine trials (Colditz et al. 1994, JAMA 271:698; metafor's ``dat.bcg``, the
table in metadat's ``data-raw/dat.colditz1994.txt``) and the intravenous magnesium trials
(Egger et al. 2001; metadat ``data-raw/dat.egger2001.txt``). Expected numbers come from
metafor's own test suite (wviechtb/metafor ``tests/testthat``), which checks them against
Stata's ``metan``, each cited where used; tolerances are the published rounding.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from bayes_msc.analyses import frequentist as F
from bayes_msc.io.errors import InputError

# dat.bcg: tpos/tneg vaccinated, cpos/cneg control
TPOS = np.array([4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27])
TNEG = np.array([119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493, 16886])
CPOS = np.array([11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29])
CNEG = np.array([128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338, 17825])
N1, N2 = TPOS + TNEG, CPOS + CNEG

# dat.egger2001 (magnesium): ai/n1i magnesium deaths/patients, ci/n2i control
MG_AI = np.array([1, 9, 2, 1, 10, 1, 1, 0, 6, 1, 2, 5, 4, 90, 4, 2216])
MG_N1 = np.array([40, 135, 200, 48, 150, 59, 25, 22, 76, 27, 89, 23, 130, 1159, 107, 29011])
MG_CI = np.array([2, 23, 7, 1, 8, 9, 3, 1, 11, 7, 12, 13, 8, 118, 17, 2103])
MG_N2 = np.array([36, 135, 200, 46, 148, 56, 23, 21, 75, 27, 80, 33, 122, 1157, 108, 29039])


def bcg_log_rr():
    """escalc(measure="RR"): log(a/n1) - log(c/n2), variance 1/a - 1/n1 + 1/c - 1/n2."""
    y = np.log(TPOS / N1) - np.log(CPOS / N2)
    v = 1 / TPOS - 1 / N1 + 1 / CPOS - 1 / N2
    return y, v


@pytest.fixture(scope="module")
def bcg_or():
    return F.binary_meta_analysis(TPOS, N1, CPOS, N2)


@pytest.fixture(scope="module")
def bcg_rr():
    y, v = bcg_log_rr()
    return F.generic_meta_analysis(y, np.sqrt(v))


# -- odds-ratio rows: metafor tests/testthat/test_misc_metan_vs_rma.{mh,peto,uni}_with_dat.bcg.r


def test_mantel_haenszel_matches_metafor_and_metan(bcg_or):
    row = bcg_or.row("Mantel-Haenszel")  # rma.mh(measure="OR"): -0.4734 [-0.5538, -0.3930], z -11.5444
    assert row.estimate == pytest.approx(-0.4734, abs=5e-5)
    assert (row.lower, row.upper) == pytest.approx((-0.5538, -0.3930), abs=5e-5)
    assert row.estimate / row.se == pytest.approx(-11.5444, abs=5e-4)


def test_peto_matches_metafor_and_metan(bcg_or):
    row = bcg_or.row("Peto")  # rma.peto: -0.4744 [-0.5541, -0.3948], z -11.6689; OR 0.6222 [0.5746, 0.6738]
    assert row.estimate == pytest.approx(-0.4744, abs=5e-5)
    assert (row.lower, row.upper) == pytest.approx((-0.5541, -0.3948), abs=5e-5)
    assert row.estimate / row.se == pytest.approx(-11.6689, abs=5e-4)
    assert math.exp(row.estimate) == pytest.approx(0.6222, abs=5e-5)


def test_inverse_variance_and_dersimonian_laird_odds_ratios_match_metafor(bcg_or):
    fe = bcg_or.row("Inverse variance")  # rma(method="FE"), OR: -0.4361 [-0.5190, -0.3533], z -10.3190, QE 163.1649
    assert fe.estimate == pytest.approx(-0.4361, abs=5e-5)
    assert (fe.lower, fe.upper) == pytest.approx((-0.5190, -0.3533), abs=5e-5)
    assert fe.estimate / fe.se == pytest.approx(-10.3190, abs=5e-4)
    assert bcg_or.heterogeneity.q == pytest.approx(163.1649, abs=5e-5)
    dl = bcg_or.row("DerSimonian-Laird")  # rma(method="DL"), OR: -0.7474 [-1.1242, -0.3706], tau2 0.3663, I2 92.6455
    assert dl.estimate == pytest.approx(-0.7474, abs=5e-5)
    assert (dl.lower, dl.upper) == pytest.approx((-1.1242, -0.3706), abs=5e-5)
    assert dl.tau2 == pytest.approx(0.3663, abs=5e-5)
    assert bcg_or.heterogeneity.i2 == pytest.approx(92.6455, abs=5e-5)


# -- random effects on log risk ratios: the metafor documentation's dat.bcg example


def test_reml_matches_metafor(bcg_rr):
    """rma(yi, vi) on dat.bcg log RRs: estimate -0.7145, SE 0.1798, 95% CI -1.0669 to -0.3622,
    tau2 0.3132, I2 92.22% (92.22139 in easystats/performance's test against metafor), Q(12)
    152.2330 (the printed metafor output, e.g. in RoBMA's vignette; Q also in
    test_misc_metan_vs_rma.uni_with_dat.bcg.r)."""
    row = bcg_rr.row("REML")
    assert row.estimate == pytest.approx(-0.7145, abs=5e-5)
    assert row.se == pytest.approx(0.1798, abs=5e-5)
    assert (row.lower, row.upper) == pytest.approx((-1.0669, -0.3622), abs=5e-5)
    assert row.tau2 == pytest.approx(0.3132, abs=5e-5)
    het = bcg_rr.heterogeneity
    assert het.i2_reml == pytest.approx(92.22139, abs=5e-4)
    assert (het.q, het.df) == (pytest.approx(152.2330, abs=5e-5), 12)


def test_dersimonian_laird_and_q_profile_intervals_match_metafor(bcg_rr):
    """test_misc_confint.r: rma(method="DL") on log RRs, confint(): tau2 0.3088 [0.1197, 1.1115],
    I2 92.1173 [81.9177, 97.6781]; DL estimate -0.7141 [-1.0644, -0.3638]."""
    dl = bcg_rr.row("DerSimonian-Laird")
    assert dl.tau2 == pytest.approx(0.3088, abs=5e-5)
    assert (dl.estimate, dl.lower, dl.upper) == pytest.approx((-0.7141, -1.0644, -0.3638), abs=5e-5)
    het = bcg_rr.heterogeneity
    assert (het.tau2_lower, het.tau2_upper) == pytest.approx((0.1197, 1.1115), abs=5e-5)
    assert het.i2 == pytest.approx(92.1173, abs=5e-5)
    # the I² ends move ~1.2 percentage points per 0.01 of τ²: the root finders' tolerances (PyMARE's
    # and R's uniroot) agree to the 4 decimals of τ² above, which is 0.006 points of I²
    assert (het.i2_lower, het.i2_upper) == pytest.approx((81.9177, 97.6781), abs=6e-3)
    assert het.h == pytest.approx(math.sqrt(152.2330 / 12), abs=1e-4)


def test_hksj_matches_metafor_knha(bcg_rr):
    """metafor's README (wviechtb/metafor): rma(yi, vi, data=dat, test="knha") on dat.bcg log RRs:
    estimate -0.7145, se 0.1808, tval -3.9522 on 12 df, p 0.0019, CI -1.1084 to -0.3206."""
    hk = bcg_rr.row("REML (HKSJ)")
    assert (hk.estimate, hk.se) == pytest.approx((-0.7145, 0.1808), abs=5e-5)
    assert hk.estimate / hk.se == pytest.approx(-3.9522, abs=5e-4)
    assert (hk.lower, hk.upper) == pytest.approx((-1.1084, -0.3206), abs=5e-5)
    assert hk.p_value == pytest.approx(0.0019, abs=5e-5)


def test_hksj_and_prediction_intervals_follow_their_closed_forms(bcg_rr):
    """HKSJ: SE² = Σw(y−μ)²/((k−1)Σw) at the REML τ², t with k−1 df (Hartung & Knapp 2001);
    prediction: μ ± t_{k−2}·√(τ² + SE²) (Higgins et al. 2009) — computed here by hand."""
    y, v = bcg_log_rr()
    k = len(y)
    reml = bcg_rr.row("REML")
    w = 1 / (v + reml.tau2)
    mu = np.sum(w * y) / np.sum(w)
    se_hk = math.sqrt(np.sum(w * (y - mu) ** 2) / ((k - 1) * np.sum(w)))
    hk = bcg_rr.row("REML (HKSJ)")
    assert hk.se == pytest.approx(se_hk, rel=1e-6)
    half = stats.t.ppf(0.975, k - 1) * se_hk
    assert (hk.lower, hk.upper) == pytest.approx((mu - half, mu + half), rel=1e-6)
    pi = bcg_rr.row("Prediction interval (REML)")
    half = stats.t.ppf(0.975, k - 2) * math.sqrt(reml.tau2 + reml.se**2)
    assert (pi.lower, pi.upper) == pytest.approx((reml.estimate - half, reml.estimate + half), rel=1e-6)


def test_paule_mandel_solves_its_estimating_equation(bcg_rr):
    """Paule–Mandel's τ² is the root of Q(τ²) = k − 1 (generalised Q at the RE weights)."""
    y, v = bcg_log_rr()
    tau2 = bcg_rr.row("Paule-Mandel").tau2
    w = 1 / (v + tau2)
    mu = np.sum(w * y) / np.sum(w)
    assert np.sum(w * (y - mu) ** 2) == pytest.approx(len(y) - 1, abs=1e-3)


# -- small-study tests


def test_regression_test_matches_metafor_on_the_magnesium_trials():
    """test_misc_pub_bias.r: rma(measure="OR", ...) on dat.egger2001 (0.5 added to tables with
    a zero cell), regtest(model="lm", predictor="sqrtninv"): t = -5.6083."""
    effects = F.binary_study_effects(MG_AI, MG_N1, MG_CI, MG_N2)
    y, v = effects["log_or"].to_numpy(), effects["variance"].to_numpy()
    assert effects["corrected"].sum() == 1  # Bertschat 1989: 0/22 vs 1/21
    test = F.weighted_regression_test(y, 1 / np.sqrt(MG_N1 + MG_N2), 1 / v, name="sqrtninv",
                                      predictor_name="1/sqrt(n)", weights_name="1/v")
    assert test.t == pytest.approx(-5.6083, abs=5e-5)
    assert test.df == 14


def test_egger_is_the_intercept_of_the_standard_normal_deviate_regression():
    """Egger et al. (1997): y/SE = b0 + b1/SE by ordinary least squares; the bias coefficient
    b0 (scipy's linregress, independently) is the slope of our weighted form."""
    effects = F.binary_study_effects(MG_AI, MG_N1, MG_CI, MG_N2)
    y, se = effects["log_or"].to_numpy(), np.sqrt(effects["variance"].to_numpy())
    egger = F.egger_test(y, se)
    fit = stats.linregress(1 / se, y / se)
    assert egger.slope == pytest.approx(fit.intercept, rel=1e-9)
    assert egger.slope_se == pytest.approx(fit.intercept_stderr, rel=1e-9)
    assert egger.p_value == pytest.approx(2 * stats.t.sf(abs(fit.intercept / fit.intercept_stderr), len(y) - 2),
                                          rel=1e-9)
    assert egger.intercept == pytest.approx(fit.slope, rel=1e-9)  # the precision-weighted effect


def test_peters_is_a_weighted_regression_on_the_inverse_total_size():
    """Peters et al. (2006): log OR on 1/N, weights 1/(1/D + 1/S) — checked against statsmodels'
    WLS (an independent fit of the same regression)."""
    import statsmodels.api as sm

    effects = F.binary_study_effects(MG_AI, MG_N1, MG_CI, MG_N2)
    y = effects["log_or"].to_numpy()
    test = F.peters_test(MG_AI, MG_N1, MG_CI, MG_N2, y)
    n, d = MG_N1 + MG_N2, MG_AI + MG_CI
    wls = sm.WLS(y, sm.add_constant(1 / n), weights=1 / (1 / d + 1 / (n - d))).fit()
    assert (test.intercept, test.slope) == pytest.approx(tuple(wls.params), rel=1e-8)
    assert (test.intercept_se, test.slope_se) == pytest.approx(tuple(wls.bse), rel=1e-8)
    assert test.p_value == pytest.approx(wls.pvalues[1], rel=1e-8)
    assert test.k >= F.MIN_STUDIES_ASYMMETRY and "Sterne" not in test.note


def test_few_studies_say_the_tests_have_little_power():
    test = F.egger_test([0.1, -0.3, 0.5, 0.2], [0.2, 0.3, 0.4, 0.25])
    assert "Sterne" in test.note and "10" in test.note


# -- zero cells, double zeros, bad input


def test_only_tables_with_a_zero_cell_are_corrected_and_double_zeros_leave():
    effects = F.binary_study_effects([0, 3, 0], [10, 10, 12], [2, 4, 0], [10, 10, 11])
    assert list(effects["corrected"]) == [True, False, False]
    assert list(effects["double_zero"]) == [False, False, True]
    assert effects["log_or"][0] == pytest.approx(math.log(0.5 * 8.5 / (10.5 * 2.5)))
    assert effects["variance"][0] == pytest.approx(1 / 0.5 + 1 / 10.5 + 1 / 2.5 + 1 / 8.5)
    assert effects["log_or"][1] == pytest.approx(math.log(3 * 6 / (7 * 4)))  # no correction
    with_zero = F.binary_meta_analysis([0, 3, 0, 5], [10, 10, 12, 20], [2, 4, 0, 9], [10, 10, 11, 20])
    without = F.binary_meta_analysis([0, 3, 5], [10, 10, 20], [2, 4, 9], [10, 10, 20])
    assert with_zero.row("Mantel-Haenszel").estimate == pytest.approx(without.row("Mantel-Haenszel").estimate)
    assert with_zero.row("REML").k == 3
    assert any("double-zero" in n for n in with_zero.notes)


@pytest.mark.parametrize("args", [([1, 2], [10], [1, 2], [10, 10]), ([11], [10], [1], [10]), ([-1], [10], [1], [10]),
                                  ([1.5], [10], [1], [10])])
def test_bad_counts_are_refused(args):
    with pytest.raises(InputError):
        F.binary_meta_analysis(*args)


def test_bad_estimates_are_refused():
    with pytest.raises(InputError):
        F.generic_meta_analysis([0.1, 0.2], [0.1, 0.0])
    with pytest.raises(InputError):
        F.generic_meta_analysis([0.1, np.nan], [0.1, 0.2])


def test_one_study_gives_the_fixed_effect_alone():
    result = F.generic_meta_analysis([0.3], [0.1])
    assert [r.method for r in result.rows] == ["Inverse variance"] and result.heterogeneity is None


# -- a fitted result (API layer), the CLI and the report section


@pytest.fixture(scope="module")
def mortality_result():
    from bayes_msc import fit

    return fit("mortality", draws=300, chains=2)


def test_the_fitted_mortality_analysis_lists_every_study_and_why(mortality_result):
    studies = F.study_effects(mortality_result)
    assert list(studies["study_id"]) == list(mortality_result.evidence.studies)
    partial = {r.study_id for r in mortality_result.evidence.partial}
    out = studies[~studies["in_rows"]]
    assert partial and partial <= set(out["study_id"])
    assert all(out["reason"].str.len() > 0)
    summary = F.frequentist_summary(mortality_result)
    used = studies[studies["in_rows"]]
    direct = F.mantel_haenszel(used["deaths_cells"], used["n_cells"], used["deaths_control"], used["n_control"])
    frame = summary.to_frame().set_index("method")
    assert frame.loc["Mantel-Haenszel", "OR"] == pytest.approx(math.exp(direct.estimate))
    assert frame.loc["Mantel-Haenszel", "k"] == len(used)
    d = mortality_result.decisions
    assert summary.bayesian["median"] == d.pooled_effect.median
    assert summary.bayesian["prob_benefit"] == d.prob_benefit.prob
    payload = json.loads(json.dumps(summary.to_dict(), default=float))
    assert {t["name"] for t in payload["small_study_tests"]} == {"Peters", "Egger"}
    text = F.render_frequentist(summary)
    assert "Mantel-Haenszel" in text and "P(OR < 1)" in text


def test_the_report_section_and_funnel_plot(mortality_result):
    from bayes_msc.report.frequentist import FREQUENTIST_SECTION, funnel_figure, funnel_rows
    from bayes_msc.report.sections import ReportContext

    fig = funnel_figure(mortality_result, sort="se")
    ax = fig.axes[0]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # most precise at the top
    html = FREQUENTIST_SECTION.build(ReportContext(result=mortality_result, register=None))
    assert "<svg" in html and "Mantel-Haenszel" in html and "Peters" in html
    summary = F.frequentist_summary(mortality_result)
    rows = funnel_rows(summary, "se")
    assert list(rows["se"]) == sorted(rows["se"])
    with pytest.raises(InputError):
        funnel_rows(summary, "year")


def test_cli_prints_json_and_refuses_bad_input(capsys, tmp_path):
    from bayes_msc.cli import main

    assert main(["-q", "frequentist", "mortality", "--draws", "200", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["measure"] == "odds ratio" and payload["rows"][0]["method"] == "Mantel-Haenszel"
    assert main(["-q", "frequentist", "mortality", "--data", str(tmp_path / "missing")]) == 2


def _estimates_file(tmp_path):
    y, v = bcg_log_rr()
    path = tmp_path / "bcg.csv"
    path.write_text("study,estimate,se\n" + "".join(f"t{i},{float(a)!r},{math.sqrt(b)!r}\n" for i, (a, b) in enumerate(zip(y, v))),
                    encoding="utf-8")
    return path


def test_estimates_evidence_enters_as_contrasts(tmp_path):
    """The API layer on a normal-normal analysis' evidence, without sampling: a stand-in result
    carrying the evidence an estimates file gives."""
    from types import SimpleNamespace

    from bayes_msc.evidence.estimates import estimates_evidence, load_estimates
    from bayes_msc.outcomes.continuous import NormalNormalOutcome

    evidence = estimates_evidence(load_estimates(_estimates_file(tmp_path)), exclude_studies=["t0"])
    interval = SimpleNamespace(median=-0.7, lower=-1.1, upper=-0.3, ci_prob=0.95)
    result = SimpleNamespace(
        evidence=evidence, outcome=NormalNormalOutcome("log_ratio"),
        spec=SimpleNamespace(name="bcg", decision=SimpleNamespace(ci_prob=0.95), model=SimpleNamespace(dose_response="none")),
        decisions=SimpleNamespace(pooled_effect=interval, prob_benefit=SimpleNamespace(prob=0.99, mcse=0.001),
                                  benefit_direction="decrease", benefit_threshold=0.0))
    summary = F.frequentist_summary(result)
    y, v = bcg_log_rr()
    direct = F.generic_meta_analysis(y[1:], np.sqrt(v[1:]))
    assert summary.result.row("REML").estimate == pytest.approx(direct.row("REML").estimate)
    assert "Mantel-Haenszel" not in list(summary.to_frame()["method"])
    assert not summary.log_scale and [t.name for t in summary.result.asymmetry] == ["Egger"]


@pytest.mark.slow
def test_normal_normal_rows_have_no_mantel_haenszel(tmp_path):
    from bayes_msc import fit

    result = fit("normal_normal", data=_estimates_file(tmp_path), draws=200, chains=2, measure="log_ratio", benefit_direction="decrease")
    summary = F.frequentist_summary(result)
    methods = list(summary.to_frame()["method"])
    assert "Mantel-Haenszel" not in methods and "Peto" not in methods
    reml = summary.result.row("REML")
    assert reml.estimate == pytest.approx(-0.7145, abs=5e-5)  # the same metafor value as above


def test_a_predictor_without_spread_gives_no_test_not_an_error():
    test = F.egger_test([0.1, -0.3, 0.5], [0.2, 0.2, 0.2])
    assert math.isnan(test.p_value) and "no test" in test.note


def test_each_asymmetry_note_is_said_once():
    """Peters' note carries the few-studies warning too: the warning is not repeated beside it."""
    from bayes_msc.analyses.frequentist import asymmetry_notes, egger_test, peters_test

    deaths_t, n_t, deaths_c, n_c = [1, 10, 5, 42, 3], [12, 20, 21, 112, 11], [7, 16, 4, 47, 8], [12, 20, 24, 110, 24]
    import math

    log_or = [math.log((a + 0.0) / (n - a) / (c / (m - c))) for a, n, c, m in zip(deaths_t, n_t, deaths_c, n_c)]
    se = [math.sqrt(1 / a + 1 / (n - a) + 1 / c + 1 / (m - c)) for a, n, c, m in zip(deaths_t, n_t, deaths_c, n_c)]
    notes = asymmetry_notes([peters_test(deaths_t, n_t, deaths_c, n_c, log_or), egger_test(log_or, se)])
    assert sum("Sterne" in n for n in notes) == 1 and any("Peters' test is preferred" in n for n in notes)
