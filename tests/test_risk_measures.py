"""Binary outcomes stated as a risk ratio or a risk difference (``model.effect_measure``).

The expected numbers come from closed forms written out here (expit/logit from scipy, odds
arithmetic, counting draws with numpy), from the content hash the code computed before the
setting existed (pinned), or from the command line's exit status and words; never from the
functions under test.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, logit

from bayes_msc.decisions import log_or_at_risk_difference, log_or_at_risk_ratio, risk_difference, risk_ratio
from bayes_msc.io.errors import InputError
from bayes_msc.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]


def draws(values, chains: int = 2) -> xr.DataArray:
    values = np.asarray(values, dtype="float64").reshape(chains, -1)
    return xr.DataArray(values, dims=("chain", "draw"),
                        coords={"chain": np.arange(chains), "draw": np.arange(values.shape[1])})


def posterior(log_or, log_or_new=None, tau=None) -> xr.Dataset:
    """A hand-made mortality posterior: the pooled and new-trial log OR and tau."""
    log_or = np.asarray(log_or, float)
    return xr.Dataset({"log_or": draws(log_or), "log_or_new": draws(log_or if log_or_new is None else log_or_new),
                       "tau": draws(np.full(log_or.shape, 0.3) if tau is None else tau)})


def spec_on(measure: str, baseline: float, threshold: float | None = None):
    """The mortality spec stated on ``measure`` at control risk ``baseline``."""
    spec = load_spec("mortality").with_model(effect_measure=measure).with_decision(baseline_risk=baseline)
    if threshold is not None:
        key = {"or": "clinically_meaningful_or", "rr": "clinically_meaningful_rr", "rd": "clinically_meaningful_rd"}
        spec = spec.with_decision(**{key[measure]: threshold})
    return spec


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bayes_msc", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=300)


def one_line_error(run, *fragments: str) -> str:
    assert run.returncode == 2, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# -- the functionals against closed forms -----------------------------------------------------


def test_risk_ratio_and_difference_are_the_closed_forms_on_given_draws():
    rng = np.random.default_rng(3)
    log_or = draws(rng.normal(-0.3, 0.6, 400))
    for p0 in (0.05, 0.3, 0.427, 0.9):
        treated = expit(logit(p0) + log_or.values)
        np.testing.assert_allclose(risk_ratio(log_or, p0).values, treated / p0, rtol=1e-12)
        np.testing.assert_allclose(risk_difference(log_or, p0).values, treated - p0, rtol=0, atol=1e-15)


def test_hand_computed_values():
    # p0 = 0.4: control odds 2/3; OR 0.375 -> treated odds 1/4 -> risk 0.2; RR 0.5, RD -0.2
    assert float(risk_ratio(math.log(0.375), 0.4)) == pytest.approx(0.5, rel=1e-12)
    assert float(risk_difference(math.log(0.375), 0.4)) == pytest.approx(-0.2, abs=1e-12)
    assert log_or_at_risk_ratio(0.5, 0.4) == pytest.approx(math.log(0.375), rel=1e-12)
    assert log_or_at_risk_difference(-0.2, 0.4) == pytest.approx(math.log(0.375), rel=1e-12)


def test_the_arr_of_existing_analyses_is_unchanged_bit_for_bit():
    from bayes_msc.decisions import absolute_risk_reduction

    x = draws(np.random.default_rng(1).normal(0, 1, 200))
    p0 = 0.427
    np.testing.assert_array_equal(absolute_risk_reduction(x, p0).values, p0 - expit(logit(p0) + x.values))


# -- decisions on the chosen scale -------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(p0=st.floats(0.01, 0.99), centre=st.floats(-2, 2), seed=st.integers(0, 2**31 - 1),
       measure=st.sampled_from(["rr", "rd"]))
def test_prob_benefit_on_a_risk_scale_is_prob_or_below_one(p0, centre, seed, measure):
    """RR and RD are increasing in the log OR at any fixed baseline: P(RR < 1) = P(RD < 0) = P(OR < 1),
    in the pooled effect and in a new trial."""
    from bayes_msc.outcomes import get_outcome

    rng = np.random.default_rng(seed)
    x, new = rng.normal(centre, 0.5, 200), rng.normal(centre, 1.0, 200)
    spec = spec_on(measure, p0, 1.0 if measure == "rr" else 0.0)
    outcome = spec.outcome_type
    decided = outcome.decide(posterior(x, new), spec)
    odds = get_outcome("mortality").decide(posterior(x, new), load_spec("mortality"))
    assert decided.prob_benefit.prob == odds.prob_benefit.prob == np.mean(x < 0)
    assert decided.predictive_prob_benefit.prob == odds.predictive_prob_benefit.prob == np.mean(new < 0)


def test_meaningful_threshold_on_the_rd_scale_against_numpy():
    rng = np.random.default_rng(11)
    x = rng.normal(-0.35, 0.4, 2000)
    p0, threshold = 0.3, -0.05
    spec = spec_on("rd", p0, threshold)
    d = spec.outcome_type.decide(posterior(x), spec)
    rd = expit(logit(p0) + x) - p0
    assert d.prob_meaningful.prob == pytest.approx(np.mean(rd < threshold), abs=0)
    assert d.meaningful_threshold == threshold and d.benefit_threshold == 0.0
    assert d.pooled_effect.median == pytest.approx(np.median(rd), rel=1e-12)
    lower, upper = np.quantile(rd, [0.025, 0.975])
    assert (d.pooled_effect.lower, d.pooled_effect.upper) == pytest.approx((lower, upper), rel=1e-9)
    # the OR threshold it is equivalent to at p0 counts the same draws
    assert np.mean(x < logit(p0 + threshold) - logit(p0)) == d.prob_meaningful.prob


def test_meaningful_threshold_on_the_rr_scale_against_numpy():
    rng = np.random.default_rng(12)
    x = rng.normal(-0.2, 0.5, 2000)
    p0, threshold = 0.427, 0.85
    spec = spec_on("rr", p0, threshold)
    d = spec.outcome_type.decide(posterior(x), spec)
    rr = expit(logit(p0) + x) / p0
    assert d.prob_meaningful.prob == np.mean(rr < threshold)
    assert d.pooled_effect.median == pytest.approx(np.median(rr), rel=1e-12)
    assert d.measure == "risk ratio" and d.benefit_threshold == 1.0
    # the odds ratio stays, as a secondary line
    assert d.get("odds_ratio").median == pytest.approx(np.median(np.exp(x)), rel=1e-12)
    assert d.get("effect_measure")["baseline_risk"] == p0


def test_an_or_threshold_is_not_silently_converted():
    """The same OR threshold is a different risk ratio at each baseline: a risk scale needs its own."""
    spec = load_spec("mortality").with_model(effect_measure="rr")
    with pytest.raises(InputError, match="clinically_meaningful_rr"):
        spec.outcome_type.check_decision(spec)
    stale = load_spec("mortality").with_decision(clinically_meaningful_rr=0.9)
    with pytest.raises(InputError, match="effect_measure"):
        stale.outcome_type.check_decision(stale)


def test_a_risk_threshold_outside_what_the_baseline_allows_is_refused():
    from bayes_msc.api import resolve_spec

    # at p0 0.427 a risk ratio above 1/0.427 = 2.34 needs a risk above 1
    with pytest.raises(InputError, match="risk ratio at control risk 0.427"):
        resolve_spec("mortality", effect_measure="rr", clinically_meaningful=2.5)
    with pytest.raises(InputError, match="decision.clinically_meaningful_rd"):  # a benefit is a reduction
        resolve_spec("mortality", effect_measure="rd", clinically_meaningful=0.05)
    with pytest.raises(InputError, match="risk difference at control risk 0.427"):
        resolve_spec("mortality", effect_measure="rd", clinically_meaningful=-0.5)
    with pytest.raises(InputError, match="binary outcomes"):
        resolve_spec("oxygenation", effect_measure="rd")


# -- spec and hash ---------------------------------------------------------------------------


PINNED_TOML = """name = "pinned_mortality"
outcome = "mortality"
[model]
likelihood = "arm"
{extra}
[priors]
effect = "default"
heterogeneity = "halfnormal_0.5"
baseline = "default_baseline"
[decision]
clinically_meaningful_or = 0.75
baseline_risk = 0.3
{decision}
[sampler]
seed = 5
"""
# content_hash() of PINNED_TOML (no extra lines) as the code computed it before effect_measure existed
PINNED_HASH = "c378fe50e13d4ba6d0413b73b63a07efa730fdd8db846b49e27271efbd2774f5"


def write_spec(tmp_path, extra: str = "", decision: str = "") -> Path:
    path = tmp_path / "pinned.toml"
    path.write_text(PINNED_TOML.format(extra=extra, decision=decision), encoding="utf-8")
    return path


def test_a_spec_at_the_default_measure_keeps_its_hash(tmp_path):
    assert load_spec(write_spec(tmp_path)).content_hash() == PINNED_HASH
    assert load_spec(write_spec(tmp_path, 'effect_measure = "or"')).content_hash() == PINNED_HASH
    assert "effect_measure" not in load_spec(write_spec(tmp_path)).to_dict()["model"]
    rr = load_spec(write_spec(tmp_path, 'effect_measure = "rr"', "clinically_meaningful_rr = 0.9"))
    assert rr.content_hash() != PINNED_HASH
    assert rr.to_dict()["model"]["effect_measure"] == "rr" and rr.to_dict()["decision"]["clinically_meaningful_rr"] == 0.9


def test_the_shipped_specs_leave_the_new_settings_out():
    for name in ("mortality", "oxygenation", "normal_normal"):
        table = load_spec(name).to_dict()
        assert "effect_measure" not in table["model"]
        assert not {"clinically_meaningful_rr", "clinically_meaningful_rd"} & set(table["decision"])


# -- the command line ------------------------------------------------------------------------


def test_cli_refuses_an_rr_threshold_without_the_rr_measure(tmp_path):
    path = write_spec(tmp_path, decision="clinically_meaningful_rr = 0.9")
    one_line_error(run_cli("fit", str(path)), "pinned.toml", "decision.clinically_meaningful_rr", "effect_measure")


def test_cli_refuses_a_risk_measure_without_its_threshold_and_an_unknown_measure():
    one_line_error(run_cli("fit", "mortality", "--effect-measure", "rd"), "decision.clinically_meaningful_rd",
                   "not converted")
    one_line_error(run_cli("fit", "mortality", "--effect-measure", "hr"), "--effect-measure")


# -- a fit: summary.json and the text ------------------------------------------------------------


@pytest.fixture(scope="module")
def rd_fit():
    import bayes_msc

    return bayes_msc.fit("mortality", effect_measure="rd", clinically_meaningful=-0.05,
                         chains=2, draws=300, tune=300, seed=11)


def test_summary_json_says_which_measure_and_at_which_baseline(rd_fit):
    from bayes_msc.results import to_json

    summary = json.loads(to_json(rd_fit.summary_dict()))
    d = summary["decisions"]
    p0 = rd_fit.spec.decision.baseline_risk
    assert d["measure"] == "risk difference" and d["model_scale"] == "log odds ratio"
    assert d["meaningful_threshold"] == -0.05 and d["benefit_threshold"] == 0.0
    specific = d["outcome_specific"]
    assert specific["effect_measure"]["measure"] == "rd" and specific["effect_measure"]["baseline_risk"] == p0
    assert {"odds_ratio", "odds_ratio_new_trial", "absolute_risk_reduction", "nnt"} <= set(specific)
    x = rd_fit.posterior["log_or"].values.ravel()
    rd = expit(logit(p0) + x) - p0
    assert d["pooled_effect"]["median"] == pytest.approx(np.median(rd), rel=1e-12)
    assert d["prob_benefit"]["prob"] == np.mean(x < 0)
    assert d["prob_meaningful"]["prob"] == np.mean(rd < -0.05)
    assert specific["odds_ratio"]["median"] == pytest.approx(np.median(np.exp(x)), rel=1e-12)
    assert "RD" in d["prob_benefit"]["event"] or "risk difference" in d["prob_benefit"]["event"]
    assert summary["spec_hash"] == rd_fit.spec.content_hash()


def test_the_text_summary_says_the_measure_and_keeps_the_or(rd_fit):
    from bayes_msc.io.display import render_result

    text = render_result(rd_fit)
    assert "risk difference at control risk 0.427" in text
    assert "P(RD < 0)" in text and "P(RD < -0.05)" in text
    assert "pooled odds ratio (the model's effect)" in text


# -- design on the chosen scale ------------------------------------------------------------------


def test_design_reads_the_rule_on_the_risk_difference(rd_fit):
    from bayes_msc.design import design
    from bayes_msc.design.outcome import design_outcome
    from bayes_msc.design.plan import DesignSettings

    p0 = rd_fit.spec.decision.baseline_risk
    outcome = design_outcome(rd_fit.spec)
    assert outcome.to_scale(-0.05) == pytest.approx(logit(p0 - 0.05) - logit(p0), rel=1e-12)
    assert outcome.show(math.log(0.5)) == pytest.approx(expit(logit(p0) + math.log(0.5)) - p0, rel=1e-12)
    with pytest.raises(InputError, match="rule"):  # p0 + 0.7 > 1: no risk difference of 0.7 at this baseline
        DesignSettings(rule=((0.7, 0.9),)).validate(outcome=outcome)
    planned = design(rd_fit, DesignSettings(n_grid=(100,), rule=((-0.05, 0.8),), control_risk="baseline", refit=False))
    equivalent_or = math.exp(logit(p0 - 0.05) - logit(p0))
    assert planned.rule_text.startswith("P(RD < -0.05) > 0.8")
    assert f"P(OR < {equivalent_or:.4g}) > 0.8" in planned.rule_text
    out = planned.to_dict()
    assert out["stated_as"] == {"measure": "risk difference", "short": "RD", "baseline_risk": p0}
    meaningful = next(s for s in out["scenarios"] if s["label"] == "meaningful")
    assert meaningful["effect"] == pytest.approx(-0.05, abs=1e-12)


def test_the_report_refuses_a_risk_scale_its_words_do_not_state():
    """The mortality layout says "odds ratio": a risk ratio is refused before the fit, not mislabelled."""
    one_line_error(run_cli("report", "mortality", "--effect-measure", "rr", "--clinically-meaningful", "0.85"),
                   "states the effect as odds ratio", "risk ratio")
    from bayes_msc.report.presentations import layout_for

    assert layout_for(load_spec("mortality").outcome_type)  # the odds ratio still has its report


def test_a_saved_rd_result_loads_back_on_its_scale(rd_fit, tmp_path):
    from bayes_msc import load_result

    rd_fit.save(tmp_path / "out")
    back = load_result(tmp_path / "out")
    assert back.spec.content_hash() == rd_fit.spec.content_hash()
    assert back.decisions.measure == "risk difference"
    assert back.decisions.prob_meaningful == rd_fit.decisions.prob_meaningful


def test_the_simulation_studies_refuse_a_risk_scale():
    """oc and simstudy state truths and rules as odds ratios: a risk scale is refused, not ignored."""
    one_line_error(run_cli("oc", "mortality", "--effect-measure", "rd", "--clinically-meaningful", "-0.05"),
                   "--effect-measure", "odds ratios")
