"""No silent wrong answer, no false green light, a library that holds up.

* a normal-normal fit states what its estimates are and which way is benefit, or refuses;
  a prior on the wrong scale is warned about with what it implies; every output says what
  P(benefit) is the probability of;
* an SBC run too small for a verdict never says PASS, and a saved calibration for another
  spec or register is shown as not applicable, not as a green badge;
* no command overwrites a shipped example or a tracked file without ``--force``;
* a saved fit loads back as a result with the fit's methods, short reprs and a summary on
  the stated scale.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayes_msc
from bayes_msc.cli import main
from bayes_msc.io.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
TINY = ("--chains", "2", "--draws", "150", "--tune", "150")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def no_fit(monkeypatch):
    import bayes_msc.api

    def refuse(*args, **kwargs):
        raise AssertionError("the run started fitting before refusing its settings")

    monkeypatch.setattr(bayes_msc.api, "fit_spec", refuse)


def estimates(tmp_path, text: str = "study,estimate,se\na,-0.4,0.3\nb,-0.2,0.25\nc,0.1,0.4\n") -> Path:
    path = tmp_path / "estimates.csv"
    path.write_text(text, encoding="utf-8")
    return path


# -- 1. no silent wrong answer ------------------------------------------------------------------


@pytest.mark.parametrize("given, missing", [((), "--measure"), (("--measure", "log_ratio"), "--benefit-direction"),
                                            (("--benefit-direction", "decrease"), "--measure")])
def test_normal_normal_refuses_to_guess_the_measure_or_the_direction(tmp_path, capsys, no_fit, given, missing):
    code, _, err = run(capsys, "fit", "normal_normal", "--data", str(estimates(tmp_path)), *given)
    line = one_line_error(code, err)
    assert missing in line and "cannot guess" in line


def test_the_library_refuses_to_guess_them_too(tmp_path, no_fit):
    with pytest.raises(InputError, match="cannot guess what the estimates are.*measure=") as caught:
        bayes_msc.fit("normal_normal", data=estimates(tmp_path))
    assert "command line" not in str(caught.value)
    with pytest.raises(InputError, match="cannot guess which direction"):
        bayes_msc.fit("normal_normal", data=estimates(tmp_path), measure="log_ratio")


def test_an_estimates_file_can_state_both(tmp_path, no_fit):
    path = estimates(tmp_path, "study,estimate,se,measure,benefit_direction\na,-0.4,0.3,log_ratio,decrease\n"
                               "b,-0.2,0.25,log_ratio,decrease\n")
    spec = bayes_msc.resolve_spec("normal_normal", data=path)
    assert spec.model.measure == "log_ratio" and spec.decision.benefit_direction == "decrease"
    # what the options say must agree with what the file says
    with pytest.raises(InputError, match="state benefit_direction 'decrease'.*says 'increase'"):
        bayes_msc.resolve_spec("normal_normal", data=path, benefit_direction="increase")
    # one file, one measure
    mixed = estimates(tmp_path, "study,estimate,se,measure\na,1,0.3,log_ratio\nb,2,0.3,smd\n")
    with pytest.raises(InputError, match="row 2, field 'measure'"):
        bayes_msc.resolve_spec("normal_normal", data=mixed)


def test_the_register_states_mmhg_and_higher_is_better(no_fit):
    spec = bayes_msc.resolve_spec("normal_normal", data=None, priors=["effect=normal(mu=0,sigma=50)",
                                                                       "heterogeneity=halfcauchy(beta=25)"])
    assert (spec.model.measure, spec.model.unit, spec.decision.benefit_direction) == ("mean_difference", "mmHg",
                                                                                       "increase")
    with pytest.raises(InputError, match="mean differences in mmHg"):
        bayes_msc.resolve_spec("normal_normal", data=None, measure="log_ratio", benefit_direction="increase")


def test_the_mortality_direction_is_fixed(no_fit):
    with pytest.raises(InputError, match="direction of benefit is fixed"):
        bayes_msc.fit("mortality", benefit_direction="increase")


def test_a_prior_on_the_wrong_scale_is_warned_about_with_what_it_implies(tmp_path, capsys, no_fit):
    import bayes_msc.api

    bayes_msc.api._WARNED.clear()
    with pytest.raises(AssertionError, match="started fitting"):  # a warning, not a refusal
        main(["fit", "normal_normal", "--data", str(estimates(tmp_path)), "--measure", "log_ratio",
              "--benefit-direction", "decrease", "--prior", "effect=normal(mu=0,sigma=50)",
              "--prior", "heterogeneity=halfcauchy(beta=25)"])
    err = capsys.readouterr().err
    # Normal(0, 50): 95% within 0 +/- 1.96 x 50 = +/- 98 on the log scale
    assert f"exp({-1.959964 * 50:.3g}) to exp({1.959964 * 50:.3g})" in err
    # HalfCauchy(25): P(tau > 25 tan(0.95 pi / 2)) = 5%
    assert f"{25 * math.tan(0.95 * math.pi / 2):.3g}" in err
    assert err.count("WARNING") == 2
    # a sensible prior on the same scale is not warned about
    bayes_msc.api._WARNED.clear()
    with pytest.raises(AssertionError, match="started fitting"):
        main(["fit", "normal_normal", "--data", str(estimates(tmp_path)), "--measure", "log_ratio",
              "--benefit-direction", "decrease"])
    assert "WARNING" not in capsys.readouterr().err


def test_every_output_says_what_p_benefit_is_the_probability_of(tmp_path, capsys):
    path = estimates(tmp_path)
    code, out, err = run(capsys, "fit", "normal_normal", "--data", str(path), "--measure", "log_ratio",
                         "--benefit-direction", "decrease", *TINY)
    assert code == 0, err
    assert "benefit = decrease: log ratio < 0 favours cells" in out and "P(log ratio < 0)" in out
    code, out, err = run(capsys, "fit", "normal_normal", "--data", str(path), "--measure", "log_ratio",
                         "--benefit-direction", "decrease", "--json", *TINY)
    decisions = json.loads(out)["decisions"]
    assert decisions["prob_benefit"]["event"] == "P(pooled log ratio < 0); benefit = decrease"
    assert decisions["predictive_prob_benefit"]["event"] == "P(in a new trial log ratio < 0); benefit = decrease"
    # decrease: P(benefit) is P(mu < 0), the complement of the increase reading of the same data
    _, out_up, _ = run(capsys, "fit", "normal_normal", "--data", str(path), "--measure", "log_ratio",
                       "--benefit-direction", "increase", "--json", *TINY)
    up = json.loads(out_up)["decisions"]["prob_benefit"]["prob"]
    assert decisions["prob_benefit"]["prob"] == pytest.approx(1 - up, abs=1e-12)


# -- 2. no false green light ------------------------------------------------------------------------


def _sbc_result(n: int, fractional: np.ndarray | None = None):
    """An SBCResult over ``n`` replicates whose ranks are given (uniform by default)."""
    from bayes_msc.analyses.sbc import SBCResult, uniformity

    rng = np.random.default_rng(1)
    fractional = rng.uniform(size=n) if fractional is None else fractional
    ranks = pd.DataFrame({"mu": (fractional * 101).astype(int), "divergences": np.zeros(n, int)})
    return SBCResult("x", n, ("mu",), ranks, 100, {"mu": uniformity(fractional)}, "h", "2026-01-01", 1.0)


def test_a_small_sbc_run_never_says_pass():
    small = _sbc_result(10)
    assert not small.failed and not small.passed and not small.conclusive
    verdict = small.verdict()
    assert verdict.startswith("NO VERDICT") and "PASS" not in verdict and "200" in verdict
    assert "uniform (" not in verdict and "mu: inside its band" in verdict
    # what N can show: the simultaneous band at N = 10 lets the ECDF stray far (> KS's 1.36/sqrt(N) / 2)
    assert small.detectable() > 0.5 * 1.36 / math.sqrt(10)
    saved = small.to_dict()
    assert saved["passed"] is False and saved["conclusive"] is False
    assert _sbc_result(250).passed and _sbc_result(250).verdict().startswith("PASS")
    # a failure is a failure at any N: all ranks at the top
    assert _sbc_result(10, np.full(10, 0.99)).failed


def test_a_small_sbc_run_earns_no_badge_and_a_foreign_one_is_not_applicable(quick_fit):
    from bayes_msc.report.sections import ReportContext, robustness_section

    spec = quick_fit.spec
    mine = {**_sbc_result(10).to_dict(), "spec_hash": spec.content_hash(), "spec": spec.to_dict(),
            "register_hash": quick_fit.evidence.register_hash}

    def section(sbc) -> str:
        return str(robustness_section(ReportContext(result=quick_fit, register=None, sbc=sbc)))

    html = section(mine)
    assert "CALIBRATED" not in html and "NO VERDICT" in html
    # a file written before the minimum existed, which says passed for N = 10
    legacy = {k: v for k, v in mine.items() if k not in ("conclusive", "failed")} | {"passed": True}
    assert "CALIBRATED" not in section(legacy) and "NO VERDICT" in section(legacy)
    # a conclusive pass for this spec and register: the green badge
    good = {**_sbc_result(250).to_dict(), "spec_hash": spec.content_hash(), "spec": spec.to_dict(),
            "register_hash": quick_fit.evidence.register_hash}
    assert "CALIBRATED" in section(good)
    # the same pass, computed for another spec, or another register: not applicable, in words
    for foreign in ({**good, "spec_hash": "0" * 64, "spec": {**good["spec"], "sampler": {"seed": 1}}},
                    {**good, "register_hash": "f" * 64}):
        html = section(foreign)
        assert "CALIBRATED" not in html and "NOT APPLICABLE" in html
        assert "does not apply to this analysis" in html


@pytest.fixture(scope="module")
def quick_fit():
    return bayes_msc.fit("mortality", chains=2, draws=150, tune=150, seed=3)


def test_shipped_files_are_not_overwritten_without_force(capsys, monkeypatch, no_fit):
    from bayes_msc.io.paths import default_output_dir, protected_reason

    shipped = ROOT / "reports" / "mortality.html"
    assert shipped.is_file() and "shipped example" in protected_reason(shipped)
    assert "tracked" in protected_reason(ROOT / "README.md")
    # run from the checkout's root, default outputs go to ./bayes_msc_out, not the shipped reports/
    monkeypatch.chdir(ROOT)
    assert default_output_dir() == Path("bayes_msc_out")
    before = shipped.read_bytes()
    for argv, option in ((("report", "mortality", "--output", str(shipped)), "--output"),
                         (("sbc", "mortality", "--out", "reports/mortality.sbc.json"), "--out"),
                         (("oc", "mortality", "--out", "README.md"), "--out"),
                         (("design", "mortality", "--export-prior", "models/mortality.toml"), "--export-prior")):
        code, _, err = run(capsys, *argv)
        line = one_line_error(code, err)
        assert option in line and "--force" in line and "will not overwrite" in line, line
    assert shipped.read_bytes() == before
    # with --force the run goes ahead (here: to the fit, which no_fit stops)
    with pytest.raises(AssertionError, match="started fitting"):
        main(["report", "mortality", "--output", str(shipped), "--force"])


def test_elsewhere_default_outputs_go_to_reports_as_before(tmp_path, monkeypatch):
    from bayes_msc.io.paths import default_output_dir, protected_reason

    monkeypatch.chdir(tmp_path)
    assert default_output_dir() == Path("reports")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "mortality.html").write_text("mine", encoding="utf-8")
    assert protected_reason(tmp_path / "reports" / "mortality.html") is None  # the user's own file


# -- 7. the library holds up ------------------------------------------------------------------------


def test_a_saved_fit_loads_back_as_a_result_with_the_same_answers(quick_fit, tmp_path):
    quick_fit.save(tmp_path / "saved")
    loaded = bayes_msc.load_result(tmp_path / "saved")
    assert isinstance(loaded, bayes_msc.FitResult)
    assert loaded.spec.content_hash() == quick_fit.spec.content_hash()
    assert loaded.prob_benefit() == quick_fit.prob_benefit()
    assert loaded.prob_benefit(0.8, predictive=True) == quick_fit.prob_benefit(0.8, predictive=True)
    assert loaded.decisions.to_dict() == quick_fit.decisions.to_dict()
    assert loaded.diagnostics.passed == quick_fit.diagnostics.passed
    pd.testing.assert_frame_equal(loaded.summary(raw=True), quick_fit.summary(raw=True))
    from bayes_msc.report import write_report

    written = write_report(loaded, tmp_path / "saved.html")
    assert written.is_file() and "odds ratio" in written.read_text(encoding="utf-8")
    # a name works as spec=; a result from another register is refused
    assert bayes_msc.load_result(tmp_path / "saved", spec=quick_fit.spec).prob_benefit() == quick_fit.prob_benefit()
    with pytest.raises(InputError, match="spec hash mismatch"):
        bayes_msc.load_result(tmp_path / "saved", spec="mortality")
    other = tmp_path / "register"
    import shutil

    shutil.copytree(ROOT / "data", other, ignore=shutil.ignore_patterns("*.md"))
    with (other / "studies.csv").open("a", encoding="utf-8") as handle:
        handle.write("")  # same content: accepted
    assert bayes_msc.load_result(tmp_path / "saved", data=other).prob_benefit() == quick_fit.prob_benefit()
    (other / "mortality.csv").write_text((other / "mortality.csv").read_text(encoding="utf-8") + "\n",
                                         encoding="utf-8")
    if bayes_msc.load_register(other).content_hash != quick_fit.evidence.register_hash:
        with pytest.raises(InputError, match="another register"):
            bayes_msc.load_result(tmp_path / "saved", data=other)


def test_results_have_a_short_repr_and_an_html_one(quick_fit):
    text = repr(quick_fit)
    assert len(text) < 200 and "\n" not in text
    d = quick_fit.decisions
    assert text.startswith("<FitResult mortality: pooled OR ") and f"P(OR < 1) {d.prob_benefit.prob:.3f}" in text
    html = quick_fit._repr_html_()
    assert html.startswith("<div") and "<table>" in html and "P(OR &lt; 1)" in html


def test_summary_is_on_the_stated_scale_and_rounded(quick_fit):
    raw = quick_fit.summary(raw=True)
    shown = quick_fit.summary()
    assert "log_or" in raw.index and "OR (pooled)" in shown.index and "log_or" not in shown.index
    # the odds ratio's interval is exp of the log odds ratio's (quantiles commute with exp)
    lower = float(shown.loc["OR (pooled)", "eti95_lb"])
    assert lower == pytest.approx(math.exp(raw.loc["log_or", "eti95_lb"]), rel=0.02)
    assert float(shown.loc["tau (log odds ratio)", "mean"]) == pytest.approx(raw.loc["tau", "mean"], rel=0.02)
    # rounded: no cell carries more than a handful of digits
    assert all(len(str(v).split(".")[-1]) <= 4 for v in shown["mean"])
    assert len(str(raw.loc["log_or", "mean"]).split(".")[-1]) > 4


@pytest.mark.parametrize("threshold", ["0.8", [0.8], True])
def test_prob_benefit_names_a_wrong_threshold(quick_fit, threshold):
    with pytest.raises(InputError, match=r"prob_benefit\(threshold=...\): expected a number"):
        quick_fit.prob_benefit(threshold)


def test_refit_tables_say_what_p_benefit_is_the_probability_of(tmp_path, no_fit):
    import pandas as pd

    from bayes_msc.io.display import render_influence, render_sensitivity
    from bayes_msc.analyses.sensitivity import Influence, PriorSensitivity, benefit_event

    assert benefit_event(bayes_msc.load_spec("mortality")) == "P(OR < 1); benefit = decrease"
    spec = bayes_msc.resolve_spec("normal_normal", data=estimates(tmp_path), measure="log_ratio",
                                  benefit_direction="decrease")
    event = benefit_event(spec)
    assert event == "P(log ratio < 0); benefit = decrease"
    numbers = {"effect_median": -0.2, "effect_lower": -0.5, "effect_upper": 0.1, "prob_benefit": 0.8,
               "prob_benefit_mcse": 0.01, "prob_meaningful": 0.4, "tau_median": 0.1}
    table = pd.DataFrame([{"effect_prior": "default", "heterogeneity_prior": "h", **numbers,
                           "diagnostics_passed": True, "seconds": 0.5, "recompiled": False}])
    psense = pd.DataFrame({"prior": [0.01], "likelihood": [0.1], "diagnosis": ["-"]}, index=["mu"])
    measure = spec.outcome_type.measure
    sens = PriorSensitivity("normal_normal", measure, table, psense, "verdict", 1.0, [0.5], 1, event)
    assert f"P(benefit) = {event}" in render_sensitivity(sens) and sens.to_dict()["benefit"] == event
    rows = pd.DataFrame([{"study_id": "a", "label": "A", **numbers, "change_prob_benefit": -0.1, "pareto_k": 0.3}])
    influence = Influence("normal_normal", measure, rows, numbers, "a", "statement", 1.0, [0.5], 0, event)
    assert f"P(benefit) = {event}" in render_influence(influence) and influence.to_dict()["benefit"] == event


def test_a_dose_outside_the_studied_range_is_flagged_as_an_extrapolation():
    from bayes_msc.design import design
    from bayes_msc.design.plan import DesignSettings
    from bayes_msc.design.text import render_design

    result = bayes_msc.fit("mortality", dose_response="emax", chains=2, draws=150, tune=150, seed=2)
    low, high = result.dose_response.studied_range
    dose = 10 * high  # inside the spec's bound (1e4 million cells/kg), far outside what any trial gave
    planned = design(result, DesignSettings(dose=dose, n_grid=(50, 100), refit=False))
    assert any("outside the studied range" in note for note in planned.notes), planned.notes
    row = planned.dose[planned.dose["dose"] == dose].iloc[0]
    assert bool(row["extrapolated"])
    assert "OUTSIDE the studied range" in render_design(planned)


def test_priors_given_as_a_generator_are_read_once_not_lost():
    spec = bayes_msc.resolve_spec("mortality", priors=(name for name in ["sceptical"]))
    assert spec.priors.names["effect"] == "sceptical"


def test_any_prob_benefit_argument_answers_or_is_refused_as_an_input_error(quick_fit):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    values = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=5),
                       st.lists(st.floats(), max_size=2))

    @settings(max_examples=60, deadline=None)
    @given(threshold=values, predictive=values)
    def check(threshold, predictive):
        try:
            answer = quick_fit.prob_benefit(threshold, predictive=predictive)
        except InputError as exc:
            assert "\n" not in str(exc)
            return
        assert 0 <= answer.prob <= 1
        # a threshold that is not a finite number has no answer (nan would read as P = 0)
        assert threshold is None or (not isinstance(threshold, bool) and math.isfinite(threshold)), threshold

    check()
